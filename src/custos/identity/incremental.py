"""Incremental resolution: attach the records and interactions that belong to no profile yet.

Nothing is re-run over the whole store. Candidates come from indexes: the profiles holding one
of a new record's identifiers (``profile_identifiers``) and the records sharing one of its
blocking keys (names, birth date and surname, postcode and first name, street; see
:data:`~custos.identity.writer.MATCH_INDEXES`). The saved model scores new × candidate and new ×
new pairs (Splink's ``predict_between`` / ``predict_within``), and the links join the touched
profiles under the same rules as a full run: people's decisions, then exact identifiers, then
matches strongest first, refusing incoherent clusters. Existing profiles are never split here;
that is what ``resolve --full`` and ``profile unmerge`` do.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, tuple_, update

from custos.core.phones import stored_forms
from custos.core.settings import Settings
from custos.identity import matcher
from custos.identity.exact import exact_edges
from custos.identity.graph import Edge, Node
from custos.identity.ids import assign_ids
from custos.identity.loading import arrow_table, golden_documents, join_phone_forms, load
from custos.identity.models import SavedModel
from custos.identity.plan import ReviewPair
from custos.identity.resolve import (
    ResolveSummary,
    decisions,
    plan,
    review_rows,
    scoring_threshold,
    stored_pairs,
)
from custos.identity.snapshot import SNAPSHOT_ATTEMPTS, SnapshotMark, recheck_marks, unmark
from custos.identity.writer import write_profiles
from custos.store import Store, meta
from custos.store import tables as t


def _chunks(items: Iterable[Any]) -> Iterable[Sequence[Any]]:
    return Store.chunks(sorted(set(items)))


def _blocked_records(conn: Connection, match: dict[str, list[Any]]) -> set[int]:
    """Existing records and interactions sharing a blocking key with one of the new rows
    (index look-ups)."""
    rows = list(
        zip(
            *(match[k] for k in ("first_name", "surname", "dob", "postcode", "street")), strict=True
        )
    )
    found: set[int] = set()
    for table in (t.records, t.interactions):
        c = table.c
        keys: dict[tuple[Any, ...], set[tuple[str, ...]]] = defaultdict(set)
        by_last: set[tuple[str, str]] = set()
        by_first: set[tuple[str, str]] = set()
        for first, last, dob, postcode, street in rows:
            if first and last:
                keys[(c.last_name_key, c.first_name_key)].add((last, first))
                if not dob and not postcode and not street:
                    # a call note or an order: its name with a typo in either part (as the
                    # matcher's blocking rules for rows without birth date or place)
                    by_last.add((last, first[:1]))
                    by_first.add((first, last[:3]))
            if dob and last:
                keys[(c.date_of_birth, c.last_name_key)].add((dob, last))
            if dob and first:
                keys[(c.date_of_birth, c.first_name_key)].add((dob, first))
            if dob and postcode:
                keys[(c.date_of_birth, c.postcode)].add((dob, postcode))
            if postcode and first:
                keys[(c.postcode, c.first_name_key)].add((postcode, first))
            if street:
                keys[(c.street_key,)].add((street,))
        for columns, values in keys.items():
            for chunk in _chunks(values):
                if len(columns) == 1:
                    clause = columns[0].in_([v[0] for v in chunk])
                else:
                    clause = tuple_(*columns).in_(chunk)
                query = select(c.raw_id).where(clause)
                if table is t.interactions:  # what its partial indexes cover
                    query = query.where(columns[0].is_not(None))
                found.update(conn.execute(query).scalars())
        # one part of the name exact, the other starting alike: the first name's initial, the
        # surname's first three letters (the index finds the exact part)
        for exact_part, other, size, wanted in (
            (c.last_name_key, c.first_name_key, 1, by_last),
            (c.first_name_key, c.last_name_key, 3, by_first),
        ):
            for chunk in _chunks(wanted):
                query = select(c.raw_id).where(
                    exact_part.in_({v for v, _ in chunk}),
                    func.substr(other, 1, size).in_({p for _, p in chunk}),
                )
                found.update(conn.execute(query).scalars())
    return found


def _profiles_of(conn: Connection, raw_ids: Iterable[int], nodes: list[Node]) -> set[str]:
    """Profiles holding one of these records, or one of the nodes' identifiers."""
    pm, pi = t.profile_members, t.profile_identifiers
    found: set[str] = set()
    for chunk in _chunks(raw_ids):
        found.update(conn.execute(select(pm.c.profile_id).where(pm.c.raw_id.in_(chunk))).scalars())
    identifiers = {ident for node in nodes for ident in node.identifiers if ident[0] != "phone~"}
    # A phone meets the same number stored in another form (with or without its country): a
    # national number any E.164 form, an E.164 number its national forms, when the store holds
    # any (a range of the index: national digits sort after "+").
    national = (
        conn.execute(select(pi.c.value).where(pi.c.kind == "phone", pi.c.value >= "0").limit(1))
        .scalars()
        .first()
        is not None
    )
    identifiers |= {
        ("phone", form)
        for kind, value in list(identifiers)
        if kind == "phone" and (national or not value.startswith("+"))
        for form in stored_forms(value)
    }
    for chunk in _chunks(identifiers):
        query = select(pi.c.profile_id).where(tuple_(pi.c.kind, pi.c.value).in_(chunk))
        found.update(conn.execute(query).scalars())
    return found


