"""Explaining, splitting and joining profiles by hand: decisions that every later run obeys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, select

from custos.core.errors import InputError
from custos.identity.resolve import ResolveSummary
from custos.store import audit
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos


def member_refs(conn: Connection, profile_id: str) -> dict[int, str]:
    """raw id → "source:record_id" of a profile's members."""
    query = (
        select(t.raw_records.c.id, t.sources.c.name, t.raw_records.c.record_id)
        .join(t.profile_members, t.profile_members.c.raw_id == t.raw_records.c.id)
        .join(t.sources, t.sources.c.id == t.raw_records.c.source_id)
        .where(t.profile_members.c.profile_id == profile_id)
        .order_by(t.raw_records.c.id)
    )
    return {raw_id: f"{source}:{record_id}" for raw_id, source, record_id in conn.execute(query)}


def explain(app: Custos, key: str, *, actor: str = "cli") -> dict[str, Any]:
    """Why each record belongs to the profile: the links (rule, weight) that join it, and the
    decisions people made about it. Record references only, no personal values."""
    profile_id = app.find_profile(key)
    with app.store.read() as conn:
        members = member_refs(conn, profile_id)
        links: dict[int, list[dict[str, Any]]] = {raw: [] for raw in members}
        query = select(
            *t.merge_evidence.c["left_raw_id", "right_raw_id", "rule", "weight", "detail"]
        ).where(t.merge_evidence.c.profile_id == profile_id)
        for left, right, rule, weight, detail in conn.execute(query):
            for this, other in ((left, right), (right, left)):
                if this in links:
                    link: dict[str, Any] = {
                        "with": members.get(other, str(other)),
                        "rule": rule,
                        "weight": weight,
                    }
                    if detail:  # a probabilistic link: the match weight of each field
                        link["fields"] = orjson.loads(detail)
                    links[this].append(link)
        unlinked = _unlinked_pairs(conn, members)
        decisions = [
            {
                "decision": row.decision,
                "left": members.get(row.left_raw_id, str(row.left_raw_id)),
                "right": members.get(row.right_raw_id, str(row.right_raw_id)),
                "actor": row.actor,
                "reason": row.reason,
                "at": row.at.isoformat(),
            }
            for row in conn.execute(
                select(t.identity_decisions)
                .where(
                    t.identity_decisions.c.left_raw_id.in_(list(members))
                    | t.identity_decisions.c.right_raw_id.in_(list(members))
                )
                .order_by(t.identity_decisions.c.id)
            )
        ]
    audit.record(
        app.store, actor, "profile.explain", purpose="identity_curation", subjects=[profile_id]
    )
    return {
        "profile_id": profile_id,
        "records": [
            {
                "record": ref,
                "why": links[raw] or [{"rule": "only record" if len(members) == 1 else "decision"}],
            }
            for raw, ref in members.items()
        ],
        "decisions": decisions,
        # pairs resolution scored but did not link: possible matches (whose restrictions
        # apply to this profile: consent is conservative) and conflicts refused
        "not_linked": unlinked,
    }


def _unlinked_pairs(conn: Connection, members: dict[int, str]) -> list[dict[str, Any]]:
    """The review queue's pairs that involve the members (references and weights only)."""
    ids = list(members)
    found = conn.execute(
        select(
            *t.identity_candidates.c[
                "left_raw_id", "right_raw_id", "status", "weight", "reason", "detail"
            ]
        )
        .where(
            t.identity_candidates.c.left_raw_id.in_(ids)
            | t.identity_candidates.c.right_raw_id.in_(ids)
        )
        .order_by(t.identity_candidates.c.id)
    ).all()
    others = {r for row in found for r in row[:2] if r not in members}
    refs = record_refs(conn, others)
    owners: dict[int, str] = {
        raw: pid
        for raw, pid in conn.execute(
            select(t.profile_members.c.raw_id, t.profile_members.c.profile_id).where(
                t.profile_members.c.raw_id.in_(list(others))
            )
        )
    }
    out = []
    for left, right, status, weight, reason, detail in found:
        mine, other = (left, right) if left in members else (right, left)
        if other in members:
            continue  # both in this profile by now
        out.append(
            {
                "record": members[mine],
                "with": refs.get(other, str(other)),
                "profile_id": owners.get(other),
                "status": status,
                "weight": float(weight),
                "reason": reason,
                "fields": orjson.loads(detail) if detail else {},
            }
        )
    return sorted(out, key=lambda pair: -float(pair["weight"]))


def record_refs(conn: Connection, raw_ids: set[int]) -> dict[int, str]:
    """raw id → "source:record_id" of these records."""
    query = (
        select(t.raw_records.c.id, t.sources.c.name, t.raw_records.c.record_id)
        .join(t.sources, t.sources.c.id == t.raw_records.c.source_id)
        .where(t.raw_records.c.id.in_(sorted(raw_ids)))
    )
    return {raw: f"{source}:{record}" for raw, source, record in conn.execute(query)}


