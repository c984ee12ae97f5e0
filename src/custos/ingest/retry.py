"""Working off the quarantine: re-read the rows that wait (after a map file or taxonomy change),
and list them for fixing by hand.

A quarantined row keeps the row as received (a JSON object of its columns), so it can be read
again without its file. A row that lands closes its entry; one still bad keeps its entry with
the reason found now. Lines that could not be parsed at all (an unreadable CSV line) and rows
of erased persons keep no columns: they are fixed in the source file, not here; a collected
call is sent again by its sender (its entry closes when it lands).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select

from custos.core.errors import NotFoundError
from custos.core.fields import Kind
from custos.ingest.mapping import ColumnMap
from custos.ingest.pipeline import BatchWriter, IngestSummary, ReadRules, tag_columns
from custos.ingest.readers import RawRow
from custos.ingest.rows import normalise_batch
from custos.ingest.sink import COLLECTED
from custos.store import Store
from custos.store import tables as t


@dataclass(frozen=True, slots=True)
class Waiting:
    """An open quarantine entry whose row can be read again."""

    entry: int
    kind: Kind
    file_name: str
    line_no: int
    row: dict[str, Any]
    reason: str
    fix: str


def source_id(conn: Connection, source: str) -> int:
    """The id of ``source``; refuses an unknown name."""
    found = conn.execute(select(t.sources.c.id).where(t.sources.c.name == source)).scalar()
    if found is None:
        raise NotFoundError(f"no source named {source!r}", hint="see `custos stats`")
    return int(found)


def waiting(conn: Connection, source: str) -> tuple[list[Waiting], int]:
    """The open entries of ``source`` that hold a row of a file (oldest first), and how many
    open entries do not (unreadable lines, erased persons, collected calls): those are fixed at
    the source."""
    rows = conn.execute(
        select(*t.quarantine.c["id", "kind", "file_name", "line_no", "raw", "reason", "fix"])
        .where(
            t.quarantine.c.source_id == source_id(conn, source),
            t.quarantine.c.closed_at.is_(None),
            t.quarantine.c.left_out.is_(False),
        )
        .order_by(t.quarantine.c.id)
    ).all()
    out: list[Waiting] = []
    for entry, kind, file_name, line_no, raw, reason, fix in rows:
        try:
            row = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            row = None
        if isinstance(row, dict) and file_name != COLLECTED:
            out.append(
                Waiting(int(entry), Kind(kind), file_name or "", line_no or 0, row, reason, fix)
            )
    return out, len(rows) - len(out)


def _batches(rows: list[Waiting], size: int) -> Iterator[list[Waiting]]:
    """Rows of one kind and file, at most ``size``, no line number twice (a row is known by its
    line within a batch)."""
    groups: dict[tuple[Kind, str], list[Waiting]] = {}
    for row in rows:
        groups.setdefault((row.kind, row.file_name), []).append(row)
    for group in groups.values():
        batch: list[Waiting] = []
        lines: set[int] = set()
        for row in group:
            if len(batch) >= size or row.line_no in lines:
                yield batch
                batch, lines = [], set()
            batch.append(row)
            lines.add(row.line_no)
        if batch:
            yield batch


def retry_quarantined(store: Store, source: str, rules: ReadRules) -> IngestSummary:
    """Read the open quarantine entries of ``source`` again, as :func:`ingest_file` reads a
    file (by the same ``rules``): the rows that land close their entries, the others keep them
    with the reason found now (counted as quarantined, as are the entries that hold no row to
    read again)."""
    started = time.perf_counter()
    map_file = rules.map_file
    with store.read() as conn:
        rows, unreadable = waiting(conn, source)
        sid = source_id(conn, source)
    with store.write() as conn:
        tag_columns(conn, sid, map_file.categories)
    summary = IngestSummary(source=source, kind=rows[0].kind if rows else Kind.RECORDS, file="")
    summary.quarantined = unreadable
    for batch in _batches(rows, rules.settings.batch_size):
        kind = batch[0].kind
        cmap = ColumnMap(map_file, kind, None)  # each row brings its own columns
        ctx = rules.row_context(kind, cmap)
        normalised = normalise_batch([RawRow(r.line_no, r.row) for r in batch], cmap, ctx)
        normalised.entries = {r.line_no: r.entry for r in batch}
        writer = BatchWriter(store, source, sid, kind, batch[0].file_name, rules.suppressed)
        summary.add(writer.write(normalised))
    summary.seconds = time.perf_counter() - started
    return summary
