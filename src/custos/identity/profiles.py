"""Reading profiles: find one by id, e-mail or phone; its golden record, members and evidence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, select

from custos.store import golden as golden_store
from custos.store import tables as t
from custos.store.redirects import active_ids


def canonical_profile_id(conn: Connection, profile_id: str) -> str | None:
    """The active id for ``profile_id``, following merge redirects; None when unknown."""
    return active_ids(conn, [profile_id])[profile_id]


def profiles_by_identifier(conn: Connection, kind: str, value: str) -> list[str]:
    """Active profiles with a member carrying this normalised identifier (e.g. email, phone)."""
    query = select(t.profile_identifiers.c.profile_id).where(
        t.profile_identifiers.c.kind == kind, t.profile_identifiers.c.value == value
    )
    return sorted(set(conn.execute(query).scalars()))


def profile_detail(conn: Connection, profile_id: str, *, interactions: int = 50) -> dict[str, Any]:
    """Everything custos knows of one profile, for display (the caller checks access)."""
    head = conn.execute(select(t.profiles).where(t.profiles.c.id == profile_id)).mappings().one()
    golden = [v.as_dict() for v in golden_store.read_one(conn, profile_id)]
    members = _members(conn, profile_id)
    identifiers: dict[str, set[str]] = {}
    for m in members:
        for kind in ("email", "phone", "customer_id", "social_handle"):
            if m.get(kind):
                identifiers.setdefault(kind, set()).add(m[kind])
    evidence = [
        {
            "left": _ref(members, r.left_raw_id),
            "right": _ref(members, r.right_raw_id),
            "rule": r.rule,
            "weight": r.weight,
            # a probabilistic link's match weight per compared field (names and numbers only)
            **({"fields": orjson.loads(r.detail)} if r.detail else {}),
        }
        for r in conn.execute(
            select(t.merge_evidence)
            .where(t.merge_evidence.c.profile_id == profile_id)
            .order_by(t.merge_evidence.c.id)
        )
    ]
    redirects = sorted(
        conn.execute(
            select(t.profiles.c.id).where(t.profiles.c.merged_into == profile_id)
        ).scalars()
    )
    records = [m for m in members if m["kind"] == "records"]
    events = sorted(
        (m for m in members if m["kind"] == "interactions"),
        key=lambda m: m.get("timestamp") or "",
        reverse=True,
    )
    return {
        "profile_id": profile_id,
        "status": head["status"],
        "created_at": head["created_at"].isoformat(),
        "updated_at": head["updated_at"].isoformat(),
        "golden": golden,
        "identifiers": {k: sorted(v) for k, v in sorted(identifiers.items())},
        "records": [_public(m) for m in records],
        "interactions": [_public(m) for m in events[:interactions]],
        "interaction_count": len(events),
        "evidence": evidence,
        "merged_ids": redirects,
    }


def _members(conn: Connection, profile_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for table, kind in ((t.records, "records"), (t.interactions, "interactions")):
        extra = (
            [table.c.timestamp, table.c.channel, table.c.text, table.c.health_text]
            if kind == "interactions"
            else []
        )
        query = (
            select(
                table.c.raw_id,
                t.sources.c.name.label("source"),
                t.raw_records.c.record_id,
                table.c.full_name,
                table.c.email,
                table.c.phone,
                table.c.customer_id,
                table.c.social_handle,
                *extra,
            )
            .join(t.profile_members, t.profile_members.c.raw_id == table.c.raw_id)
            .join(t.raw_records, t.raw_records.c.id == table.c.raw_id)
            .join(t.sources, t.sources.c.id == table.c.source_id)
            .where(t.profile_members.c.profile_id == profile_id)
            .order_by(table.c.raw_id)
        )
        for row in conn.execute(query).mappings():
            item = {str(k): v for k, v in row.items()} | {"kind": kind}
            if item.get("timestamp") is not None:
                item["timestamp"] = item["timestamp"].isoformat()
            out.append(item)
    return out


def _ref(members: list[dict[str, Any]], raw_id: int) -> str:
    for m in members:
        if m["raw_id"] == raw_id:
            return f"{m['source']}:{m['record_id']}"
    return str(raw_id)


def _public(member: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in member.items() if k not in ("raw_id", "kind") and v is not None}


def iter_xref(conn: Connection) -> Iterator[tuple[str, str, str]]:
    """(source, record_id, profile_id or "") for every ingested record and interaction."""
    query = (
        select(t.sources.c.name, t.raw_records.c.record_id, t.profile_members.c.profile_id)
        .join(t.sources, t.sources.c.id == t.raw_records.c.source_id)
        .outerjoin(t.profile_members, t.profile_members.c.raw_id == t.raw_records.c.id)
        .order_by(t.raw_records.c.id)
    )
    with conn.execution_options(yield_per=10_000).execute(query) as rows:  # closed if left
        for source, record_id, profile_id in rows:
            yield source, record_id, profile_id or ""