def _raw_ids(conn: Connection, refs: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ref in refs:
        source, sep, record_id = ref.partition(":")
        if not sep or not source or not record_id:
            raise InputError(
                f"not a record reference: {ref!r}", hint="write SOURCE:RECORD_ID, e.g. crm:C-0001"
            )
        raw = conn.execute(
            select(t.raw_records.c.id)
            .join(t.sources, t.sources.c.id == t.raw_records.c.source_id)
            .where(t.sources.c.name == source, t.raw_records.c.record_id == record_id)
        ).scalar()
        if raw is None:
            raise InputError(
                f"no record {ref} in the store", hint="see `custos profile show` for its records"
            )
        out[ref] = int(raw)
    return out


def record_decisions(
    conn: Connection, decision: str, pairs: list[tuple[int, int]], actor: str, reason: str
) -> None:
    """Store a decision ("apart" or "together") about each pair of raw records; resolution obeys
    the latest decision per pair on every run."""
    now = datetime.now(UTC)
    if pairs:
        conn.execute(
            t.identity_decisions.insert(),
            [
                {
                    "decision": decision,
                    "left_raw_id": a,
                    "right_raw_id": b,
                    "actor": actor,
                    "reason": reason,
                    "at": now,
                }
                for a, b in pairs
            ],
        )


def record_together(
    conn: Connection,
    left: Iterable[int],
    right: Iterable[int],
    pair: tuple[int, int],
    actor: str,
    reason: str,
) -> int:
    """Store that two groups of records (the members of two profiles) are one person: a
    "together" decision for ``pair`` (one record of each group), and one for every pair between
    the groups that an earlier decision kept apart, which lifts it (otherwise resolution would
    refuse the join). Returns how many earlier decisions were lifted."""
    left, right = list(left), list(right)
    apart = {
        (row.left_raw_id, row.right_raw_id)
        for row in conn.execute(
            select(t.identity_decisions).where(t.identity_decisions.c.decision == "apart")
        )
    }
    lifted = [(x, y) for x in left for y in right if (x, y) in apart or (y, x) in apart]
    record_decisions(conn, "together", [pair, *lifted], actor, reason)
    return len(lifted)


def unmerge(
    app: Custos, key: str, records: list[str], *, actor: str = "cli", reason: str = ""
) -> dict[str, Any]:
    """Split ``records`` (SOURCE:RECORD_ID) off the profile and keep them apart from the rest on
    every later run; returns the profile ids before and after."""
    profile_id = app.find_profile(key)
    with app.store.write() as conn:
        members = member_refs(conn, profile_id)
        wanted = _raw_ids(conn, records)
        strangers = [ref for ref, raw in wanted.items() if raw not in members]
        if strangers:
            raise InputError(f"not records of profile {profile_id}: {', '.join(strangers)}")
        split = set(wanted.values())
        rest = [raw for raw in members if raw not in split]
        if not rest:
            raise InputError(
                "that would split off every record of the profile", hint="leave at least one record"
            )
        record_decisions(
            conn, "apart", [(a, b) for a in sorted(split) for b in rest], actor, reason or "unmerge"
        )
        conn.execute(
            t.profile_events.insert().values(
                at=datetime.now(UTC),
                actor=actor,
                action="unmerge",
                profile_id=profile_id,
                other_profile_id=None,
                reason=f"{len(split)} record(s) split off: {reason or 'no reason given'}",
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="profile.unmerge",
            subjects=[profile_id],
            detail={"records": sorted(wanted)},
        )
    summary = app.resolve(full=True, actor=actor)
    with app.store.read() as conn:
        moved = {
            ref: conn.execute(
                select(t.profile_members.c.profile_id).where(t.profile_members.c.raw_id == raw)
            ).scalar()
            for ref, raw in wanted.items()
        }
    return {"profile_id": profile_id, "records": moved, "resolve": summary}


def merge(
    app: Custos, first: str, second: str, *, actor: str = "cli", reason: str = ""
) -> tuple[str, ResolveSummary]:
    """Join two profiles for good (the older id survives); earlier decisions that kept their
    records apart are lifted."""
    a, b = app.find_profile(first), app.find_profile(second)
    if a == b:
        raise InputError("both keys name the same profile")
    with app.store.write() as conn:
        left, right = member_refs(conn, a), member_refs(conn, b)
        lifted = record_together(
            conn, left, right, (min(left), min(right)), actor, reason or "merge"
        )
        audit.append(
            conn,
            actor=actor,
            action="profile.merge",
            subjects=[a, b],
            detail={"lifted": lifted},
        )
    summary = app.resolve(full=True, actor=actor)
    return app.find_profile(a), summary
