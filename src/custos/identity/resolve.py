"""Full identity resolution: records and interactions → profiles with stable ids.

Reads every normalised record and interaction, links them by exact strong identifiers (with the
guard rails of :func:`~custos.identity.exact.exact_edges`) and by probabilistic matches of the
records (a Splink model, trained on the first run and kept in the store), and plans profiles
from them (:func:`~custos.identity.clustering.plan_profiles`, as an incremental run does:
coherent clusters, stable ids, merge evidence, the review queue), which the profile writer
(:class:`~custos.identity.writer.ProfileWriter`) stores in one write transaction: a reader sees
the old profiles or the new ones, never a mix. All of it but the writing is computed from a
snapshot, without the write lock (see :mod:`custos.identity.snapshot`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select

from custos.core.settings import Settings
from custos.identity import matcher, models
from custos.identity.clustering import (
    Decisions,
    History,
    ProfilePlan,
    plan_profiles,
    scoring_threshold,
)
from custos.identity.exact import exact_edges
from custos.identity.graph import Edge, ExactResult, IgnoredIdentifier, Node
from custos.identity.loading import (
    LoadedRow,
    arrow_table,
    index_quotes,
    join_phone_forms,
    load,
    stored_anchors,
)
from custos.identity.snapshot import SNAPSHOT_ATTEMPTS, SnapshotMark, recheck_marks
from custos.identity.writer import ProfileWriter, ensure_match_indexes, stored_pairs
from custos.store import Store
from custos.store import tables as t

#: A producer of extra edges (a test or another matcher plugs in here).
EdgeSource = Callable[[list[Node]], list[Edge]]
#: Told the name of each phase as it starts (a terminal's progress line).
PhaseReport = Callable[[str], None]


def _quiet(phase: str) -> None:
    """No one to tell."""


def engine_for(settings: Settings) -> matcher.Engine:
    """The scoring engine a full resolution uses (``settings.engine``)."""
    if settings.engine == "spark":
        from custos.identity.spark import SparkEngine

        return SparkEngine.from_settings(settings)
    return matcher.InProcess(settings.duckdb_memory_limit)


@dataclass
class ResolveSummary:
    """What a resolution run did."""

    records: int = 0
    interactions: int = 0
    linked_interactions: int = 0
    profiles: int = 0
    created: int = 0
    merged: int = 0
    split: int = 0  # of the created: parts split off a profile by new evidence
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
    engine: str = "duckdb"  # where the pairs were scored
    resumed: list[str] = field(default_factory=list)  # phases read back from a failed run

    def count_links(self, exact: ExactResult, planned: ProfilePlan) -> None:
        """What linking did: the guard rails' and the clustering's figures."""
        links = planned.links
        self.ignored, self.withheld_links = exact.ignored, exact.withheld_links
        self.probabilistic_links = sum(1 for e in links.used if e.rule == "match")
        self.kept_apart, self.conflicts = links.kept_apart, links.conflicts
        self.review, self.ambiguous = len(links.review), links.ambiguous

    def count_profiles(self, planned: ProfilePlan) -> None:
        """The profiles written: how many, created (split off), merged, and their sizes."""
        sizes = [len(members) for members in planned.clusters]
        self.profiles = len(sizes)
        self.created = len(planned.assigned.created)
        self.merged = len(planned.assigned.merged)
        self.split = len(planned.assigned.split)
        self.multi_record_profiles = sum(1 for size in sizes if size > 1)
        self.largest_profile = max(sizes, default=0)
        self.edges = len(planned.used)


def _probable_edges(
    conn: Connection,
    settings: Settings,
    match: dict[str, list[Any]],
    exact_job: Future[ExactResult],
    summary: ResolveSummary,
    trained: dict[str, Any],
    *,
    retrain: bool,
    engine: matcher.Engine,
    report: PhaseReport,
) -> tuple[list[Edge], ExactResult]:
    """Scored pairs from the saved model or one trained now (every pair at ``possible_match``,
    or ``match_threshold`` if lower, or above, strongest first), and the exact links. A model
    trained now goes into ``trained`` (``model``, and ``training``: its term frequencies and
    how many rows it was trained on), to be saved with the result.

    The model trains while exact linking runs on the other thread (a large sample in a process
    of its own: :func:`~custos.identity.matcher.train_apart`), on a sample of the rows as they
    are: before exact linking tells which contacts are a household's, which moves few values
    and no estimate that matters. Scoring waits for it. An engine that keeps a failed run's work
    (Spark) gives back the model it trained on the same sample."""
    saved = None if retrain else models.latest(conn)
    clock = time.perf_counter()
    model: dict[str, Any] | None = None
    if saved is None:
        report("training the matching model (DuckDB, on a sample)")
        rows = matcher.training_rows(len(match["unique_id"]), settings.training_sample)
        sample = arrow_table({name: [column[i] for i in rows] for name, column in match.items()})
        model = engine.trained(sample)
        if model is None:
            model = matcher.train_apart(sample, sample=settings.training_sample)
            engine.keep(sample, model)
        del sample
        summary.phases["train"] = time.perf_counter() - clock
    report("linking exact identifiers")
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
    report(f"scoring candidate pairs ({engine.describe()})")
    edges = matcher.predict(table, model, threshold=scoring_threshold(settings), engine=engine)
    summary.phases["predict"] = time.perf_counter() - clock
    summary.engine, summary.resumed = engine.name, list(engine.resumed)
    return edges, exact


@dataclass
class _Computed:
    """A full resolution's plan, computed from one snapshot of the store."""

    mark: SnapshotMark
    interactions_linked: int  # interactions with something to link them by
    planned: ProfilePlan
    history: History
    linked_at: dict[int, datetime]
    known_pairs: dict[tuple[int, int], int]
    model: dict[str, Any] | None = None  # trained now: saved with the result
    training: tuple[Any, int] | None = None  # its term frequencies, rows trained on
    #: rows marked for recheck in the snapshot → their ingestion time then (unmarked after)
    rechecked: dict[int, Any] = field(default_factory=dict)
    #: the loaded rows of every node, where the run kept them (else the writer reads them again)
    rows: dict[int, LoadedRow] | None = None


