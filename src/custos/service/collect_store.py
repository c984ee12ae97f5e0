"""The writing steps of collection (inside the one write transaction of a group of requests):
duplicates, known devices, raw records and interactions, quarantine and the audit entry.

Rows arrive as the driver takes them (:func:`custos.service.collect.prepare` converted their
timestamps outside the transaction), so the inserts are plain ``executemany`` calls of one
prepared statement each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Table

from custos.core.fields import Kind
from custos.ingest import normalise as n
from custos.ingest import sink
from custos.ingest.rows import Bad, Good
from custos.ingest.sink import COLLECTED
from custos.store import Store, audit
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos
    from custos.service.collect import Call, CollectRequest, CollectResult

__all__ = [
    "Stored",
    "audit_group",
    "column",
    "has_rows",
    "learn_aliases",
    "link_pending",
    "marks",
    "quarantine",
    "remember_anonymous",
    "rows_of",
    "store_rows",
]

#: A call to store: (index of its request in the group, the call, its values, the interaction
#: columns it fills and their values as the driver takes them).
Stored = tuple[int, "Call", Good, tuple[str, ...], tuple[Any, ...]]
_RAW_NAMES = (
    "id",
    "source_id",
    "record_id",
    "line_no",
    "payload",
    "ingested_at",
    "kind",
    "file_name",
)
_KIND = Kind.INTERACTIONS.value
_CONVERTED: dict[tuple[str, str, str, tuple[str, ...]], frozenset[str]] = {}


def marks(conn: Connection, count: int) -> str:
    """``count`` driver placeholders, comma-separated."""
    return Store.of(conn).placeholders(count)


def rows_of(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """A query's rows, straight from the driver's cursor (a look-up that finds thousands of
    keys spends its time in building result rows otherwise)."""
    return Store.of(conn).fetch_tuples(conn, sql, params)


def column(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """The first column of a query's rows (see :func:`rows_of`)."""
    return [row[0] for row in rows_of(conn, sql, params)]


def has_rows(conn: Connection, table: Table) -> bool:
    """Whether ``table`` holds any row."""
    return bool(rows_of(conn, f"SELECT 1 FROM {table.name} LIMIT 1", ()))


# The few statements of a group are plain SQL: building them with SQLAlchemy's constructs each
# time would cost more than running them.


def learn_aliases(
    conn: Connection, wanted: set[str], learnt: dict[str, tuple[str, datetime]]
) -> tuple[dict[str, str], dict[str, str]]:
    """Remember the anonymous id → user id pairs identify and alias calls taught (``learnt``);
    return every known one for the anonymous ids ``wanted``, and the ones taught."""
    if not (wanted or learnt):
        return {}, {}
    aliases = t.collect_aliases.name
    known: dict[str, str] = {}
    listed = sorted(wanted | set(learnt))
    for chunk in Store.chunks(listed):
        sql = (
            f"SELECT anonymous_id, user_id FROM {aliases} "
            f"WHERE anonymous_id IN ({marks(conn, len(chunk))})"
        )
        known.update(rows_of(conn, sql, chunk))
    bind = _timestamps(conn, t.collect_aliases.c.linked_at)
    new, changed = [], []
    for anon, (user, when) in sorted(learnt.items()):
        if anon not in known:
            new.append((anon, user, bind(when)))
        elif known[anon] != user:
            changed.append((user, bind(when), anon))
    if new:
        conn.exec_driver_sql(
            f"INSERT INTO {aliases} (anonymous_id, user_id, linked_at) VALUES ({marks(conn, 3)})",
            new,
        )
    if changed:
        mark = marks(conn, 1)
        conn.exec_driver_sql(
            f"UPDATE {aliases} SET user_id = {mark}, linked_at = {mark} WHERE anonymous_id = {mark}",
            changed,
        )
    taught = {anon: user for anon, (user, _) in learnt.items()}
    return known | taught, taught


