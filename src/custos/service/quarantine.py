"""Working off the quarantine: export the rows that wait, to fix them by hand, and read them
again after a map file or taxonomy change (see :mod:`custos.ingest.retry`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from custos.core.errors import ConfigError
from custos.core.fields import Kind
from custos.core.files import csv_writer, private_file
from custos.ingest.mapping import NOTE_COLUMNS
from custos.ingest.pipeline import IngestSummary
from custos.ingest.retry import retry_quarantined, waiting
from custos.store import audit

if TYPE_CHECKING:
    from custos.service.app import Custos


def export(
    app: Custos, source: str, output: Path, *, kind: Kind | None = None, actor: str = "cli"
) -> tuple[int, int]:
    """Write the open entries of ``source`` that hold a row (of ``kind``; needed when rows of
    several kinds wait) to ``output`` (CSV, mode 0600): the row's columns, then
    ``quarantine_id``, ``quarantine_reason`` and ``quarantine_fix``. Fixed and ingested again
    (``custos ingest``), each row that lands closes its entry; the note columns are not
    stored. (rows written, open entries without a row to write)."""
    with app.store.read() as conn:
        rows, without = waiting(conn, source)
    kinds = sorted({row.kind.value for row in rows})
    if kind is None and len(kinds) > 1:
        raise ConfigError(
            f"rows of {' and '.join(kinds)} wait in source {source!r}: one file holds one kind",
            hint="pass --kind, once for each",
        )
    rows = [row for row in rows if kind is None or row.kind is kind]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(k for k in row.row if k not in NOTE_COLUMNS))
    with private_file(output) as handle:
        writer = csv_writer(handle)
        writer.writerow([*columns, *NOTE_COLUMNS])
        for row in rows:
            values = [row.row.get(c) for c in columns]
            writer.writerow(
                [*("" if v is None else v for v in values), row.entry, row.reason, row.fix]
            )
    audit.record(
        app.store,
        actor,
        "quarantine.export",
        detail={"source": source, "rows": len(rows), "file": output.name},
    )
    return len(rows), without


def retry(
    app: Custos,
    source: str,
    *,
    map_path: Path | None = None,
    pii: str | None = None,
    actor: str = "cli",
) -> IngestSummary:
    """Read the open entries of ``source`` again with the map file at ``map_path`` (else none)
    and the taxonomy as it is now: rows that land close their entries, rows still bad keep them
    with the reason found now."""
    summary = retry_quarantined(app.store, source, app.read_rules(map_path, pii))
    if summary.stored:  # consent events among them take effect now
        app.refresh_consent()
    audit.record(
        app.store,
        actor,
        "quarantine.retry",
        detail={
            "source": source,
            "read": summary.read,
            "stored": summary.stored + summary.changed,
            "closed": summary.closed,
            "quarantined": summary.quarantined,
        },
    )
    return summary
