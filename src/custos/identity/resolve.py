"""Full identity resolution: records and interactions → profiles with stable ids.

Reads every normalised record and interaction, links them by exact strong identifiers (with the
guard rails of :func:`~custos.identity.graph.exact_edges`) and by probabilistic matches of the
records (a Splink model, trained on the first run and kept in the store), joins them into
coherent clusters (:class:`~custos.identity.graph.CoherentUnionFind`), keeps profile ids stable
(see :mod:`custos.identity.ids`), and rewrites membership, merge evidence and golden records in
one write transaction: a reader sees the old profiles or the new ones, never a mix.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Connection,
    Select,
    String,
    Table,
    Text,
    delete,
    func,
    literal,
    select,
    type_coerce,
    union_all,
    update,
)

from custos.core.bulk import paused_gc
from custos.core.fields import STRONG_IDENTIFIERS
from custos.core.settings import Settings
from custos.identity import matcher, models
from custos.identity.golden import ADDRESS, RECTIFICATION, SINGLE, Candidate, golden_record
from custos.identity.graph import CoherentUnionFind, Edge, IgnoredIdentifier, Node, exact_edges
from custos.identity.ids import assign_ids
from custos.store import Store, meta
from custos.store import golden as golden_store
from custos.store import tables as t

if TYPE_CHECKING:
    import pyarrow as pa

#: A producer of extra edges (a test or another matcher plugs in here).
EdgeSource = Callable[[list[Node]], list[Edge]]
#: Record columns → the matcher's columns (names as folded keys, street as its key).
MATCH_SOURCE = {
    "first_name": "first_name_key",
    "surname": "last_name_key",
    "dob": "date_of_birth",
    "email": "email",
    "phone": "phone",
    "street": "street_key",
    "postcode": "postcode",
    "city": "city",
    "customer_id": "customer_id",
}

_GOLDEN_COLUMNS = (*SINGLE, *ADDRESS)
#: Where each column the matcher reads sits in a loaded row.
_ROW_AT = {
    "first_name_key": 4,
    "last_name_key": 5,
    "street_key": 8,
    **{name: 9 + i for i, name in enumerate(_GOLDEN_COLUMNS)},
}


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
    ignored: list[IgnoredIdentifier] = field(default_factory=list)
    seconds: float = 0.0


#: A loaded row: (raw_id, source, record_id, is_record, first_key, last_key, when, extra JSON,
#: street_key, *golden values in :data:`_GOLDEN_COLUMNS` order). Kept as plain tuples: a
#: million objects with a dict each would cost seconds and hundreds of megabytes, and most are
#: only read once, to write their profile's golden record.
Row = tuple[Any, ...]
Loaded = tuple[list[Node], dict[int, Row], dict[str, list[Any]]]

_GOLDEN_AT = 9  # first golden value in a Row
_IDENTIFIER_AT = tuple((k, _GOLDEN_AT + _GOLDEN_COLUMNS.index(k)) for k in STRONG_IDENTIFIERS)
_DOB_AT = _GOLDEN_AT + _GOLDEN_COLUMNS.index("date_of_birth")
#: Row positions whose values repeat across rows (see :func:`_fetch_all`).
_SHARED = (
    1,  # source
    4,  # first name key
    5,  # surname key
    6,  # when
    *(
        _GOLDEN_AT + _GOLDEN_COLUMNS.index(name)
        for name in ("first_name", "last_name", "date_of_birth", "postcode", "city", "country")
    ),
)
assert _SHARED == (1, 4, 5, 6, 9, 10, 13, 17, 18, 19), "update _shared_values to the Row layout"
_SINGLE_AT = tuple((name, _GOLDEN_AT + _GOLDEN_COLUMNS.index(name)) for name in SINGLE)
_ADDRESS_AT = tuple((name, _GOLDEN_AT + _GOLDEN_COLUMNS.index(name)) for name in ADDRESS)
_STREET_AT = _GOLDEN_AT + _GOLDEN_COLUMNS.index("street")
_CITY_AT = _GOLDEN_AT + _GOLDEN_COLUMNS.index("city")


def load(
    conn: Connection, *, new_only: bool = False, raw_ids: Sequence[int] | None = None
) -> Loaded:
    """Records and interactions as identity resolution sees them: graph nodes, the rows behind
    golden records (by raw id; see :func:`candidate`) and the matcher's columns (records only).
    ``new_only``: those in no profile yet; ``raw_ids``: just these."""
    if raw_ids is not None:
        out: Loaded = ([], {}, {})
        ordered = sorted(raw_ids)
        for i in range(0, len(ordered), 5000):
            part = _load(conn, new_only=new_only, raw_ids=ordered[i : i + 5000])
            out[0].extend(part[0])
            out[1].update(part[1])
            for key, values in part[2].items():
                out[2].setdefault(key, []).extend(values)
        if not out[2]:
            out[2].update({"unique_id": [], **{name: [] for name in MATCH_SOURCE}})
        return out
    return _load(conn, new_only=new_only)


class _Instants(dict[Any, datetime]):
    """Stored timestamps → aware datetimes, each distinct value parsed once (records ingested
    together share one; SQLite hands back text, PostgreSQL datetimes)."""

    def __init__(self) -> None:
        super().__init__()
        #: parsed → as stored, to write a chosen value's time back unchanged
        self.stored: dict[datetime, Any] = {}

    def __missing__(self, value: Any) -> datetime:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        self[value] = parsed
        self.stored.setdefault(parsed, value)
        return parsed


def candidate(row: Row, instants: dict[Any, datetime] | None = None) -> Candidate:
    """The golden-record candidate of a loaded row."""
    instant = (instants if instants is not None else _Instants())[row[6]]
    values = {k: v for k, v in zip(_GOLDEN_COLUMNS, row[_GOLDEN_AT:], strict=True) if v is not None}
    extras = orjson.loads(row[7]) if row[7] and row[3] else None
    return Candidate(row[0], row[1], row[2], row[3], instant, values, extras)


def _load(
    conn: Connection, *, new_only: bool = False, raw_ids: Sequence[int] | None = None
) -> Loaded:
    nodes: list[Node] = []
    rows: dict[int, Row] = {}
    match: dict[str, list[Any]] = {"unique_id": [], **{name: [] for name in MATCH_SOURCE}}
    highest = 0
    if new_only:
        # Rows arrive with growing ids and every resolution puts all records (and linkable
        # interactions) into profiles, so the new ones lie above the highest member: an
        # index range, not a scan of the store. (Erasure deletes members too, so the bound
        # only ever lets more rows through.)
        highest = conn.execute(select(func.max(t.profile_members.c.raw_id))).scalar() or 0
    for table, is_record in ((t.records, True), (t.interactions, False)):
        # When a value was true: a record's observation, an interaction's own time. Read as
        # stored (no per-row conversion) and parsed once per distinct value in candidate().
        when = (
            table.c.observed_at
            if is_record
            else func.coalesce(table.c.timestamp, table.c.observed_at)
        )
        columns = [
            table.c.raw_id,
            t.sources.c.name,
            t.raw_records.c.record_id,
            literal(is_record),
            table.c.first_name_key,
            table.c.last_name_key,
            type_coerce(when, Text),
            table.c.extra,
            table.c.street_key,
            *(table.c[name] for name in _GOLDEN_COLUMNS),
        ]
        query = (
            select(*columns)
            .join(t.raw_records, t.raw_records.c.id == table.c.raw_id)
            .join(t.sources, t.sources.c.id == table.c.source_id)
            .order_by(table.c.raw_id)
        )
        if raw_ids is not None:
            query = query.where(table.c.raw_id.in_(raw_ids))
        if new_only:
            # ... and the rows that changed since they were stored (identity_recheck: an
            # anonymous collected call that got its user id), wherever their ids lie. Two
            # queries: with an OR between them SQLite would scan the table.
            pm = t.profile_members
            query = query.outerjoin(pm, pm.c.raw_id == table.c.raw_id).where(pm.c.raw_id.is_(None))
            recheck = select(t.identity_recheck.c.raw_id)
            loaded = _fetch_all(conn, query.where(table.c.raw_id > highest))
            earlier = query.where(table.c.raw_id <= highest, table.c.raw_id.in_(recheck))
            if again := _fetch_all(conn, earlier):
                loaded = sorted(again + loaded, key=itemgetter(0))
        else:
            loaded = _fetch_all(conn, query)
        (email, at_e), (phone, at_p), (customer, at_c), (handle, at_h) = _IDENTIFIER_AT
        for row in loaded:
            identifiers: list[tuple[str, str]] = []
            if row[at_e]:
                identifiers.append((email, row[at_e]))
            if row[at_p]:
                identifiers.append((phone, row[at_p]))
            if row[at_c]:
                identifiers.append((customer, row[at_c]))
            if row[at_h]:
                identifiers.append((handle, row[at_h]))
            if not is_record and not identifiers:
                continue  # an interaction with nothing to link it by stays unlinked
            nodes.append(Node(row[0], is_record, row[4], row[5], row[_DOB_AT], tuple(identifiers)))
            rows[row[0]] = row
        if is_record and loaded:
            columns_of = list(zip(*loaded, strict=True))
            match["unique_id"] = list(columns_of[0])
            for name, column in MATCH_SOURCE.items():
                at = _ROW_AT[column]
                if name == "city":
                    match[name] = [v.lower() if v else v for v in columns_of[at]]
                else:
                    match[name] = list(columns_of[at])
            del columns_of
    return nodes, rows, match


def _fetch_all(conn: Connection, query: Select[Any]) -> list[Row]:
    """All rows of ``query`` as plain tuples, straight from the driver: for a million rows,
    SQLAlchemy's row objects and per-row fetching would double the time. (The query's
    parameters are integers, inlined.)

    Values that repeat across rows (source, time, names, city, postcode, birth date: the
    columns of :data:`_SHARED`) are kept once: the driver makes a new string per row, and for a
    million rows the copies cost ~400 MB.
    """
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
        return _shared_values(cursor.fetchall(), {})
    finally:
        cursor.close()


def _shared_values(rows: Sequence[Row], memo: dict[Any, Any]) -> list[Row]:
    """The rows with the values of the :data:`_SHARED` columns kept once (spelled out for the
    Row layout: a generic loop per value costs twice the time)."""
    s = memo.setdefault
    return [
        (
            r[0],
            s(r[1], r[1]),
            r[2],
            r[3],
            s(r[4], r[4]),
            s(r[5], r[5]),
            s(r[6], r[6]),
            r[7],
            r[8],
            s(r[9], r[9]),
            s(r[10], r[10]),
            r[11],
            r[12],
            s(r[13], r[13]),
            r[14],
            r[15],
            r[16],
            s(r[17], r[17]),
            s(r[18], r[18]),
            s(r[19], r[19]),
        )
        for r in rows
    ]


def arrow_table(match: dict[str, list[Any]]) -> pa.Table:
    """The matcher's input table from :func:`load`'s columns."""
    import pyarrow as pa

    return pa.table(
        {"unique_id": pa.array(match["unique_id"], pa.int64())}
        | {name: pa.array(match[name], pa.string()) for name in MATCH_SOURCE}
    )


def match_table(conn: Connection) -> pa.Table:
    """Every record's matching fields as the matcher reads them (one row per record)."""
    return arrow_table(load(conn)[2])