def link_pending(conn: Connection, taught: dict[str, str]) -> list[tuple[str, str, str]]:
    """Give the calls stored earlier under an anonymous id the user id an identify or alias of
    this group named for it, and mark them for the next resolution to look at again.

    Returns the consent restrictions those calls carried, ``(anonymous id, user id, signals as
    kept by remember_anonymous)``, for the ledger (they now have a person)."""
    if not taught:
        return []
    pending_calls, interactions = t.collect_pending.name, t.interactions.name
    recheck = t.identity_recheck.name
    mark = marks(conn, 1)
    listed = sorted(taught)
    signals: list[tuple[str, str, str]] = []
    for chunk in Store.chunks(listed):
        within = f"anonymous_id IN ({marks(conn, len(chunk))})"
        pending = rows_of(
            conn, f"SELECT anonymous_id, raw_id, signals FROM {pending_calls} WHERE {within}", chunk
        )
        if not pending:
            continue
        waiting: dict[str, list[int]] = {}
        for anon, raw_id, kept in pending:
            if user := n.customer_id(taught[anon]):
                waiting.setdefault(user, []).append(raw_id)
                if kept:
                    signals.append((anon, user, kept))
        for user, raw_ids in waiting.items():
            for ids in Store.chunks(raw_ids):
                conn.exec_driver_sql(
                    f"UPDATE {interactions} SET customer_id = {mark} WHERE customer_id IS NULL "
                    f"AND raw_id IN ({marks(conn, len(ids))})",
                    (user, *ids),
                )
            conn.exec_driver_sql(
                f"INSERT INTO {recheck} (raw_id) VALUES ({mark})", [(r,) for r in raw_ids]
            )
        conn.exec_driver_sql(f"DELETE FROM {pending_calls} WHERE {within}", tuple(chunk))
    return signals


def remember_anonymous(
    conn: Connection,
    stored: list[Stored],
    raw_ids: list[int],
    customer: int,
    kept: Callable[[int, Call, Good], str | None],
) -> None:
    """Keep the anonymous id of each call stored without a user id, for a later identify, with
    what ``kept(index of the request, call, values)`` keeps of its consent signals."""
    waiting = [
        (item.anon[:200], raw_id, kept(index, item, good) if item.signals else None)
        for raw_id, (index, item, good, _, _) in zip(raw_ids, stored, strict=True)
        if item.anon and good.values[customer] is None
    ]
    if waiting:
        conn.exec_driver_sql(
            f"INSERT INTO {t.collect_pending.name} (anonymous_id, raw_id, signals) VALUES "
            f"({marks(conn, 3)})",
            waiting,
        )


def _timestamps(conn: Connection, col: Column[Any]) -> Callable[[Any], Any]:
    """A function giving a time as the connection's driver takes it for column ``col``."""
    bind = col.type.bind_processor(conn.dialect)
    return bind if bind is not None else (lambda value: value)


def _converted(conn: Connection, table: Table, names: tuple[str, ...]) -> frozenset[str]:
    """The columns of ``table`` whose values the connection's driver takes only converted
    (worked out once per dialect)."""
    dialect = conn.dialect
    key = (dialect.name, dialect.driver, table.name, names)
    found = _CONVERTED.get(key)
    if found is None:
        found = _CONVERTED[key] = frozenset(
            name for name in names if table.c[name].type.bind_processor(dialect) is not None
        )
    return found


def _insert_ready(
    app: Custos,
    conn: Connection,
    table: Table,
    names: Sequence[str],
    rows: list[tuple[Any, ...]],
    converted: frozenset[str],
) -> None:
    """Insert rows whose ``converted`` columns hold values as the driver takes them already
    (timestamps): one ``executemany`` of one statement. Should the store's column types want
    other columns converted too, the store converts them as for any insert."""
    wanted = _converted(conn, table, tuple(names))
    if wanted <= converted:
        app.store.insert_many(conn, table, rows, names=names, ready=True)
        return
    processors = [
        (i, table.c[name].type.bind_processor(conn.dialect))
        for i, name in enumerate(names)
        if name in wanted - converted
    ]
    fixed = []
    for row in rows:
        values = list(row)
        for i, proc in processors:
            if proc is not None and values[i] is not None:
                values[i] = proc(values[i])
        fixed.append(tuple(values))
    app.store.insert_many(conn, table, fixed, names=names, ready=True)


