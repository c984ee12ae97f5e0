"""The access report (Art. 15) and the portable export (Art. 20), assembled from the store.

The consent ledger and the purposes come from the consent package; :mod:`custos.service.dsr`
adds them. Files are written readable by their owner only: they hold the person's data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from custos.core.files import csv_writer
from custos.core.files import write_private as write_private
from custos.privacy.dsr import collect, requests
from custos.privacy.dsr.erasure import Subject

#: Fields of an interaction that are its content, shown with the interactions, not as attributes.
_CONTENT = ("timestamp", "channel", "text", "language", "health_text")
#: The sections an access report always has (tests check them; the HTML shows each).
ACCESS_SECTIONS = (
    "subject",
    "attributes",
    "golden_record",
    "interactions",
    "consent",
    "purposes",
    "recipients",
    "retention",
    "sources",
    "merge_history",
    "restriction",
    "quarantine",
    "requests",
    "records",
)


def access_report(
    conn: Connection,
    subject: Subject,
    *,
    request: str,
    retention_policy: str,
    quarantine_ids: Sequence[int] = (),
) -> dict[str, Any]:
    """Everything the store holds on the person, who read it, how long it is kept and how the
    profile was put together (without ``consent`` and ``purposes``, which the caller adds)."""
    profile_id = subject.profile_ids[0]
    rows = collect.member_rows(conn, sorted(subject.raw_ids))
    persons = [r for r in rows if r["kind"] == "records"]
    interactions = [r for r in rows if r["kind"] == "interactions"]
    attributes = collect.attributes(
        [{**r, "fields": {k: v for k, v in r["fields"].items() if k not in _CONTENT}} for r in rows]
    )
    received = [r["received_at"] for r in rows]
    return {
        "request": request,
        "generated_at": datetime.now(UTC).isoformat(),
        "subject": collect.profile_head(conn, profile_id),
        "attributes": attributes,
        "golden_record": collect.golden(conn, profile_id),
        "interactions": [
            {
                "when": i["fields"].get("timestamp"),
                "channel": i["fields"].get("channel"),
                "language": i["fields"].get("language"),
                # the whole text: a note naming a health matter is the person's own data too
                "text": i["fields"].get("health_text") or i["fields"].get("text"),
                "source": i["source"],
                "record_id": i["record_id"],
            }
            for i in sorted(interactions, key=lambda i: str(i["fields"].get("timestamp") or ""))
        ],
        "recipients": collect.recipients(conn, subject.profile_ids),
        "retention": {
            "policy": retention_policy,
            "held_since": min(received, default=None),
            "last_received": max(received, default=None),
        },
        "sources": collect.sources(rows),
        "merge_history": collect.merge_history(conn, subject.profile_ids, sorted(subject.raw_ids)),
        "restriction": collect.restriction(conn, subject.profile_ids),
        "quarantine": collect.quarantine_rows(conn, list(quarantine_ids)),
        "requests": [
            {
                k: v
                for k, v in r.as_dict().items()
                if k in ("request", "kind", "state", "created_at")
            }
            for r in requests.listing(conn, profile_ids=subject.profile_ids)
        ],
        "records": [
            {
                k: r[k]
                for k in (
                    "kind",
                    "source",
                    "record_id",
                    "file",
                    "line",
                    "as_received",
                    "earlier_versions",
                )
            }
            for r in persons + interactions
        ],
    }


def portable(conn: Connection, subject: Subject, *, request: str) -> dict[str, Any]:
    """The data the person provided, machine-readable (records, interactions; the caller adds
    the consent events)."""
    rows = collect.member_rows(conn, sorted(subject.raw_ids))
    keep = (
        "source",
        "record_id",
        "received_at",
        "fields",
        "extra",
        "as_received",
        "earlier_versions",
    )
    return {
        "request": request,
        "profile_id": subject.profile_ids[0],
        "exported_at": datetime.now(UTC).isoformat(),
        "records": [{k: r[k] for k in keep} for r in rows if r["kind"] == "records"],
        "interactions": [{k: r[k] for k in keep} for r in rows if r["kind"] == "interactions"],
    }


def portable_csv(export: dict[str, Any]) -> str:
    """The export as one CSV table: a row per record, interaction and consent event."""
    rows: list[dict[str, Any]] = []
    for kind in ("records", "interactions"):
        for item in export[kind]:
            row = {
                "kind": kind,
                "source": item["source"],
                "record_id": item["record_id"],
                "received_at": item["received_at"],
                **item["fields"],
            }
            row.update({f"extra.{k}": v for k, v in item["extra"].items()})
            rows.append(row)
    for event in export.get("consents", []):
        rows.append({"kind": "consent", **event})
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(columns)
    writer.writerows([_csv_value(row.get(c, "")) for c in columns] for row in rows)
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def dumps(value: Any) -> str:
    """Indented JSON (dates as ISO text)."""
    return orjson.dumps(
        value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str
    ).decode()
