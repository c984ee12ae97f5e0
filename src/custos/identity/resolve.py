"""Full identity resolution: records and interactions → profiles with stable ids.

Reads every normalised record and interaction, links them by exact strong identifiers (with the
guard rails of :func:`~custos.identity.exact.exact_edges`) and by probabilistic matches of the
records (a Splink model, trained on the first run and kept in the store), joins them into
coherent clusters (:class:`~custos.identity.graph.CoherentUnionFind`), keeps profile ids stable
(see :mod:`custos.identity.ids`), and rewrites membership, merge evidence and golden records in
one write transaction: a reader sees the old profiles or the new ones, never a mix. All of it
but the writing is computed from a snapshot, without the write lock (see
:mod:`custos.identity.snapshot`).
"""

from __future__ import annotations

import gc
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select

from custos.core.bulk import paused_gc
from custos.core.settings import Settings
from custos.identity import matcher, models
from custos.identity.exact import exact_edges
from custos.identity.graph import Edge, ExactResult, IgnoredIdentifier, Node
from custos.identity.ids import assign_ids
from custos.identity.loading import arrow_table, golden_documents, join_phone_forms, load
from custos.identity.plan import Plan, ReviewPair, plan_links
from custos.identity.snapshot import SNAPSHOT_ATTEMPTS, SnapshotMark, recheck_marks, unmark
from custos.identity.writer import (
    Jobs,
    ensure_match_indexes,
    insert_batches,
    insert_identifiers,
    new_profile,
    rewrite,
    write_profiles,
)
from custos.store import Store, meta
from custos.store import tables as t

#: A producer of extra edges (a test or another matcher plugs in here).
EdgeSource = Callable[[list[Node]], list[Edge]]


@dataclass
class ResolveSummary:
    """What a resolution run did."""

    records: int = 0
    interactions: int = 0
    linked_interactions: int = 0
    profiles: int = 0
    created: int = 0
    merged: int = 0
    multi_record_profiles: int = 0
    largest_profile: int = 0
    edges: int = 0
    probabilistic_links: int = 0
    conflicts: int = 0
    model_version: int | None = None
    trained: bool = False
    mode: str = "full"
    phases: dict[str, float] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)  # profiles an incremental run rewrote
    previous_graph: str | None = None  # graph version before an incremental run
    withheld_links: int = 0
    kept_apart: int = 0
    review: int = 0  # pairs kept for review (possible matches and refused conflicts)
    ambiguous: int = 0  # records that fit two persons equally well (linked to neither)
    ignored: list[IgnoredIdentifier] = field(default_factory=list)
    seconds: float = 0.0


def _probable_edges(
    conn: Connection,
    settings: Settings,
    match: dict[str, list[Any]],
    exact_job: Future[ExactResult],
    summary: ResolveSummary,
    trained: dict[str, Any],
    *,
    retrain: bool,
) -> tuple[list[Edge], ExactResult]:
    """Scored pairs from the saved model or one trained now (every pair at ``possible_match``,
    or ``match_threshold`` if lower, or above, strongest first), and the exact links. A model
    trained now goes into ``trained`` (``model``, and ``training``: its term frequencies and
    how many rows it was trained on), to be saved with the result.

    The model trains while exact linking runs on the other thread (the database leaves a core
    idle for much of the training), on a sample of the rows as they are: before exact linking
    tells which contacts are a household's, which moves few values and no estimate that
    matters. Scoring waits for it."""
    saved = None if retrain else models.latest(conn)
    clock = time.perf_counter()
    model: dict[str, Any] | None = None
    if saved is None:
        rows = matcher.training_rows(len(match["unique_id"]), settings.training_sample)
        sample = {name: [column[i] for i in rows] for name, column in match.items()}
        model = matcher.train(arrow_table(sample), sample=settings.training_sample)
        del sample
        summary.phases["train"] = time.perf_counter() - clock
    clock = time.perf_counter()
    exact = exact_job.result()
    summary.phases["exact"] = time.perf_counter() - clock
    clock = time.perf_counter()
    table = arrow_table(match, exact)
    match.clear()
    if model is not None:  # saved with the result (this may be a read-only snapshot)
        trained["model"] = model
        trained["training"] = (
            matcher.term_frequencies(table, model),
            min(table.num_rows, settings.training_sample),
        )
    else:
        assert saved is not None
        model, summary.model_version = saved.model, saved.version
    edges = matcher.predict(table, model, threshold=scoring_threshold(settings))
    summary.phases["predict"] = time.perf_counter() - clock
    return edges, exact