def _probable_edges(
    conn: Connection,
    settings: Settings,
    match: dict[str, list[Any]],
    summary: ResolveSummary,
    *,
    retrain: bool,
) -> list[Edge]:
    """Probabilistic links between records, from the saved model or one trained now."""
    table = arrow_table(match)
    match.clear()
    saved = None if retrain else models.latest(conn)
    clock = time.perf_counter()
    if saved is None:
        model = matcher.train(table, sample=settings.training_sample)
        summary.model_version = models.save(
            conn,
            model,
            matcher.term_frequencies(table),
            trained_on=min(table.num_rows, settings.training_sample),
            threshold=settings.match_threshold,
        )
        summary.trained = True
        summary.phases["train"] = time.perf_counter() - clock
        clock = time.perf_counter()
    else:
        model, summary.model_version = saved.model, saved.version
    edges = matcher.predict(table, model, threshold=settings.match_threshold)
    summary.phases["predict"] = time.perf_counter() - clock
    return edges


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
    first; so does the first run).
    """
    started = time.perf_counter()
    summary = ResolveSummary()
    with paused_gc() as pause, store.write(bulk=True) as conn:
        clock = time.perf_counter()
        nodes, rows, match = load(conn)
        pause.freeze()  # a million long-lived rows: no collection need look at them again
        summary.phases["load"] = time.perf_counter() - clock
        summary.records = sum(1 for n in nodes if n.is_record)
        summary.interactions = int(
            conn.execute(select(func.count()).select_from(t.interactions)).scalar_one()
        )
        # Exact links are found on a second thread while the model trains and scores (DuckDB
        # leaves a core idle for much of the training).
        with ThreadPoolExecutor(1, thread_name_prefix="custos-exact") as pool:
            exact_job = pool.submit(
                exact_edges,
                nodes,
                max_persons=settings.max_persons_per_identifier,
                max_records=settings.max_records_per_identifier,
            )
            probable: list[Edge] = []
            if settings.probabilistic_matching and summary.records > 1:
                probable = _probable_edges(conn, settings, match, summary, retrain=retrain)
            del match
            clock = time.perf_counter()
            exact = exact_job.result()
            summary.phases["exact"] = time.perf_counter() - clock
        # Training and scoring leave cyclic garbage (Splink's SQL syntax trees) that the paused
        # collector would keep to the end: collect it now, looking only at what was made since
        # the rows were loaded (those were frozen).
        gc.collect()
        # (read only now: the memberships of a million records would add to the matcher's peak)
        together, apart = decisions(conn)
        previous, linked_at = _memberships(conn)
        active = _active_profiles(conn)
        existing = set(conn.execute(select(t.profiles.c.id)).scalars())
        # From here on one thread does all database work, in order, while this one clusters and
        # computes the rows to write: the driver lets go of Python's lock while the database
        # works, so both cores are busy. First, while links are clustered, the database builds
        # the blocking-key indexes of incremental resolution.
        with _Jobs(backlog=16) as db:
            db.put(ensure_match_indexes, conn)
            clock = time.perf_counter()
            summary.ignored, summary.withheld_links = exact.ignored, exact.withheld_links
            # one int key per scored pair (a million tuples would cost ~60 MB)
            scored = {(e.left << 40) | e.right: e.weight or 0.0 for e in probable}
            forest = CoherentUnionFind(
                (n.raw_id for n in nodes),
                {n.raw_id: n.date_of_birth for n in nodes if n.date_of_birth},
                lambda x, y: scored.get((x << 40) | y, scored.get((y << 40) | x)),
                strong=settings.strong_match,
            )
            for left, right in apart:
                forest.keep_apart(left, right)
            # People's decisions first: a forced merge links, an unmerge keeps apart whatever
            # the evidence says, on every run. Then exact identifiers, then matches, strongest
            # first.
            used: list[Edge] = []
            extra = extra_edges(nodes) if extra_edges else []
            for edges_of_kind, check in (
                (together, False),
                (exact.edges + extra, True),
                (probable, True),
            ):
                for edge in edges_of_kind:
                    known = edge.left in forest.parent and edge.right in forest.parent
                    if known and forest.union(
                        edge.left, edge.right, check=check, weight=edge.weight
                    ):
                        used.append(edge)
            del probable
            summary.probabilistic_links = sum(1 for e in used if e.rule == "match")
            summary.kept_apart, summary.conflicts = forest.refused, forest.conflicts
            clusters = forest.groups()
            anchors = [f"{rows[m[0]][1]}\x1f{rows[m[0]][2]}" for m in clusters]
            plan = assign_ids(clusters, anchors, previous, active, existing)
            now = datetime.now(UTC)
            old_sets: dict[str, set[int]] = defaultdict(set)
            for raw_id, pid in previous.items():
                old_sets[pid].add(raw_id)
            changed = {
                pid
                for pid, members in zip(plan.cluster_ids, clusters, strict=True)
                if pid not in old_sets or set(members) != old_sets[pid]
            }
            _insert_batches(
                db,
                conn,
                store,
                t.profiles,
                ("id",),
                ((pid,) for pid in sorted(plan.created)),
                _new_profile(now),
            )
            db.put(
                partial(write_profiles, insert_created=False),
                conn,
                store,
                changed,
                plan.created,
                plan.merged,
                plan.retired,
                now,
                actor,
            )
            member_of = {
                m: pid
                for pid, members in zip(plan.cluster_ids, clusters, strict=True)
                for m in members
            }
            summary.phases["cluster"] = time.perf_counter() - clock
            clock = time.perf_counter()
            _rewrite(
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
            _rewrite(
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
            # The identifiers follow from the members just written: the database derives them
            # (in SQL, on its thread) while this thread produces the golden records.
            _rewrite(db, conn, store, t.profile_identifiers, derive=_insert_identifiers)
            summary.phases["write"] = time.perf_counter() - clock
            clock = time.perf_counter()
            _rewrite(
                db,
                conn,
                store,
                t.profile_golden,
                ("profile_id", "document"),
                golden_documents(*_by_profile_id(plan.cluster_ids, clusters), rows, settings),
            )
            del rows
            db.put(conn.execute, delete(t.identity_recheck))  # a full run looked at everything
            # derived consent states go stale
            db.put(meta.put, conn, meta.GRAPH_VERSION, uuid.uuid4().hex)
            summary.phases["golden"] = time.perf_counter() - clock
            clock = time.perf_counter()
        # (leaving the block waited for the last of the database work)
        summary.phases["flush"] = time.perf_counter() - clock
        sizes = [len(c) for c in clusters]
        summary.linked_interactions = sum(1 for n in nodes if not n.is_record)
        summary.profiles = len(clusters)
        summary.created = len(plan.created)
        summary.merged = len(plan.merged)
        summary.multi_record_profiles = sum(1 for s in sizes if s > 1)
        summary.largest_profile = max(sizes, default=0)
        summary.edges = len(used)
        clock = time.perf_counter()
    summary.phases["commit"] = time.perf_counter() - clock
    summary.seconds = time.perf_counter() - started
    return summary


#: Indexes on records that incremental resolution looks candidates up by (the blocking keys).
#: Created by the first full resolution, not at ingestion: a bulk load into an empty store is
#: faster without them.
MATCH_INDEXES = {
    "ix_records_match_names": ("last_name_key", "first_name_key"),
    "ix_records_match_dob": ("date_of_birth", "last_name_key"),
    "ix_records_match_postcode": ("postcode", "first_name_key"),
    "ix_records_match_street": ("street_key",),
}


def ensure_match_indexes(conn: Connection) -> None:
    """Create the blocking-key indexes on records if they are missing."""
    for name, columns in MATCH_INDEXES.items():
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON records ({', '.join(columns)})")


class _Jobs:
    """Database work done in order on a second thread while this one goes on computing.

    The database driver lets go of Python's lock while the database works, so producing rows
    and storing them use both cores. Nothing else may use the connection the jobs use until
    the block ends; ending it waits for the last job and raises the first failure (a failure
    stops the jobs after it, and so does an exception in the block). At most ``backlog`` jobs
    wait: memory stays bounded when the database is the slower side.
    """

    def __init__(self, backlog: int = 4) -> None:
        self.pending: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(
            maxsize=backlog
        )
        self.failed: list[BaseException] = []
        self.cancelled = False
        self.thread = threading.Thread(target=self._run, name="custos-resolve-db", daemon=True)

    def _run(self) -> None:
        while (job := self.pending.get()) is not None:
            if self.failed or self.cancelled:
                continue  # drain: the block raises (or has raised) already
            work, args = job
            try:
                work(*args)
            except BaseException as exc:  # re-raised on this side
                self.failed.append(exc)

    def put(self, work: Callable[..., Any], *args: Any) -> None:
        """Queue ``work(*args)`` (waits while the backlog is full); raises an earlier failure."""
        if self.failed:
            raise self.failed[0]
        self.pending.put((work, args))

    def __enter__(self) -> _Jobs:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.cancelled = True
        self.pending.put(None)
        self.thread.join()
        if kind is None and self.failed:
            raise self.failed[0]


def _by_profile_id(
    profile_ids: Sequence[str], clusters: Sequence[Sequence[int]]
) -> tuple[list[str], list[Sequence[int]]]:
    """Profiles in id order, so their rows arrive in primary-key order (appends, not seeks)."""
    order = sorted(range(len(profile_ids)), key=profile_ids.__getitem__)
    return [profile_ids[i] for i in order], [clusters[i] for i in order]


def golden_documents(
    profile_ids: Sequence[str],
    clusters: Sequence[Sequence[int]],
    rows: dict[int, Row],
    settings: Settings,
) -> Iterator[tuple[str, str]]:
    """(profile id, golden record document) per profile (:mod:`custos.store.golden`), produced
    one profile at a time from the loaded rows of its members.

    The same choice as :func:`~custos.identity.golden.golden_record`, made on the loaded rows
    directly for the rank-order rules (``priority``, ``recent``): a full resolution writes
    millions of golden values, and objects per member and value would cost most of its time.
    """
    instants = _Instants()
    rule = settings.golden_rule
    if rule not in ("priority", "recent"):
        for pid, members in zip(profile_ids, clusters, strict=True):
            chosen = golden_record(
                [candidate(rows[m], instants) for m in members],
                rule=rule,
                priority=settings.source_priority,
            )
            yield pid, golden_store.encode(chosen, rule)
        return
    rank = {name: i for i, name in enumerate(settings.source_priority)}
    rank_of = rank.get if rule == "priority" else (lambda _source, _default: 0)
    unranked = len(rank)
    stamps = _Stamps(instants)
    recency = _Recency(instants)
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS

    def order(row: Row) -> tuple[Any, ...]:
        # As golden._ranker: a rectification first, records before interactions, then the
        # source's priority (rule "priority"), newest first, lowest raw id.
        return (
            row[1] != RECTIFICATION,
            not row[3],
            rank_of(row[1], unranked),
            recency[row[6]],
            row[0],
        )

    # (Person columns are text: only extra attributes need str(); values are (value, origin)
    # pairs, origin indexing the document's "from" list.)
    for pid, members in zip(profile_ids, clusters, strict=True):
        values: dict[str, tuple[Any, int]] = {}
        if len(members) == 1:
            row = rows[members[0]]
            for attribute, at in _SINGLE_AT:
                if row[at]:
                    values[attribute] = (row[at], 0)
            if row[_STREET_AT] or row[_CITY_AT]:
                for attribute, at in _ADDRESS_AT:
                    if row[at]:
                        values[attribute] = (row[at], 0)
            if row[3] and row[7]:
                for name, value in orjson.loads(row[7]).items():
                    if value not in (None, ""):
                        values[name] = (str(value), 0)
            document = {"rule": rule, "from": ((row[1], row[2], stamps[row[6]]),), "values": values}
            yield pid, dumps(document, option=sort_keys).decode()
            continue
        ordered = sorted(map(rows.__getitem__, members), key=order)
        picks: list[tuple[str, Any, Row]] = []
        for attribute, at in _SINGLE_AT:
            for row in ordered:
                if row[at]:
                    picks.append((attribute, row[at], row))
                    break
        for row in ordered:
            if row[_STREET_AT] or row[_CITY_AT]:
                picks.extend((a, row[at], row) for a, at in _ADDRESS_AT if row[at])
                break
        extras = [(row, orjson.loads(row[7])) for row in ordered if row[3] and row[7]]
        for name in sorted({name for _, extra in extras for name in extra}):
            for row, extra in extras:
                if extra.get(name) not in (None, ""):
                    picks.append((name, str(extra[name]), row))
                    break
        origins: list[tuple[str, str, str]] = []
        index: dict[int, int] = {}
        for attribute, value, row in picks:
            origin = index.get(row[0])
            if origin is None:
                origin = index[row[0]] = len(origins)
                origins.append((row[1], row[2], stamps[row[6]]))
            values[attribute] = (value, origin)
        document = {"rule": rule, "from": origins, "values": values}
        yield pid, dumps(document, option=sort_keys).decode()


class _Recency(dict[Any, float]):
    """Stored timestamps → minus their POSIX time (newest sorts first), each value once."""

    def __init__(self, instants: _Instants) -> None:
        super().__init__()
        self.instants = instants

    def __missing__(self, value: Any) -> float:
        self[value] = out = -self.instants[value].timestamp()
        return out


class _Stamps(dict[Any, str]):
    """Stored timestamps → their form in golden documents, each distinct value once."""

    def __init__(self, instants: _Instants) -> None:
        super().__init__()
        self.instants = instants

    def __missing__(self, value: Any) -> str:
        self[value] = out = golden_store.stamp(self.instants[value])
        return out


def _insert_identifiers(conn: Connection) -> None:
    """profile_identifiers from profile_members: each strong identifier of each member row
    (record or interaction), once per profile, in primary-key order."""
    pm = t.profile_members
    parts = [
        select(
            literal(kind, String).label("kind"),
            table.c[kind].label("value"),
            pm.c.profile_id.label("profile_id"),
        )
        .join_from(table, pm, pm.c.raw_id == table.c.raw_id)
        .where(table.c[kind] != "")
        for table in (t.records, t.interactions)
        for kind in STRONG_IDENTIFIERS
    ]
    found = union_all(*parts).subquery()
    query = select(found.c.kind, found.c.value, found.c.profile_id).distinct()
    query = query.order_by(found.c.kind, found.c.value, found.c.profile_id)
    conn.execute(t.profile_identifiers.insert().from_select(("kind", "value", "profile_id"), query))


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


def write_profiles(
    conn: Connection,
    store: Store,
    changed: set[str],
    created: set[str],
    merged: dict[str, str],
    retired: set[str],
    now: datetime,
    actor: str,
    *,
    insert_created: bool = True,
) -> None:
    """Create (unless the caller inserted them: ``insert_created``), merge, retire and touch
    profile rows (``updated_at`` of the changed ones)."""
    if created and insert_created:
        store.insert_many(
            conn, t.profiles, [(pid,) for pid in sorted(created)], ("id",), _new_profile(now)
        )
    for loser, survivor in sorted(merged.items()):
        conn.execute(
            update(t.profiles)
            .where(t.profiles.c.id == loser)
            .values(status="merged", merged_into=survivor, updated_at=now)
        )
        # Older redirects to the loser now point straight at the survivor.
        conn.execute(
            update(t.profiles).where(t.profiles.c.merged_into == loser).values(merged_into=survivor)
        )
        conn.execute(
            t.profile_events.insert().values(
                at=now,
                actor=actor,
                action="merge",
                profile_id=survivor,
                other_profile_id=loser,
                reason="records of both profiles were linked (see profile explain)",
            )
        )
    for ids, values in ((retired, {"status": "retired"}), (changed - created, {})):
        ordered = sorted(ids)
        for i in range(0, len(ordered), 500):
            chunk = ordered[i : i + 500]
            conn.execute(
                update(t.profiles)
                .where(t.profiles.c.id.in_(chunk))
                .values(**values, updated_at=now)
            )


def _rewrite(
    db: _Jobs,
    conn: Connection,
    store: Store,
    table: Table,
    names: Sequence[str] = (),
    rows: Iterable[tuple[Any, ...]] = (),
    const: dict[str, Any] | None = None,
    *,
    derive: Callable[[Connection], None] | None = None,
) -> None:
    """Replace a table's rows (tuples in ``names`` order), inserted by ``db`` in batches while
    this thread produces the next; or, with ``derive``, rows the database derives itself.

    On SQLite the table's secondary indexes are dropped first and built again at the end: one
    sort is much cheaper than a million inserts in random key order (readers keep seeing the
    committed table and its indexes until the transaction ends). PostgreSQL would lock readers
    out of the table until then, so there the indexes stay.
    """
    indexes = (
        sorted(table.indexes, key=lambda ix: ix.name or "") if store.backend == "sqlite" else []
    )
    for index in indexes:
        db.put(partial(index.drop, checkfirst=True), conn)
    db.put(conn.execute, delete(table))
    if derive is not None:
        db.put(derive, conn)
    _insert_batches(db, conn, store, table, names, rows, const)
    for index in indexes:
        db.put(partial(index.create, checkfirst=True), conn)


def _insert_batches(
    db: _Jobs,
    conn: Connection,
    store: Store,
    table: Table,
    names: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    const: dict[str, Any] | None = None,
) -> None:
    """Insert rows through ``db`` in batches, each prepared for the driver on this thread."""
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 20_000:
            prepared = store.prepare_rows(conn.dialect, table, batch, names, const, detached=True)
            db.put(store.insert_prepared, conn, prepared)
            batch = []
    if batch:
        prepared = store.prepare_rows(conn.dialect, table, batch, names, const, detached=True)
        db.put(store.insert_prepared, conn, prepared)


def _new_profile(now: datetime) -> dict[str, Any]:
    """The columns of a new profile row besides its id."""
    return {"status": "active", "merged_into": None, "created_at": now, "updated_at": now}