def attach(
    store: Store, settings: Settings, saved: SavedModel, *, actor: str = "custos resolve"
) -> ResolveSummary:
    """Attach every record and interaction not yet in a profile (or marked for a recheck);
    returns what changed (its ``touched`` profiles and the graph version before, for the
    consent cache).

    As a full resolution (:func:`~custos.identity.resolve.resolve`): candidates are found,
    scored and clustered from a snapshot, and the write lock is taken only to write the result
    (computed again when the store changed in a way the result cannot absorb)."""
    started = time.perf_counter()
    for attempt in range(SNAPSHOT_ATTEMPTS + 1):
        summary = ResolveSummary(mode="incremental", model_version=saved.version)
        if attempt < SNAPSHOT_ATTEMPTS:
            with store.read(snapshot=True) as conn:
                work = _compute(conn, settings, saved, summary)
            if not work.nodes and not work.rechecked:
                break  # nothing to attach: no write at all
            locked = time.perf_counter()
            with store.write() as conn:
                if SnapshotMark.read(conn, work.mark.highest) != work.mark:
                    continue
                _write(store, conn, settings, work, summary, actor)
        else:
            locked = time.perf_counter()
            with store.write() as conn:
                work = _compute(conn, settings, saved, summary)
                _write(store, conn, settings, work, summary, actor)
        summary.phases["locked"] = time.perf_counter() - locked
        break
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass
class _Work:
    """An incremental resolution computed from one snapshot (no nodes: nothing to attach)."""

    mark: SnapshotMark
    rechecked: dict[int, Any]
    nodes: list[Node] = field(default_factory=list)
    new_ids: set[int] = field(default_factory=set)
    previous: dict[int, str] = field(default_factory=dict)
    by_raw: dict[int, Any] = field(default_factory=dict)
    used: list[Edge] = field(default_factory=list)
    review: list[ReviewPair] = field(default_factory=list)
    clusters: list[list[int]] = field(default_factory=list)
    assigned: Any = None


def _compute(
    conn: Connection, settings: Settings, saved: SavedModel, summary: ResolveSummary
) -> _Work:
    """Load the new rows and their candidates, score, link and cluster them (reads only)."""
    clock = time.perf_counter()
    mark = SnapshotMark.read(conn)
    new_nodes, new_rows, new_match = load(conn, new_only=True)
    summary.records = len(new_match["unique_id"])
    summary.interactions = sum(1 for n in new_nodes if not n.is_record)
    # (loaded now, whatever becomes of them: unmarked when the result is written)
    rechecked = recheck_marks(conn)
    if not new_nodes:
        return _Work(mark, rechecked)
    new_ids = {n.raw_id for n in new_nodes}
    # (a record re-ingested with other values is loaded as new, and its own profile is
    # touched: it stays there, and its golden record is rebuilt from the new values)
    touched = _profiles_of(conn, _blocked_records(conn, new_match) | new_ids, new_nodes)
    pm = t.profile_members
    previous: dict[int, str] = {}
    for chunk in _chunks(touched):
        query = select(pm.c.raw_id, pm.c.profile_id).where(pm.c.profile_id.in_(chunk))
        previous.update(conn.execute(query).all())
    old_nodes, old_rows, old_match = load(conn, raw_ids=list(previous.keys() - new_ids))
    summary.phases["candidates"] = time.perf_counter() - clock
    clock = time.perf_counter()
    nodes = join_phone_forms(old_nodes + new_nodes)
    exact = exact_edges(
        nodes,
        max_persons=settings.max_persons_per_identifier,
        max_records=settings.max_records_per_identifier,
    )
    probable: list[Edge] = []
    if settings.probabilistic_matching and new_match["unique_id"]:
        probable = matcher.predict_between(
            arrow_table(new_match, exact),
            arrow_table(old_match, exact),
            saved.model,
            saved.term_frequencies,
            threshold=scoring_threshold(settings),
            key=f"{saved.version}@{saved.trained_at.isoformat()}",
        )
    summary.phases["predict"] = time.perf_counter() - clock
    clock = time.perf_counter()
    together, apart = decisions(conn)
    planned = plan(nodes, exact, probable, together, apart, settings, existing=previous)
    used = planned.used
    summary.probabilistic_links = sum(1 for e in used if e.rule == "match")
    summary.kept_apart, summary.conflicts = planned.kept_apart, planned.conflicts
    summary.review, summary.ambiguous = len(planned.review), planned.ambiguous
    summary.withheld_links, summary.ignored = exact.withheld_links, exact.ignored
    clusters = [g for g in planned.clusters if new_ids.intersection(g)]
    by_raw = old_rows | new_rows
    anchors = [f"{by_raw[m[0]][1]}\x1f{by_raw[m[0]][2]}" for m in clusters]
    profiles = t.profiles
    created_at: dict[str, datetime] = {}
    for chunk in _chunks(touched):
        query = select(profiles.c.id, profiles.c.created_at).where(profiles.c.id.in_(chunk))
        created_at.update(conn.execute(query).all())
    assigned = assign_ids(clusters, anchors, previous, created_at, set(created_at))
    for chunk in _chunks(assigned.created):
        taken = conn.execute(select(profiles.c.id).where(profiles.c.id.in_(chunk))).first()
        if taken is not None:  # a derived id collides with an old one: extremely rare
            raise RuntimeError("profile id collision; run resolve --full")
    summary.phases["cluster"] = time.perf_counter() - clock
    return _Work(
        mark,
        rechecked,
        nodes,
        new_ids,
        previous,
        by_raw,
        planned.used,
        planned.review,
        clusters,
        assigned,
    )