def scoring_threshold(settings: Settings) -> float:
    """The lowest match weight a scored pair is kept from (possible matches included)."""
    return min(settings.possible_match, settings.match_threshold)


def plan(
    nodes: list[Node],
    exact: ExactResult,
    probable: list[Edge],
    together: list[Edge],
    apart: list[tuple[int, int]],
    settings: Settings,
    *,
    existing: dict[int, str] | None = None,
    extra: list[Edge] | None = None,
) -> Plan:
    """:func:`~custos.identity.plan.plan_links` with the thresholds of ``settings``."""
    return plan_links(
        nodes,
        exact,
        probable,
        together,
        apart,
        match_threshold=settings.match_threshold,
        possible_match=settings.possible_match,
        existing=existing,
        extra=extra or (),
    )


@dataclass
class _Computed:
    """A full resolution's plan, computed from one snapshot of the store."""

    mark: SnapshotMark
    nodes: list[Node]
    rows: dict[int, Any]
    planned: Plan
    assigned: Any
    previous: dict[int, str]
    linked_at: dict[int, datetime]
    known_pairs: dict[tuple[int, int], int]
    model: dict[str, Any] | None = None  # trained now: saved with the result
    training: tuple[Any, int] | None = None  # its term frequencies, rows trained on
    #: rows marked for recheck in the snapshot → their ingestion time then (unmarked after)
    rechecked: dict[int, Any] = field(default_factory=dict)


def resolve(
    store: Store,
    settings: Settings,
    *,
    retrain: bool = False,
    extra_edges: EdgeSource | None = None,
    actor: str = "custos resolve",
) -> ResolveSummary:
    """Rebuild the profiles from every record and interaction in the store.

    Probabilistic links use the newest saved model (``retrain`` trains and saves a new version
    first; so does the first run). Loading, training, scoring and clustering read a snapshot
    of the store; the write lock is held only to write the result, so ingestion and collection
    go on meanwhile (what they add is left for the next incremental resolution). If the store
    changed in a way the plan cannot absorb (see :class:`SnapshotMark`), it is computed again; the
    last attempt holds the write lock throughout.
    """
    started = time.perf_counter()
    # The blocking-key indexes (the first run builds them: seconds at a million rows) are made
    # in a short write of their own on a second thread, while the snapshot is read and
    # computed from, rather than under the write lock that writes the result.
    # (An in-memory store is one connection per thread: there, here.)
    in_memory = store.in_memory
    with ThreadPoolExecutor(1, thread_name_prefix="custos-indexes") as pool:
        indexed: Future[None] = Future()
        if in_memory:
            _ensure_indexes(store)
            indexed.set_result(None)
        else:
            indexed = pool.submit(_ensure_indexes, store)
        return _resolve(store, settings, retrain, extra_edges, actor, started, indexed)


def _ensure_indexes(store: Store) -> None:
    with store.write() as conn:
        ensure_match_indexes(conn)


