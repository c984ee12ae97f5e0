"""The profile writer: a :class:`~custos.identity.clustering.ProfilePlan` into the store.

A full run rewrites whole tables (:meth:`ProfileWriter.rewrite`: profiles, members, evidence, review
queue, identifiers, golden records) with one database thread doing the work, in order, while
this one produces the rows; an incremental run changes the profiles it touched
(:meth:`ProfileWriter.attach`). Both write the same rows of a plan: stable ids and merges, merge
evidence, the review queue and golden records.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Table,
    delete,
    func,
    literal,
    select,
    union_all,
    update,
)

from custos.core.fields import STRONG_IDENTIFIERS
from custos.core.settings import Settings
from custos.identity.clustering import EVIDENCE_COLUMNS, REVIEW_COLUMNS, History, ProfilePlan
from custos.identity.graph import Node
from custos.identity.ids import Assignment
from custos.identity.jobs import Jobs
from custos.identity.loading import fetch_rows, golden_documents
from custos.identity.snapshot import unmark
from custos.store import Store, meta
from custos.store import tables as t

#: Profiles whose golden records a full run makes from one read of their members' rows.
GOLDEN_BATCH = 10_000


def chunks(items: Iterable[Any]) -> Iterator[Sequence[Any]]:
    """``items`` (distinct, sorted) in slices of at most :attr:`Store.in_chunk`, for ``IN`` queries."""
    yield from Store.chunks(sorted(set(items)))


@dataclass
class ProfileWriter:
    """Writes a :class:`~custos.identity.clustering.ProfilePlan` inside the write transaction
    ``conn``: a full run with :meth:`rewrite`, an incremental one with :meth:`attach`. Both
    write a plan's stable ids and merges (as ``actor``), its merge evidence, its review queue
    and its golden records, and time their steps in ``phases``."""

    store: Store
    conn: Connection
    settings: Settings
    actor: str
    phases: dict[str, float]

    def rewrite(
        self,
        planned: ProfilePlan,
        history: History,
        *,
        linked_at: dict[int, datetime],
        known_pairs: dict[tuple[int, int], int],
        rechecked: dict[int, Any],
        rows: dict[int, Any] | None = None,
    ) -> None:
        """Rewrite every profile table from a full run's plan; ``linked_at`` when each previous
        member was linked (kept where its profile stays), ``known_pairs`` the review queue
        before (:func:`stored_pairs`), ``rechecked`` the recheck marks the run looked at. The
        golden records are made from the members' rows: ``rows`` where the run kept them, else
        read again a batch at a time."""
        conn, store = self.conn, self.store
        clock = time.perf_counter()
        clusters, assigned, previous = planned.clusters, planned.assigned, history.previous
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
                assigned,
                now,
                self.actor,
            )
            member_of = planned.member_of
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
            created = {"created_at": now}
            rewrite(
                db,
                conn,
                store,
                t.merge_evidence,
                EVIDENCE_COLUMNS,
                planned.evidence_rows(),
                created,
            )
            review = planned.review_rows(known_pairs)
            rewrite(db, conn, store, t.identity_candidates, REVIEW_COLUMNS, review, created)
            db.put(meta.put, conn, meta.REVIEW_ID, str(_highest(review, known_pairs)))
            # The identifiers follow from the members just written: the database derives them
            # (in SQL, on its thread) while this thread produces the golden records.
            rewrite(db, conn, store, t.profile_identifiers, derive=insert_identifiers)
            self.phases["write"] = time.perf_counter() - clock
            clock = time.perf_counter()
            rewrite(
                db,
                conn,
                store,
                t.profile_golden,
                ("profile_id", "document"),
                self._golden(db, *_by_profile_id(assigned.cluster_ids, clusters), rows),
            )
            # This run looked at the rows marked for recheck in its snapshot; one changed again
            # since (a newer version) stays marked, as do rows marked since.
            db.put(unmark, conn, rechecked)
            # derived consent states go stale
            db.put(meta.put, conn, meta.GRAPH_VERSION, uuid.uuid4().hex)
            self.phases["golden"] = time.perf_counter() - clock
            clock = time.perf_counter()
        # (leaving the block waited for the last of the database work)
        self.phases["flush"] = time.perf_counter() - clock

    def _golden(
        self,
        db: Jobs,
        profile_ids: Sequence[str],
        clusters: Sequence[Sequence[int]],
        rows: dict[int, Any] | None,
    ) -> Iterator[tuple[str, str]]:
        """(profile id, golden record document) per profile, from its members' ``rows``, or
        where the run kept none, from their rows read again for :data:`GOLDEN_BATCH` profiles
        at a time, the next batch's while this one's documents are made.

        They are read on a connection of their own (the rows are committed; this transaction
        writes only profile tables), so the reads go on while ``db`` writes; an in-memory
        store has one connection, and ``db`` reads them between its writes."""
        if rows is not None:
            yield from golden_documents(profile_ids, clusters, rows, self.settings)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="custos-golden") as pool:

            def read(start: int) -> Future[dict[int, Any]]:
                batch = clusters[start : start + GOLDEN_BATCH]
                ids = [raw_id for members in batch for raw_id in members]
                if self.store.in_memory:
                    return db.submit(fetch_rows, self.conn, ids)
                return pool.submit(self._read_rows, ids)

            pending = read(0)
            for start in range(0, len(clusters), GOLDEN_BATCH):
                rows = db.result(pending)
                if start + GOLDEN_BATCH < len(clusters):
                    pending = read(start + GOLDEN_BATCH)
                end = start + GOLDEN_BATCH
                yield from golden_documents(
                    profile_ids[start:end], clusters[start:end], rows, self.settings
                )

    def _read_rows(self, raw_ids: Sequence[int]) -> dict[int, Any]:
        with self.store.read() as conn:
            return fetch_rows(conn, raw_ids)

    def attach(
        self,
        planned: ProfilePlan,
        history: History,
        rows: dict[int, Any],
        *,
        nodes: Sequence[Node],
        new_ids: set[int],
    ) -> None:
        """Write an incremental run's plan (which holds only the clusters that changed): their
        profiles are created, merged, split and rebuilt, others left alone. ``nodes`` and
        ``rows`` are what the run loaded (the new rows and every member of the profiles it
        touched: their identifiers, their golden records)."""
        clock = time.perf_counter()
        now = datetime.now(UTC)
        assigned = planned.assigned
        write_profiles(self.conn, self.store, set(assigned.cluster_ids), assigned, now, self.actor)
        rewritten = set(assigned.cluster_ids) | set(assigned.merged) | assigned.retired
        self._link(planned, history.previous, new_ids, now)
        self._add_evidence(planned, rewritten, now)
        self._requeue(planned, {n.raw_id for n in nodes}, new_ids, now)
        self._rebuild(planned, rewritten, nodes, rows)
        meta.put(self.conn, meta.GRAPH_VERSION, uuid.uuid4().hex)
        self.phases["write"] = time.perf_counter() - clock

    def _link(
        self, planned: ProfilePlan, previous: dict[int, str], new_ids: set[int], now: datetime
    ) -> None:
        """The new rows (new versions of rows too) join their profiles, and the rows whose
        profile changed (merged, split off) move."""
        conn, members = self.conn, t.profile_members
        member_of = planned.member_of
        moved = sorted(r for r, pid in member_of.items() if r in new_ids or previous.get(r) != pid)
        for chunk in chunks(moved):
            conn.execute(delete(members).where(members.c.raw_id.in_(chunk)))
        self.store.insert_many(
            conn,
            members,
            [{"raw_id": r, "profile_id": member_of[r], "linked_at": now} for r in moved],
        )
        # (a member the run did not plan, if any, follows its profile where it merged)
        for loser, survivor in planned.assigned.merged.items():
            conn.execute(
                update(members).where(members.c.profile_id == loser).values(profile_id=survivor)
            )

    def _add_evidence(self, planned: ProfilePlan, rewritten: set[str], now: datetime) -> None:
        """The links that joined the planned clusters replace the evidence of their profiles
        (and of those merged away or retired)."""
        evidence = t.merge_evidence
        for chunk in chunks(rewritten):
            self.conn.execute(delete(evidence).where(evidence.c.profile_id.in_(chunk)))
        if not planned.used:
            return
        after = self.conn.execute(select(func.coalesce(func.max(evidence.c.id), 0))).scalar_one()
        self.store.insert_many(
            self.conn,
            evidence,
            [
                dict(zip(EVIDENCE_COLUMNS, row, strict=True)) | {"created_at": now}
                for row in planned.evidence_rows(int(after))
            ],
        )

    def _requeue(
        self, planned: ProfilePlan, loaded: set[int], new_ids: set[int], now: datetime
    ) -> None:
        """The review queue's pairs of two ``loaded`` rows are the plan's now (it scored them
        all again); a new row's earlier pairs go. A pair still in the queue keeps its id."""
        conn, candidates = self.conn, t.identity_candidates
        column = candidates.c
        for chunk in chunks(new_ids):
            conn.execute(
                delete(candidates).where(
                    column.left_raw_id.in_(chunk) | column.right_raw_id.in_(chunk)
                )
            )
        # (the plan's pairs are all of two loaded rows: their ids can only be among these)
        known = {
            (min(left, right), max(left, right)): int(pid)
            for chunk in chunks(loaded)
            for pid, left, right in conn.execute(
                select(column.id, column.left_raw_id, column.right_raw_id).where(
                    column.left_raw_id.in_(chunk)
                )
            )
            if right in loaded
        }
        for chunk in chunks(known.values()):
            conn.execute(delete(candidates).where(column.id.in_(chunk)))
        if not planned.review:
            return
        highest = conn.execute(select(func.max(column.id))).scalar() or 0
        known[(0, 0)] = max(int(meta.get(conn, meta.REVIEW_ID) or 0), highest)
        review = planned.review_rows(known)
        self.store.insert_many(
            conn,
            candidates,
            [dict(zip(REVIEW_COLUMNS, row, strict=True)) | {"created_at": now} for row in review],
        )
        meta.put(conn, meta.REVIEW_ID, str(_highest(review, known)))

    def _rebuild(
        self,
        planned: ProfilePlan,
        rewritten: set[str],
        nodes: Sequence[Node],
        rows: dict[int, Any],
    ) -> None:
        """The golden records and identifiers of the ``rewritten`` profiles: the planned ones'
        from their members (those of the profiles merged away or retired go)."""
        conn, store, assigned = self.conn, self.store, planned.assigned
        for table in (t.profile_golden, t.profile_identifiers):
            for chunk in chunks(rewritten):
                conn.execute(delete(table).where(table.c.profile_id.in_(chunk)))
        store.insert_many(
            conn,
            t.profile_golden,
            list(golden_documents(assigned.cluster_ids, planned.clusters, rows, self.settings)),
            names=("profile_id", "document"),
        )
        member_of = planned.member_of
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


