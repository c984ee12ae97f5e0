"""Writing a resolution: one database thread for the work, in order, and the rewrite of whole
tables (profiles, members, evidence, identifiers, golden records, match indexes)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, String, Table, delete, literal, select, union_all, update

from custos.core.fields import STRONG_IDENTIFIERS
from custos.store import Store
from custos.store import tables as t

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


class Jobs:
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

    def __enter__(self) -> Jobs:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.cancelled = True
        self.pending.put(None)
        self.thread.join()
        if kind is None and self.failed:
            raise self.failed[0]


def insert_identifiers(conn: Connection) -> None:
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
    for ids, values in ((retired, {"status": "retired"}), (changed - created, {})):
        for chunk in Store.of(conn).chunks(sorted(ids)):
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