def _resolve(
    store: Store,
    settings: Settings,
    retrain: bool,
    extra_edges: EdgeSource | None,
    actor: str,
    started: float,
    indexed: Future[None],
) -> ResolveSummary:
    for attempt in range(SNAPSHOT_ATTEMPTS + 1):
        summary = ResolveSummary()
        with paused_gc() as pause:
            if attempt < SNAPSHOT_ATTEMPTS:
                with store.read(snapshot=True) as conn:
                    computed = _compute(conn, settings, summary, pause, retrain, extra_edges)
                indexed.result()  # (raises what it raised)
                locked = time.perf_counter()
                with store.write(bulk=True) as conn:
                    if SnapshotMark.read(conn, computed.mark.highest) != computed.mark:
                        del computed  # (a million rows: not kept while the next is loaded)
                        continue
                    _apply(store, conn, settings, computed, summary, actor)
            else:
                indexed.result()
                locked = time.perf_counter()
                with store.write(bulk=True) as conn:
                    computed = _compute(conn, settings, summary, pause, retrain, extra_edges)
                    _apply(store, conn, settings, computed, summary, actor)
        summary.phases["locked"] = time.perf_counter() - locked  # the write lock held, commit too
        break
    summary.seconds = time.perf_counter() - started
    return summary


def _compute(
    conn: Connection,
    settings: Settings,
    summary: ResolveSummary,
    pause: Any,
    retrain: bool,
    extra_edges: EdgeSource | None,
) -> _Computed:
    """Load, link, train, score and cluster (reads only)."""
    clock = time.perf_counter()
    mark = SnapshotMark.read(conn)
    nodes, rows, match = load(conn)
    nodes = join_phone_forms(nodes)
    pause.freeze()  # a million long-lived rows: no collection need look at them again
    summary.phases["load"] = time.perf_counter() - clock
    summary.records = sum(1 for n in nodes if n.is_record)
    summary.interactions = int(
        conn.execute(select(func.count()).select_from(t.interactions)).scalar_one()
    )
    # Exact links, on a second thread while the model trains; they also tell which
    # identifiers several persons carry (a family's landline), which the matcher counts as
    # household evidence.
    trained: dict[str, Any] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="custos-exact") as pool:
        exact_job = pool.submit(
            exact_edges,
            nodes,
            max_persons=settings.max_persons_per_identifier,
            max_records=settings.max_records_per_identifier,
        )
        probable: list[Edge] = []
        if settings.probabilistic_matching and summary.records > 1:
            probable, exact = _probable_edges(
                conn, settings, match, exact_job, summary, trained, retrain=retrain
            )
        else:
            exact = exact_job.result()
    del match
    # Training and scoring leave cyclic garbage (Splink's SQL syntax trees) that the paused
    # collector would keep to the end: collect it now, looking only at what was made since
    # the rows were loaded (those were frozen).
    gc.collect()
    # (read only now: the memberships of a million records would add to the matcher's peak)
    together, apart = decisions(conn)
    known_pairs = stored_pairs(conn)
    previous, linked_at = _memberships(conn)
    active = _active_profiles(conn)
    existing = set(conn.execute(select(t.profiles.c.id)).scalars())
    rechecked = recheck_marks(conn)
    clock = time.perf_counter()
    summary.ignored, summary.withheld_links = exact.ignored, exact.withheld_links
    planned = plan(
        nodes,
        exact,
        probable,
        together,
        apart,
        settings,
        extra=extra_edges(nodes) if extra_edges else None,
    )
    del probable
    summary.probabilistic_links = sum(1 for e in planned.used if e.rule == "match")
    summary.kept_apart, summary.conflicts = planned.kept_apart, planned.conflicts
    summary.review, summary.ambiguous = len(planned.review), planned.ambiguous
    clusters = planned.clusters
    anchors = [f"{rows[m[0]][1]}\x1f{rows[m[0]][2]}" for m in clusters]
    assigned = assign_ids(clusters, anchors, previous, active, existing)
    summary.phases["cluster"] = time.perf_counter() - clock
    return _Computed(
        mark,
        nodes,
        rows,
        planned,
        assigned,
        previous,
        linked_at,
        known_pairs,
        trained.get("model"),
        trained.get("training"),
        rechecked,
    )


