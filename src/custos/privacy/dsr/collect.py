"""Everything the store holds on one person, and who read it: the raw material of an access
report (Art. 15), a portable export (Art. 20) and an erasure receipt (Art. 19)."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, or_, select

from custos.store import Store
from custos.store import golden as golden_store
from custos.store import tables as t

#: Normalised columns that are comparison keys, not data the person gave.
_KEY_COLUMNS = {"first_name_key", "last_name_key", "street_key"}
#: Audit actions that read personal data without listing fields (the ledger, record links).
_READS_WITHOUT_FIELDS = {"consent.show", "profile.explain"}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def member_rows(conn: Connection, raw_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The person's records and interactions, oldest first: where each came from, its
    normalised fields, extra attributes, the row exactly as received, and the earlier
    versions of the row that a re-ingestion replaced (the same, as they were)."""
    out: list[dict[str, Any]] = []
    ordered = sorted(raw_ids)
    earlier = _earlier_versions(conn, ordered)
    for table, kind in ((t.records, "records"), (t.interactions, "interactions")):
        fields = [c for c in table.c if c.name not in _KEY_COLUMNS]
        for chunk in Store.of(conn).chunks(ordered):
            query = (
                select(
                    *fields,
                    t.sources.c.name.label("source_name"),
                    t.raw_records.c.record_id,
                    t.raw_records.c.file_name,
                    t.raw_records.c.line_no,
                    t.raw_records.c.payload,
                    t.raw_records.c.ingested_at,
                )
                .join(t.raw_records, t.raw_records.c.id == table.c.raw_id)
                .join(t.sources, t.sources.c.id == table.c.source_id)
                .where(table.c.raw_id.in_(chunk))
            )
            for row in conn.execute(query).mappings():
                values = {
                    str(c.name): _iso(row[c.name])
                    for c in fields
                    if c.name not in ("raw_id", "source_id", "extra", "observed_at")
                    and row[c.name] not in (None, "")
                }
                out.append(
                    {
                        "kind": kind,
                        "source": row["source_name"],
                        "record_id": row["record_id"],
                        "file": row["file_name"],
                        "line": row["line_no"],
                        "received_at": _iso(row["ingested_at"]),
                        "fields": values,
                        "extra": orjson.loads(row["extra"]) if row["extra"] else {},
                        "as_received": orjson.loads(row["payload"]),
                        "earlier_versions": earlier.get(row["raw_id"], []),
                        "_raw_id": row["raw_id"],
                    }
                )
    out.sort(key=lambda r: r.pop("_raw_id"))
    return out