def stored_pairs(conn: Connection) -> dict[tuple[int, int], int]:
    """The pairs in the review queue (by their two records, lower raw id first) → their ids;
    the highest id ever given stays in as ``(0, 0)`` so ids are never given twice."""
    candidates = t.identity_candidates.c
    query = select(candidates.id, candidates.left_raw_id, candidates.right_raw_id)
    out = {
        (min(left, right), max(left, right)): int(pid) for pid, left, right in conn.execute(query)
    }
    highest = meta.get(conn, meta.REVIEW_ID)
    if highest:
        out[(0, 0)] = int(highest)
    return out


def _highest(review: Sequence[tuple[Any, ...]], known: dict[tuple[int, int], int]) -> int:
    """The highest review id given so far (kept, so that no id is ever given twice)."""
    return max([row[0] for row in review] + list(known.values()), default=0)


def _by_profile_id(
    profile_ids: Sequence[str], clusters: Sequence[Sequence[int]]
) -> tuple[list[str], list[Sequence[int]]]:
    """Profiles in id order, so their rows arrive in primary-key order (appends, not seeks)."""
    order = sorted(range(len(profile_ids)), key=profile_ids.__getitem__)
    return [profile_ids[i] for i in order], [clusters[i] for i in order]


#: Indexes on records and interactions that incremental resolution looks candidates up by
#: (the blocking keys). Created by the first full resolution, not at ingestion: a bulk load
#: into an empty store is faster without them. On interactions they are partial (rows with the
#: key only): most events carry no name.
MATCH_INDEXES = {
    "match_names": ("last_name_key", "first_name_key"),
    "match_first_names": ("first_name_key", "last_name_key"),
    "match_dob": ("date_of_birth", "last_name_key"),
    "match_dob_first": ("date_of_birth", "first_name_key"),
    "match_dob_postcode": ("date_of_birth", "postcode"),
    "match_postcode": ("postcode", "first_name_key"),
    "match_street": ("street_key",),
}


