"""The review queue: pairs of records that resolution scored but did not link, for a person to
accept (one person: joined for good) or reject (two persons: kept apart for good).

Resolution keeps these pairs in ``identity_candidates`` ("possible": a match weight between
``possible_match`` and ``match_threshold``, or a link without person-level evidence;
"conflict": a link the household evidence would have made, refused because the records show
two persons). A decision is stored like ``profile merge`` / ``profile unmerge`` store theirs (in
``identity_decisions``), so every later run obeys it and the pair never comes back to the queue.

The queue is read under the purpose ``identity_curation``, which sees links, not fields: record
references, profile ids and match weights only, never a person's values (a curator opens the
two profiles under their own purpose to compare them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Float, and_, cast, exists, func, or_, select

from custos.core.errors import InputError, NotFoundError
from custos.service.curation import member_refs, record_decisions, record_together
from custos.store import audit
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

#: The kinds of pairs resolution keeps for review.
STATUSES = ("possible", "conflict")
PURPOSE = "identity_curation"
#: The largest id and offset a store takes (a signed 64-bit integer).
LARGEST = 2**63 - 1


def _same_pair(table: Any, left: Any, right: Any) -> Any:
    """``table``'s row names the pair (left, right), in this order (pairs are unordered: callers
    ask for both orders, as two conditions, so that each is an anti-join on an index)."""
    return and_(table.c.left_raw_id == left, table.c.right_raw_id == right)


#: The columns of a candidate as the queue lists it.
_QUEUE = ("id", "status", "weight", "reason", "detail", "created_at", "left_raw_id", "right_raw_id")


def _waiting() -> Any:
    """The candidates still waiting for a person: the latest row per pair, no decision about
    the pair (either order), and the two records not (or no longer) in one profile."""
    newer = t.identity_candidates.alias("newer")
    left, right = t.profile_members.alias("left_members"), t.profile_members.alias("right_members")
    return (
        select(
            *t.identity_candidates.c[_QUEUE],
            left.c.profile_id.label("left_profile"),
            right.c.profile_id.label("right_profile"),
        )
        .select_from(
            t.identity_candidates.outerjoin(
                left, left.c.raw_id == t.identity_candidates.c.left_raw_id
            ).outerjoin(right, right.c.raw_id == t.identity_candidates.c.right_raw_id)
        )
        .where(
            ~exists().where(
                _same_pair(
                    t.identity_decisions,
                    t.identity_candidates.c.left_raw_id,
                    t.identity_candidates.c.right_raw_id,
                )
            ),
            ~exists().where(
                _same_pair(
                    t.identity_decisions,
                    t.identity_candidates.c.right_raw_id,
                    t.identity_candidates.c.left_raw_id,
                )
            ),
            ~exists().where(
                newer.c.id > t.identity_candidates.c.id,
                _same_pair(
                    newer, t.identity_candidates.c.left_raw_id, t.identity_candidates.c.right_raw_id
                ),
            ),
            ~exists().where(
                newer.c.id > t.identity_candidates.c.id,
                _same_pair(
                    newer, t.identity_candidates.c.right_raw_id, t.identity_candidates.c.left_raw_id
                ),
            ),
            or_(
                left.c.profile_id.is_(None),
                right.c.profile_id.is_(None),
                left.c.profile_id != right.c.profile_id,
            ),
        )
    )


def record_refs(conn: Connection, raw_ids: Iterable[int]) -> dict[int, str]:
    """raw id → "source:record_id" (ids only, no values)."""
    wanted = sorted(set(raw_ids))
    if not wanted:
        return {}
    query = (
        select(t.raw_records.c.id, t.sources.c.name, t.raw_records.c.record_id)
        .join(t.sources, t.sources.c.id == t.raw_records.c.source_id)
        .where(t.raw_records.c.id.in_(wanted))
    )
    return {raw: f"{source}:{record}" for raw, source, record in conn.execute(query)}


def _profile_of(conn: Connection, raw_id: int) -> str | None:
    found = conn.execute(
        select(t.profile_members.c.profile_id).where(t.profile_members.c.raw_id == raw_id)
    ).scalar()
    return str(found) if found else None


def review_queue(
    app: Custos,
    *,
    limit: int = 50,
    offset: int = 0,
    status: str | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """The pairs waiting for a decision, strongest match weight first, a page at a time:
    ``{"items": [...], "total": N}``. Each item has the candidate ``id``, ``status``,
    ``weight``, ``reason``, ``fields`` (the match weight per compared field) and, for ``left``
    and ``right``, the ``record`` (SOURCE:RECORD_ID) and its ``profile_id``. Audited under
    identity_curation with the profiles shown."""
    if status is not None and status not in STATUSES:
        raise InputError(f"unknown review status {status!r}", hint=f"one of: {', '.join(STATUSES)}")
    if not (1 <= limit <= LARGEST and 0 <= offset <= LARGEST):
        raise InputError("limit must be at least 1 and offset at least 0")
    waiting = _waiting()
    if status is not None:
        waiting = waiting.where(t.identity_candidates.c.status == status)
    pending = waiting.subquery("pending")
    page = (
        select(pending)
        .order_by(cast(pending.c.weight, Float).desc(), pending.c.id)
        .limit(limit)
        .offset(offset)
    )
    with app.store.read() as conn:
        total = int(conn.execute(select(func.count()).select_from(pending)).scalar_one())
        rows = conn.execute(page).all()
        refs = record_refs(conn, [r.left_raw_id for r in rows] + [r.right_raw_id for r in rows])
    items = [
        {
            "id": int(r.id),
            "status": r.status,
            "weight": float(r.weight),
            "reason": r.reason,
            "fields": (fields := orjson.loads(r.detail) if r.detail else {}),
            # what the weight holds besides the fields: the prior odds that any two records are
            # one person (a large negative number on a large store)
            "prior": round(float(r.weight) - sum(fields.values()), 2) if fields else None,
            "left": {
                "record": refs.get(r.left_raw_id, str(r.left_raw_id)),
                "profile_id": r.left_profile,
            },
            "right": {
                "record": refs.get(r.right_raw_id, str(r.right_raw_id)),
                "profile_id": r.right_profile,
            },
        }
        for r in rows
    ]
    shown = sorted(
        {side["profile_id"] for item in items for side in (item["left"], item["right"])} - {None}
    )
    audit.record(
        app.store,
        actor,
        "profile.review",
        purpose=PURPOSE,
        subjects=shown,
        detail={"pairs": len(items), "status": status, "total": total},
    )
    return {"items": items, "total": total}


def decide(
    app: Custos,
    candidate_id: int,
    *,
    accept: bool,
    actor: str = "cli",
    reason: str = "",
    expect: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Decide a pair of the queue for good.

    Accept: the two records are one person: a "together" decision (lifting earlier "apart"
    decisions between their two profiles, like ``profile merge``), then a full resolution joins
    them; the answer's ``profile_id`` is the profile they share now. Reject: two persons: an
    "apart" decision, so no later run links them (nothing to rebuild: they are not linked).
    Either way the pair leaves the queue. Unknown ids are :class:`NotFoundError`; a pair decided
    already, or whose records are in one profile by now, is :class:`InputError`.

    ``expect`` names the two records (SOURCE:RECORD_ID, either order) the caller saw listed
    under this id: a full resolution rewrites the queue and may give the id to another pair,
    and a decision about the wrong pair (a false merge above all) must not happen, so then it is
    refused (:class:`InputError`)."""
    decision = "together" if accept else "apart"
    with app.store.write() as conn:
        row = (
            conn.execute(
                select(t.identity_candidates).where(t.identity_candidates.c.id == candidate_id)
            ).first()
            if 0 < candidate_id <= LARGEST
            else None
        )
        if row is None:
            raise NotFoundError(
                f"no pair {candidate_id} in the review queue",
                hint="see `custos profile review` for the pairs waiting and their ids",
            )
        left, right = int(row.left_raw_id), int(row.right_raw_id)
        refs = record_refs(conn, [left, right])
        pair = f"pair {candidate_id} ({refs.get(left, left)}, {refs.get(right, right)})"
        if expect is not None and sorted(expect) != sorted(
            (refs.get(left, str(left)), refs.get(right, str(right)))
        ):
            raise InputError(
                f"{pair} is not {expect[0]} and {expect[1]}: the queue changed since it was "
                "listed (a resolution renumbers it)",
                hint="list the queue again and decide by the pair's id there",
            )
        earlier = conn.execute(
            select(t.identity_decisions)
            .where(
                or_(
                    _same_pair(t.identity_decisions, left, right),
                    _same_pair(t.identity_decisions, right, left),
                )
            )
            .order_by(t.identity_decisions.c.id.desc())
            .limit(1)
        ).first()
        if earlier is not None:
            raise InputError(
                f"{pair} was decided already: {earlier.decision}, by {earlier.actor} on "
                f"{earlier.at.date().isoformat()}",
                hint="to change it, use `custos profile merge` or `custos profile unmerge`",
            )
        before = {raw: _profile_of(conn, raw) for raw in (left, right)}
        if before[left] is not None and before[left] == before[right]:
            raise InputError(
                f"the records of {pair} are in one profile already ({before[left]})",
                hint="to split them, use `custos profile unmerge`",
            )
        why = reason or ("accepted in review" if accept else "rejected in review")
        lifted = 0
        if accept:
            # The two records' profiles become one, so earlier "apart" decisions between them
            # are lifted (as by `profile merge`); a record in no profile stands alone.
            left_group, right_group = (
                set(member_refs(conn, profile)) if (profile := before[raw]) else {raw}
                for raw in (left, right)
            )
            lifted = record_together(conn, left_group, right_group, (left, right), actor, why)
        else:
            record_decisions(conn, "apart", [(left, right)], actor, why)
        profiles = [p for p in (before[left], before[right]) if p]
        if profiles:
            conn.execute(
                t.profile_events.insert().values(
                    at=datetime.now(UTC),
                    actor=actor,
                    action=f"review.{'accept' if accept else 'reject'}",
                    profile_id=profiles[0],
                    other_profile_id=profiles[1] if len(profiles) > 1 else None,
                    reason=(
                        f"{refs.get(left, left)} and {refs.get(right, right)} "
                        f"{'are one person' if accept else 'are two persons'} "
                        f"(review pair {candidate_id}): {why}"
                    ),
                )
            )
        audit.append(
            conn,
            actor=actor,
            action=f"profile.review.{'accept' if accept else 'reject'}",
            purpose=PURPOSE,
            subjects=profiles,
            detail={
                "pair": candidate_id,
                "records": [refs.get(left, str(left)), refs.get(right, str(right))],
                "lifted": lifted,
            },
        )
    after = before
    if accept:
        app.resolve(full=True, actor=actor)
        with app.store.read() as conn:
            after = {raw: _profile_of(conn, raw) for raw in (left, right)}
    shared = after[left] if after[left] is not None and after[left] == after[right] else None
    return {
        "id": candidate_id,
        "decision": decision,
        "profile_id": shared,
        "left": {"record": refs.get(left, str(left)), "profile_id": after[left]},
        "right": {"record": refs.get(right, str(right)), "profile_id": after[right]},
    }