def _apply(
    store: Store,
    conn: Connection,
    settings: Settings,
    computed: _Computed,
    summary: ResolveSummary,
    actor: str,
) -> None:
    """Write a computed resolution (inside the write transaction)."""
    clock = time.perf_counter()
    if computed.model is not None:
        assert computed.training is not None
        frequencies, trained_on = computed.training
        summary.model_version = models.save(
            conn,
            computed.model,
            frequencies,
            trained_on=trained_on,
            threshold=settings.match_threshold,
        )
        summary.trained = True
    planned, assigned, previous = computed.planned, computed.assigned, computed.previous
    linked_at, rows, clusters = computed.linked_at, computed.rows, planned.clusters
    used = planned.used
    # From here on one thread does all database work, in order, while this one computes the
    # rows to write: the driver lets go of Python's lock while the database works, so both
    # cores are busy.
    with Jobs(backlog=16) as db:
        db.put(ensure_match_indexes, conn)
        now = datetime.now(UTC)
        old_sets: dict[str, set[int]] = defaultdict(set)
        for raw_id, pid in previous.items():
            old_sets[pid].add(raw_id)
        changed = {
            pid
            for pid, members in zip(assigned.cluster_ids, clusters, strict=True)
            if pid not in old_sets or set(members) != old_sets[pid]
        }
        insert_batches(
            db,
            conn,
            store,
            t.profiles,
            ("id",),
            ((pid,) for pid in sorted(assigned.created)),
            new_profile(now),
        )
        db.put(
            partial(write_profiles, insert_created=False),
            conn,
            store,
            changed,
            assigned.created,
            assigned.merged,
            assigned.retired,
            now,
            actor,
        )
        member_of = {
            m: pid
            for pid, members in zip(assigned.cluster_ids, clusters, strict=True)
            for m in members
        }
        rewrite(
            db,
            conn,
            store,
            t.profile_members,
            ("raw_id", "profile_id", "linked_at"),
            (
                (raw_id, pid, linked_at[raw_id] if previous.get(raw_id) == pid else now)
                for raw_id in sorted(member_of)  # key order: B-tree appends
                if (pid := member_of[raw_id])
            ),
        )
        rewrite(
            db,
            conn,
            store,
            t.merge_evidence,
            ("id", "profile_id", "left_raw_id", "right_raw_id", "rule", "weight", "detail"),
            (
                (
                    i,
                    member_of[e.left],
                    e.left,
                    e.right,
                    e.rule,
                    None if e.weight is None else f"{e.weight:.4f}",
                    e.detail,
                )
                for i, e in enumerate(used, 1)
            ),
            const={"created_at": now},
        )
        known_pairs = computed.known_pairs
        review = list(review_rows(planned.review, known_pairs))
        rewrite(
            db,
            conn,
            store,
            t.identity_candidates,
            ("id", "left_raw_id", "right_raw_id", "status", "weight", "reason", "detail"),
            review,
            const={"created_at": now},
        )
        highest = max([r[0] for r in review] + list(known_pairs.values()), default=0)
        db.put(meta.put, conn, meta.REVIEW_ID, str(highest))
        # The identifiers follow from the members just written: the database derives them
        # (in SQL, on its thread) while this thread produces the golden records.
        rewrite(db, conn, store, t.profile_identifiers, derive=insert_identifiers)
        summary.phases["write"] = time.perf_counter() - clock
        clock = time.perf_counter()
        rewrite(
            db,
            conn,
            store,
            t.profile_golden,
            ("profile_id", "document"),
            golden_documents(*_by_profile_id(assigned.cluster_ids, clusters), rows, settings),
        )
        # This run looked at the rows marked for recheck in its snapshot; one changed again
        # since (a newer version) stays marked, as do rows marked since.
        db.put(unmark, conn, computed.rechecked)
        # derived consent states go stale
        db.put(meta.put, conn, meta.GRAPH_VERSION, uuid.uuid4().hex)
        summary.phases["golden"] = time.perf_counter() - clock
        clock = time.perf_counter()
    # (leaving the block waited for the last of the database work)
    summary.phases["flush"] = time.perf_counter() - clock
    sizes = [len(c) for c in clusters]
    summary.linked_interactions = sum(1 for n in computed.nodes if not n.is_record)
    summary.profiles = len(clusters)
    summary.created = len(assigned.created)
    summary.merged = len(assigned.merged)
    summary.multi_record_profiles = sum(1 for s in sizes if s > 1)
    summary.largest_profile = max(sizes, default=0)
    summary.edges = len(used)