def ensure_match_indexes(conn: Connection) -> None:
    """Create the blocking-key indexes on records and interactions if they are missing."""
    store = Store.of(conn)
    for suffix, columns in MATCH_INDEXES.items():
        store.ensure_index(conn, f"ix_records_{suffix}", t.records, columns)
        store.ensure_index(
            conn, f"ix_interactions_{suffix}", t.interactions, columns, partial_on=columns[0]
        )


def insert_identifiers(conn: Connection) -> None:
    """profile_identifiers from profile_members: each strong identifier of each member row
    (record or interaction), once per profile, in primary-key order."""
    members = t.profile_members
    parts = [
        select(
            literal(kind, String).label("kind"),
            table.c[kind].label("value"),
            members.c.profile_id.label("profile_id"),
        )
        .join_from(table, members, members.c.raw_id == table.c.raw_id)
        .where(table.c[kind] != "")
        for table in (t.records, t.interactions)
        for kind in STRONG_IDENTIFIERS
    ]
    found = union_all(*parts).subquery()
    query = select(found.c.kind, found.c.value, found.c.profile_id).distinct()
    query = query.order_by(found.c.kind, found.c.value, found.c.profile_id)
    conn.execute(t.profile_identifiers.insert().from_select(("kind", "value", "profile_id"), query))