def resolve(
    store: Store,
    settings: Settings,
    *,
    retrain: bool = False,
    extra_edges: EdgeSource | None = None,
    actor: str = "custos resolve",
    progress: PhaseReport | None = None,
) -> ResolveSummary:
    """Rebuild the profiles from every record and interaction in the store.

    Probabilistic links use the newest saved model (``retrain`` trains and saves a new version
    first; so does the first run). Loading, training, scoring and clustering read a snapshot
    of the store; the write lock is held only to write the result, so ingestion and collection
    go on meanwhile (what they add is left for the next incremental resolution). If the store
    changed in a way the plan cannot absorb (see :class:`SnapshotMark`), it is computed again; the
    last attempt holds the write lock throughout.

    Pairs are scored on the configured engine (:func:`engine_for`); one that keeps its work
    (Spark) lets a run after a failed one read back what that one finished. ``progress`` is
    told each phase as it starts.
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
        run = _Run(settings, retrain, extra_edges, actor, engine_for(settings), progress or _quiet)
        return _resolve(store, run, started, indexed)


def _ensure_indexes(store: Store) -> None:
    with store.write() as conn:
        ensure_match_indexes(conn)


@dataclass(frozen=True)
class _Run:
    """What one resolution was asked to do, and where it reports."""

    settings: Settings
    retrain: bool
    extra_edges: EdgeSource | None
    actor: str
    engine: matcher.Engine
    report: PhaseReport


def _resolve(store: Store, run: _Run, started: float, indexed: Future[None]) -> ResolveSummary:
    for attempt in range(SNAPSHOT_ATTEMPTS + 1):
        summary = ResolveSummary()
        if attempt < SNAPSHOT_ATTEMPTS:
            with store.read(snapshot=True) as conn:
                computed = _compute(conn, run, summary)
            indexed.result()  # (raises what it raised)
            locked = time.perf_counter()
            run.report("writing profiles")
            with store.write(bulk=True) as conn:
                if SnapshotMark.read(conn, computed.mark.highest) != computed.mark:
                    del computed  # (a million rows: not kept while the next is loaded)
                    continue
                _apply(store, conn, run, computed, summary)
        else:
            indexed.result()
            locked = time.perf_counter()
            with store.write(bulk=True) as conn:
                computed = _compute(conn, run, summary)
                run.report("writing profiles")
                _apply(store, conn, run, computed, summary)
        summary.phases["locked"] = time.perf_counter() - locked  # the write lock held, commit too
        break
    run.engine.finish()  # (written: what was kept to resume a failed run goes)
    summary.seconds = time.perf_counter() - started
    return summary


def _compute(conn: Connection, run: _Run, summary: ResolveSummary) -> _Computed:
    """Load, link, train, score and cluster (reads only)."""
    settings = run.settings
    run.report("loading records and interactions")
    clock = time.perf_counter()
    mark = SnapshotMark.read(conn)
    # The rows behind the golden records are kept up to a bound; past it they are read again
    # when those are written (at millions of records they are a quarter of the run's memory).
    nodes, rows, match = load(conn, keep_rows=settings.resolve_rows_in_memory)
    kept = rows if len(rows) == len(nodes) else None
    del rows
    nodes = join_phone_forms(nodes)
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
                conn,
                settings,
                match,
                exact_job,
                summary,
                trained,
                retrain=run.retrain,
                engine=run.engine,
                report=run.report,
            )
        else:
            exact = exact_job.result()
    del match
    # (read only now: the memberships of a million records would add to the matcher's peak)
    decided = decisions(conn)
    known_pairs = stored_pairs(conn)
    history, linked_at = _history(conn)
    rechecked = recheck_marks(conn)
    run.report("clustering")
    clock = time.perf_counter()
    planned = plan_profiles(
        nodes,
        exact,
        probable,
        decided,
        settings,
        history,
        partial(stored_anchors, conn),
        extra=run.extra_edges(nodes) if run.extra_edges else (),
    )
    del probable
    summary.count_links(exact, planned)
    summary.phases["cluster"] = time.perf_counter() - clock
    # (the nodes go here: the graph of a million records is not kept while the result is written)
    return _Computed(
        mark,
        sum(1 for n in nodes if not n.is_record),
        planned,
        history,
        linked_at,
        known_pairs,
        trained.get("model"),
        trained.get("training"),
        rechecked,
        kept,
    )


def _apply(
    store: Store, conn: Connection, run: _Run, computed: _Computed, summary: ResolveSummary
) -> None:
    """Write a computed resolution (inside the write transaction)."""
    settings = run.settings
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
    index_quotes(conn, computed.rechecked)
    writer = ProfileWriter(store, conn, settings, run.actor, summary.phases)
    writer.rewrite(
        computed.planned,
        computed.history,
        linked_at=computed.linked_at,
        known_pairs=computed.known_pairs,
        rechecked=computed.rechecked,
        rows=computed.rows,
    )
    summary.linked_interactions = computed.interactions_linked
    summary.count_profiles(computed.planned)


def decisions(conn: Connection) -> Decisions:
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
    return Decisions(together, apart)


def _history(conn: Connection) -> tuple[History, dict[int, datetime]]:
    """Every membership, the active profiles and every profile id given; and when each member
    was linked."""
    members = t.profile_members.c
    previous: dict[int, str] = {}
    linked_at: dict[int, datetime] = {}
    for raw_id, pid, at in conn.execute(
        select(members.raw_id, members.profile_id, members.linked_at)
    ):
        previous[raw_id] = pid
        linked_at[raw_id] = at
    profiles = t.profiles.c
    active = select(profiles.id, profiles.created_at).where(profiles.status == "active")
    created_at = {pid: created for pid, created in conn.execute(active)}
    taken = set(conn.execute(select(profiles.id)).scalars())
    return History(previous, created_at, taken), linked_at