def store_rows(
    app: Custos,
    conn: Connection,
    requests: list[CollectRequest],
    sids: list[int],
    stored: list[Stored],
) -> list[int]:
    """Store the calls as raw records and interactions; their raw ids, in order."""
    if not stored:
        return []
    next_id = app.store.next_id(conn, t.raw_records, len(stored))
    bind = _timestamps(conn, t.raw_records.c.ingested_at)
    received = [bind(r.received_at) for r in requests]
    raw = [
        (
            raw_id,
            sids[index],
            good.record_id,
            good.line_no,
            good.payload,
            received[index],
            _KIND,
            COLLECTED,
        )
        for raw_id, (index, _, good, _, _) in enumerate(stored, next_id)
    ]
    _insert_ready(app, conn, t.raw_records, _RAW_NAMES, raw, frozenset({"ingested_at"}))
    # One insert per set of columns the calls fill (a few per group): their NULLs unbound.
    shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for raw_id, (index, _, _, shape, row) in enumerate(stored, next_id):
        shapes.setdefault(shape, []).append((raw_id, sids[index], received[index], *row))
    for shape, rows in shapes.items():
        _insert_ready(
            app,
            conn,
            t.interactions,
            ("raw_id", "source_id", "observed_at", *shape),
            rows,
            frozenset({"observed_at", "timestamp"}),
        )
    return list(range(next_id, next_id + len(stored)))


def quarantine(
    app: Custos,
    conn: Connection,
    requests: list[CollectRequest],
    sids: list[int],
    bad: list[tuple[int, Bad]],
    hidden: list[tuple[int, Good]],
    dropped: Sequence[tuple[int, Bad]] = (),
    unread: Sequence[tuple[int, Bad]] = (),
) -> None:
    """Quarantine the calls that cannot be stored (with their reason and the call as sent) and
    the calls of erased persons (where and why, never the values); once each. ``dropped``: the
    fields left out of stored calls, listed the same way (one entry per call and field);
    ``unread``: the consent signals of stored calls that could not be read (one per call and
    reason)."""
    entries: dict[str, dict[str, Any]] = {}
    kind = Kind.INTERACTIONS

    def add(index: int, body: str, line_no: int, item: Bad | None, left_out: bool) -> None:
        key = sink.row_key(requests[index].source, kind, body)
        if key not in entries:
            request = requests[index]
            entries[key] = sink.entry(
                key,
                sids[index],
                kind,
                COLLECTED,
                request.received_at,
                line_no,
                item,
                left_out=left_out,
            )

    # Keyed by message id (a resend differs in sentAt only) or, without one, the content; a
    # left-out field by the field too.
    pending = [(index, item, "", False) for index, item in bad]
    pending += [(index, item, f"\x1ffield {item.field}", True) for index, item in dropped]
    pending += [(index, item, f"\x1fconsent {item.reason}", True) for index, item in unread]
    for index, item, tail, left_out in pending:
        body = (f"call {item.record_id}" if item.record_id else item.raw) + tail
        add(index, body, item.line_no, item, left_out)
    for index, row in hidden:  # an erased person's call: where and why, never the values
        add(index, f"suppressed\x1f{row.record_id}", row.line_no, None, False)
    if entries:
        sink.quarantine(app.store, conn, entries)


_COUNTED = (
    "requests",
    "received",
    "stored",
    "duplicates",
    "quarantined",
    "consent_events",
    "consent_problems",
    "fields_dropped",
)


def audit_group(
    conn: Connection, requests: list[CollectRequest], results: list[CollectResult]
) -> None:
    """One audit entry per source of the group: how many requests and calls, and what became
    of them (counts only)."""
    totals: dict[str, dict[str, int]] = {}
    for request, result in zip(requests, results, strict=True):
        total = totals.setdefault(
            request.source,
            dict.fromkeys(
                _COUNTED,
                0,
            ),
        )
        total["requests"] += 1
        total["received"] += result.received
        total["stored"] += result.stored
        total["duplicates"] += result.duplicates
        total["quarantined"] += result.quarantined
        total["consent_events"] += result.consent_events
        total["consent_problems"] += result.consent_problems
        total["fields_dropped"] += result.fields_dropped
    for source, total in totals.items():
        audit.append(conn, actor=source, action="collect", detail={"source": source, **total})