def write_profiles(
    conn: Connection,
    store: Store,
    changed: set[str],
    assigned: Assignment,
    now: datetime,
    actor: str,
    *,
    insert_created: bool = True,
) -> None:
    """Create (unless the caller inserted them: ``insert_created``), merge, split, retire and
    touch profile rows (``updated_at`` of the changed ones), with an event per merge and
    split."""
    created, merged, retired = assigned.created, assigned.merged, assigned.retired
    if created and insert_created:
        store.insert_many(
            conn, t.profiles, [(pid,) for pid in sorted(created)], ("id",), new_profile(now)
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
    for part, source in sorted(assigned.split.items()):
        conn.execute(
            t.profile_events.insert().values(
                at=now,
                actor=actor,
                action="split",
                profile_id=source,
                other_profile_id=part,
                reason="the evidence now shows its records to be two persons: some moved to a "
                "profile of their own (see profile explain)",
            )
        )
    for ids, values in ((retired, {"status": "retired"}), (changed - created, {})):
        for chunk in chunks(ids):
            conn.execute(
                update(t.profiles)
                .where(t.profiles.c.id.in_(chunk))
                .values(**values, updated_at=now)
            )


def rewrite(
    db: Jobs,
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

    The indexes the backend names (:meth:`~custos.store.base.Store.indexes_to_rebuild`) are
    dropped first and built again at the end.
    """
    indexes = store.indexes_to_rebuild(table)
    for index in indexes:
        db.put(partial(index.drop, checkfirst=True), conn)
    db.put(conn.execute, delete(table))
    if derive is not None:
        db.put(derive, conn)
    insert_batches(db, conn, store, table, names, rows, const)
    for index in indexes:
        db.put(partial(index.create, checkfirst=True), conn)


def insert_batches(
    db: Jobs,
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


def new_profile(now: datetime) -> dict[str, Any]:
    """The columns of a new profile row besides its id."""
    return {"status": "active", "merged_into": None, "created_at": now, "updated_at": now}