def review_rows(
    pairs: Sequence[ReviewPair], known: dict[tuple[int, int], int]
) -> Iterator[tuple[Any, ...]]:
    """``identity_candidates`` rows (without ``created_at``) of the pairs kept for review. A
    pair already in the queue keeps its id (``known``: the pairs stored, by their records), a
    new one gets the next id never used: an id a person looked at names the same pair after
    any later run, or none."""
    next_id = max(known.values(), default=0) + 1
    for pair in pairs:
        key = (min(pair.left, pair.right), max(pair.left, pair.right))
        found = known.get(key)
        if found is None:
            found, next_id = next_id, next_id + 1
        yield (
            found,
            pair.left,
            pair.right,
            pair.status,
            f"{pair.weight:.4f}",
            pair.reason,
            pair.detail,
        )


def stored_pairs(conn: Connection) -> dict[tuple[int, int], int]:
    """The pairs in the review queue (by their two records, lower raw id first) → their ids;
    the highest id ever given stays in as ``(0, 0)`` so ids are never given twice."""
    ic = t.identity_candidates
    out = {
        (min(left, right), max(left, right)): int(pid)
        for pid, left, right in conn.execute(select(ic.c.id, ic.c.left_raw_id, ic.c.right_raw_id))
    }
    highest = meta.get(conn, meta.REVIEW_ID)
    if highest:
        out[(0, 0)] = int(highest)
    return out


def _by_profile_id(
    profile_ids: Sequence[str], clusters: Sequence[Sequence[int]]
) -> tuple[list[str], list[Sequence[int]]]:
    """Profiles in id order, so their rows arrive in primary-key order (appends, not seeks)."""
    order = sorted(range(len(profile_ids)), key=profile_ids.__getitem__)
    return [profile_ids[i] for i in order], [clusters[i] for i in order]


def decisions(conn: Connection) -> tuple[list[Edge], list[tuple[int, int]]]:
    """Forced links and pairs kept apart: the latest decision per pair of records counts."""
    latest: dict[tuple[int, int], str] = {}
    query = select(
        t.identity_decisions.c.decision,
        t.identity_decisions.c.left_raw_id,
        t.identity_decisions.c.right_raw_id,
    ).order_by(t.identity_decisions.c.id)
    for decision, left, right in conn.execute(query):
        latest[(min(left, right), max(left, right))] = decision
    together = [Edge(a, b, "manual:merge") for (a, b), d in latest.items() if d == "together"]
    apart = [pair for pair, d in latest.items() if d == "apart"]
    return together, apart


def _memberships(conn: Connection) -> tuple[dict[int, str], dict[int, datetime]]:
    previous: dict[int, str] = {}
    linked_at: dict[int, datetime] = {}
    for raw_id, pid, at in conn.execute(
        select(
            t.profile_members.c.raw_id,
            t.profile_members.c.profile_id,
            t.profile_members.c.linked_at,
        )
    ):
        previous[raw_id] = pid
        linked_at[raw_id] = at
    return previous, linked_at


def _active_profiles(conn: Connection) -> dict[str, datetime]:
    query = select(t.profiles.c.id, t.profiles.c.created_at).where(t.profiles.c.status == "active")
    return {pid: created for pid, created in conn.execute(query)}