def _earlier_versions(conn: Connection, ordered: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Raw id → the versions its row replaced, oldest first."""
    versions = t.record_versions
    out: dict[int, list[dict[str, Any]]] = {}
    for chunk in Store.of(conn).chunks(ordered):
        query = (
            select(versions)
            .where(versions.c.raw_id.in_(chunk))
            .order_by(versions.c.raw_id, versions.c.version)
        )
        for row in conn.execute(query).mappings():
            out.setdefault(row["raw_id"], []).append(
                {
                    "version": row["version"],
                    "file": row["file_name"],
                    "line": row["line_no"],
                    "received_at": _iso(row["ingested_at"]),
                    "replaced_at": _iso(row["superseded_at"]),
                    "fields": orjson.loads(row["fields"]),
                    "as_received": orjson.loads(row["payload"]),
                }
            )
    return out


def attributes(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every attribute value held, one line each, with its source, record and date."""
    out = []
    for row in rows:
        for name, value in [*row["fields"].items(), *row["extra"].items()]:
            out.append(
                {
                    "attribute": name,
                    "value": value,
                    "source": row["source"],
                    "record_id": row["record_id"],
                    "received_at": row["received_at"],
                }
            )
    return out


def golden(conn: Connection, profile_id: str) -> list[dict[str, Any]]:
    """The golden record with the provenance of each value."""
    return [v.as_dict() for v in golden_store.read_one(conn, profile_id)]


def merge_history(
    conn: Connection, profile_ids: Sequence[str], raw_ids: Sequence[int]
) -> dict[str, Any]:
    """Merges, unmerges and other profile events; the links that joined the records; the
    decisions people made; the ids merged into the profile."""
    refs = {
        raw: f"{source}:{record}"
        for raw, source, record in conn.execute(
            select(t.raw_records.c.id, t.sources.c.name, t.raw_records.c.record_id)
            .join(t.sources, t.sources.c.id == t.raw_records.c.source_id)
            .where(t.raw_records.c.id.in_(list(raw_ids)))
        )
    }
    events = [
        {
            "at": _iso(r.at),
            "action": r.action,
            "profile_id": r.profile_id,
            "other_profile_id": r.other_profile_id,
            "actor": r.actor,
            "reason": r.reason,
        }
        for r in conn.execute(
            select(t.profile_events)
            .where(
                or_(
                    t.profile_events.c.profile_id.in_(profile_ids),
                    t.profile_events.c.other_profile_id.in_(profile_ids),
                )
            )
            .order_by(t.profile_events.c.id)
        )
    ]
    links = [
        {
            "left": refs.get(r.left_raw_id, str(r.left_raw_id)),
            "right": refs.get(r.right_raw_id, str(r.right_raw_id)),
            "rule": r.rule,
            "weight": r.weight,
        }
        for r in conn.execute(
            select(t.merge_evidence)
            .where(t.merge_evidence.c.profile_id.in_(profile_ids))
            .order_by(t.merge_evidence.c.id)
        )
    ]
    decisions = [
        {
            "decision": r.decision,
            "left": refs.get(r.left_raw_id, "another person's record"),
            "right": refs.get(r.right_raw_id, "another person's record"),
            "actor": r.actor,
            "reason": r.reason,
            "at": _iso(r.at),
        }
        for r in conn.execute(
            select(t.identity_decisions)
            .where(
                or_(
                    t.identity_decisions.c.left_raw_id.in_(list(raw_ids)),
                    t.identity_decisions.c.right_raw_id.in_(list(raw_ids)),
                )
            )
            .order_by(t.identity_decisions.c.id)
        )
    ]
    return {
        "merged_ids": [pid for pid in profile_ids[1:]],
        "events": events,
        "links": links,
        "decisions": decisions,
    }


def profile_head(conn: Connection, profile_id: str) -> dict[str, Any]:
    """Status and dates of the profile."""
    row = conn.execute(select(t.profiles).where(t.profiles.c.id == profile_id)).mappings().one()
    return {
        "profile_id": profile_id,
        "status": row["status"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def restriction(conn: Connection, profile_ids: Sequence[str]) -> dict[str, Any] | None:
    """The restriction of processing in force for the profile, if any."""
    restrictions = t.restrictions
    row = conn.execute(
        select(restrictions).where(restrictions.c.profile_id.in_(profile_ids))
    ).first()
    if row is None:
        return None
    return {"since": _iso(row.since), "reason": row.reason, "request": f"dsr-{row.request_id}"}


def sources(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per source: how many rows, first and last received (where the data came from)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault(
            row["source"],
            {"source": row["source"], "rows": 0, "first": row["received_at"], "last": ""},
        )
        entry["rows"] += 1
        entry["first"] = min(entry["first"], row["received_at"])
        entry["last"] = max(entry["last"], row["received_at"])
    return sorted(out.values(), key=lambda e: str(e["source"]))


def quarantine_rows(conn: Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Quarantined rows (as received) found to be the person's."""
    quarantined = t.quarantine
    query = (
        select(quarantined, t.sources.c.name.label("source_name"))
        .join(t.sources, t.sources.c.id == quarantined.c.source_id)
        .where(quarantined.c.id.in_(list(ids)))
        .order_by(quarantined.c.id)
    )
    return [
        {
            "source": r["source_name"],
            "file": r["file_name"],
            "line": r["line_no"],
            "reason": r["reason"],
            "as_received": r["raw"],
            "since": _iso(r["created_at"]),
        }
        for r in conn.execute(query).mappings()
    ]


def _subjects(subjects: str | None, detail: dict[str, Any]) -> list[str]:
    if detail.get("subjects_z"):
        return zlib.decompress(base64.b64decode(detail["subjects_z"])).decode().split("\n")
    return [s for s in (subjects or "").split(",") if s]


def recipients(conn: Connection, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Who read the person's data (actors — API keys, systems, users — from the audit log), with
    the purposes, actions, how often and when; data-subject requests themselves not counted."""
    audit_log = t.audit_log
    ids = set(profile_ids)
    maybe = or_(
        *(audit_log.c.subjects.contains(pid, autoescape=True) for pid in sorted(ids)),
        audit_log.c.detail.contains("subjects_z"),
    )
    found: dict[str, dict[str, Any]] = {}
    query = select(
        audit_log.c.at,
        audit_log.c.actor,
        audit_log.c.action,
        audit_log.c.purpose,
        audit_log.c.subjects,
        audit_log.c.detail,
    )
    for row in conn.execution_options(yield_per=1000).execute(
        query.where(maybe).order_by(audit_log.c.id)
    ):
        if row.action.startswith("dsr."):
            continue
        detail = orjson.loads(row.detail or "{}")
        if ids.isdisjoint(_subjects(row.subjects, detail)):
            continue
        if "fields" not in detail and row.action not in _READS_WITHOUT_FIELDS:
            continue  # a write (ingest, consent recorded, merge), not a read
        entry = found.setdefault(
            row.actor,
            {
                "actor": row.actor,
                "reads": 0,
                "purposes": set(),
                "actions": set(),
                "fields": set(),
                "first": _iso(row.at),
                "last": _iso(row.at),
            },
        )
        entry["reads"] += 1
        entry["purposes"].add(row.purpose or "")
        entry["actions"].add(row.action)
        entry["fields"].update(detail.get("fields", []))
        entry["last"] = _iso(row.at)
    return [
        {**e, **{k: sorted(e[k] - {""}) for k in ("purposes", "actions", "fields")}}
        for e in sorted(found.values(), key=lambda e: str(e["actor"]))
    ]