def _write(
    store: Store,
    conn: Connection,
    settings: Settings,
    work: _Work,
    summary: ResolveSummary,
    actor: str,
) -> None:
    """Write an incremental resolution (inside the write transaction)."""
    unmark(conn, work.rechecked)
    if not work.nodes:
        return
    clock = time.perf_counter()
    nodes, new_ids, previous, by_raw = work.nodes, work.new_ids, work.previous, work.by_raw
    used, clusters, assigned = work.used, work.clusters, work.assigned
    pm = t.profile_members
    now = datetime.now(UTC)
    previous_graph = meta.get(conn, meta.GRAPH_VERSION) or "0"
    write_profiles(
        conn,
        store,
        set(assigned.cluster_ids),
        assigned.created,
        assigned.merged,
        set(),
        now,
        actor,
    )
    for loser, survivor in assigned.merged.items():
        for table in (pm, t.merge_evidence):
            conn.execute(
                update(table).where(table.c.profile_id == loser).values(profile_id=survivor)
            )
    member_of = {
        m: pid for pid, members in zip(assigned.cluster_ids, clusters, strict=True) for m in members
    }
    # (the links of clusters without a new row are none of this run's business: an
    # incremental run changes only what the new rows touch)
    used = [e for e in used if e.left in member_of]
    if new_ids:
        for chunk in _chunks(new_ids.intersection(previous)):  # new versions: linked anew
            conn.execute(delete(pm).where(pm.c.raw_id.in_(chunk)))
        store.insert_many(
            conn,
            pm,
            [{"raw_id": r, "profile_id": member_of[r], "linked_at": now} for r in sorted(new_ids)],
        )
    next_id = int(
        conn.execute(select(func.coalesce(func.max(t.merge_evidence.c.id), 0))).scalar_one()
    )
    if used:
        store.insert_many(
            conn,
            t.merge_evidence,
            [
                {
                    "id": next_id + i,
                    "profile_id": member_of[e.left],
                    "left_raw_id": e.left,
                    "right_raw_id": e.right,
                    "rule": e.rule,
                    "weight": None if e.weight is None else f"{e.weight:.4f}",
                    "detail": e.detail,
                    "created_at": now,
                }
                for i, e in enumerate(used, 1)
            ],
        )
    candidates = t.identity_candidates
    for chunk in _chunks(new_ids):  # rows looked at again replace their earlier pairs
        conn.execute(
            delete(candidates).where(
                candidates.c.left_raw_id.in_(chunk) | candidates.c.right_raw_id.in_(chunk)
            )
        )
    if work.review:
        known = stored_pairs(conn)
        rows = list(review_rows(work.review, known))
        names = ("id", "left_raw_id", "right_raw_id", "status", "weight", "reason", "detail")
        store.insert_many(
            conn,
            candidates,
            [dict(zip(names, row, strict=True)) | {"created_at": now} for row in rows],
        )
        highest = max([r[0] for r in rows] + list(known.values()))
        meta.put(conn, meta.REVIEW_ID, str(highest))
    rewritten = set(assigned.cluster_ids) | set(assigned.merged)
    for table in (t.profile_golden, t.profile_identifiers):
        for chunk in _chunks(rewritten):
            conn.execute(delete(table).where(table.c.profile_id.in_(chunk)))
    store.insert_many(
        conn,
        t.profile_golden,
        list(golden_documents(assigned.cluster_ids, clusters, by_raw, settings)),
        names=("profile_id", "document"),
    )
    node_of = {n.raw_id: n for n in nodes}
    identifiers = sorted(
        {
            (kind, value, member_of[raw_id])
            for raw_id in member_of
            for kind, value in node_of[raw_id].identifiers
        }
    )
    store.insert_many(
        conn,
        t.profile_identifiers,
        [{"kind": k, "value": v, "profile_id": p} for k, v, p in identifiers],
    )
    meta.put(conn, meta.GRAPH_VERSION, uuid.uuid4().hex)
    summary.phases["write"] = time.perf_counter() - clock
    summary.linked_interactions = summary.interactions
    summary.profiles = len(clusters)
    summary.created = len(assigned.created)
    summary.merged = len(assigned.merged)
    summary.multi_record_profiles = sum(1 for c in clusters if len(c) > 1)
    summary.largest_profile = max((len(c) for c in clusters), default=0)
    summary.edges = len(used)
    summary.touched = rewritten
    summary.previous_graph = previous_graph
