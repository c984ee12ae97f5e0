"""Collected events (Segment's HTTP Tracking API shape) → stored interactions and consent events.

Every call is stored like an ingested interaction of the source named after the write key:
``record_id`` is the call's ``messageId`` (so a resend is stored once), the raw record keeps the
call verbatim, and the normalised row carries the user id as ``customer_id`` (unless the
source says its user ids are no customer numbers: ``keys.USER_ID_FIELDS``) and the e-mail,
phone and name found in the traits, so ``custos resolve`` links it to the person. A call that
cannot be read is quarantined with its reason, never dropped. Consent carried in ``context``
(Segment and RudderStack shapes, a TCF string, GPC) and the ``Sec-GPC`` header become ledger
events. Requests are written in groups (:func:`collect_many`: the server's single writer takes
every request waiting, so many requests share one transaction and one commit); a request is
acknowledged only once the transaction holding all of it has committed.

Trust follows the channel. The write key sits in every web page, so what its calls say of a
person (user id, e-mail, phone, name, …) is a *claim* of a device: kept in the raw call and the
row's ``claims``, never in the columns identity links by or data-subject requests find people
by. A call is verified when it comes with a server-side key (scope ``server``: all of it), or
is an ``identify``/``alias`` whose user id the site's server signed (``context.userHash``, see
:func:`custos.service.keys.signed`: its user id). Only a verified ``identify`` or ``alias``
that names both an anonymous id and a user id is remembered (``collect_aliases``); later calls
of that device carry the user id. Calls made before that wait in ``collect_pending``: the
identify gives them the user id too, and marks them for the next resolution
(``identity_recheck``), which links them. Consent signals of unverified calls restrict at once
(for the verified and the claimed identifiers) but grant only for a verified identity; every
consent event is timed when the server received it (see :mod:`custos.service.collect_consent`).

The work is split so that the write transaction (which holds the store's writer lock, and on
SQLite the lock every server process takes turns on) does only what needs the store:
:func:`prepare` reads, checks and normalises the calls and reads their consent signals, down to
rows as the driver takes them; :func:`write` finds duplicates and known devices, then inserts.
Reading a call is :mod:`custos.ingest.sources.segment`, the writing steps are
:mod:`custos.service.collect_store` and the ledger's :mod:`custos.service.collect_consent`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column

from custos.consent import cache
from custos.consent.signals import Signal, signals_from_event
from custos.core.fields import Kind
from custos.ingest import normalise as n
from custos.ingest import sink
from custos.ingest.pipeline import default_region
from custos.ingest.rows import COLUMNS, Bad, Good, NormalisedBatch, RowContext, dumps
from custos.ingest.sources.segment import (
    CALL_TYPES,
    CallRows,
    as_claims,
    context_key,
    event_time,
    ids,
    message_id,
    present,
    problem,
    problem_of,
    timestamp_writer,
    user_hash,
)
from custos.service import collect_store as store
from custos.service import dsr, keys
from custos.service.collect_consent import pending_signals, record_pending, record_signals
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

__all__ = [
    "CALL_TYPES",
    "Call",
    "CollectRequest",
    "CollectResult",
    "Prepared",
    "collect",
    "collect_many",
    "event_time",
    "message_id",
    "prepare",
    "problem",
    "utcnow",
    "write",
]

_FIX = "send the call again, corrected"
_TIME_REASON = "{} is not a date-time: the call is stored with the time it was received"
_TIME_FIX = "send ISO 8601 times (2026-05-01T12:00:00Z)"
_SIGNAL_FIX = "send the consent signal in the shape the README's Conformance chapter describes"


@dataclass
class CollectResult:
    """What one collection request did."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: fields left out of stored calls (a birthday that cannot be one, …), listed with the
    #: quarantine
    fields_dropped: int = 0
    consent_events: int = 0
    #: consent signals of stored calls that could not be read (each listed in the quarantine)
    consent_problems: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class CollectRequest:
    """One collection request: its calls ``(type, message)`` and what came with them."""

    calls: list[tuple[str, dict[str, Any]]]
    source: str
    received_at: datetime
    sent_at: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: each message as JSON, when the caller has it (the API measures every call's size): kept
    #: as the verbatim record of a message whose first field is its type
    encoded: list[bytes] | None = None
    #: sent with a server-side key: what its calls say of a person is verified (a call of the
    #: public write key asserts claims only; see :func:`prepare`)
    verified: bool = False
    #: calls too large to store (by position in ``calls``), with the reason: quarantined alone
    too_large: Mapping[int, str] = field(default_factory=dict)
    #: the source's user ids are customer numbers (``customer_id``, the default); if not, a
    #: user id is kept with its call but links nothing (see ``keys.USER_ID_FIELDS``)
    user_is_customer: bool = True


@dataclass(slots=True)
class Call:
    """One call of a request on its way to the store: normalised (``good``, with the columns it
    fills, ``shape``, and their values as the driver takes them, ``row``) or not (``bad``)."""

    request: int
    line: int
    mid: str
    message: dict[str, Any]
    anon: str | None
    good: Good | None = None
    bad: Bad | None = None
    #: the fields left out of a stored call, for the quarantine list
    dropped: list[Bad] = field(default_factory=list)
    shape: tuple[str, ...] = ()
    row: tuple[Any, ...] = ()
    signals: list[Signal] = field(default_factory=list)
    #: the consent signals of the call that could not be read, for the quarantine list
    unread: list[Bad] = field(default_factory=list)
    #: how what the call says of a person is verified: ``key`` (a server-side key: all of it),
    #: ``signature`` (a signed identify or alias: its user id), or ``""`` (claims only)
    verified: str = ""
    #: what the call asserts of a person without verification (kept out of its row)
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """Requests read and normalised (no store access yet), ready for :func:`write`."""

    requests: list[CollectRequest]
    results: list[CollectResult]
    calls: list[Call]
    #: anonymous id → user id taught by identify and alias calls, in the order sent, with the
    #: time and the index of the request
    learnt: list[tuple[str, str, datetime, int]] = field(default_factory=list)


def collect(
    app: Custos,
    calls: list[tuple[str, dict[str, Any]]],
    *,
    source: str,
    received_at: datetime,
    sent_at: Any = None,
    headers: Mapping[str, str] | None = None,
    verified: bool = False,
) -> CollectResult:
    """Store collected calls ``(type, message)`` of ``source`` in one write transaction
    (``verified``: they come from a server-side key)."""
    request = CollectRequest(calls, source, received_at, sent_at, headers or {}, verified=verified)
    return collect_many(app, [request])[0]


def collect_many(app: Custos, requests: list[CollectRequest]) -> list[CollectResult]:
    """Store the calls of several requests in one write transaction (group commit).

    The requests are taken in order, as if one after another: a message id sent twice (in one
    request or in two) is stored once, for the first. All of it commits together or not at all,
    so a caller acknowledges every request once this returns, and none when it raises.
    """
    return write(app, [prepare(app, requests)])


def _bind(app: Custos, column: Column[Any]) -> Callable[[Any], Any]:
    """The column's values as the store's driver takes them (each distinct value once)."""
    return timestamp_writer(column.type.bind_processor(app.store.engine.dialect))


def _learn(call: str, given: Mapping[str, str]) -> tuple[str, str] | None:
    """The anonymous id → user id an identify or alias call teaches (``given``: its ids), if
    any."""
    user = given.get("user_id")
    anon = given.get("previous_id" if call == "alias" else "anonymous_id")
    if user and anon and anon != user:
        return anon[:200], user[:200]
    return None


def prepare(app: Custos, requests: list[CollectRequest]) -> Prepared:
    """Read, check and normalise the calls of ``requests`` (CPU only, no store access), so that
    the write transaction holds the store's writer lock only for the writing."""
    results = [CollectResult(received=len(r.calls)) for r in requests]
    ctx = RowContext(
        kind=Kind.INTERACTIONS,
        region=default_region(app.settings),
        bad_fields=app.settings.bad_fields,
        memos=app.memos,
    )
    stamp = _bind(app, t.interactions.c.timestamp)
    rows = CallRows(ctx)
    batch = NormalisedBatch()  # what the normaliser made of the calls (each also in its Call)
    taken: set[tuple[str, str]] = set()
    calls: list[Call] = []
    learnt: list[tuple[str, str, datetime, int]] = []
    for index, request in enumerate(requests):
        parsed: dict[str, Any] = {}  # the times of this request, each read once
        received_at, sent_at, encoded = request.received_at, request.sent_at, request.encoded
        for line, (call, message) in enumerate(request.calls, 1):
            given = ids(message)
            verified = (
                "key" if request.verified else _signed(app, request.source, call, message, given)
            )
            # Only a verified identify or alias links a device to a user id (a customer number).
            user_is_customer = request.user_is_customer
            if (
                verified
                and user_is_customer
                and call in ("identify", "alias")
                and (taught := _learn(call, given))
            ):
                learnt.append((*taught, received_at, index))
            mid = message_id(message)
            if (request.source, mid) in taken:  # sent twice in this group: the first counts
                results[index].duplicates += 1
                continue
            taken.add((request.source, mid))
            # The call verbatim, its type first (a message that starts with it is that already).
            if next(iter(message), None) != "type":
                verbatim = dumps({"type": call, **message})
            elif encoded is not None:
                verbatim = encoded[line - 1].decode()
            else:
                verbatim = dumps(message)
            item = Call(index, line, mid, message, given.get("anonymous_id"), verified=verified)
            calls.append(item)
            reason = request.too_large.get(line - 1) or problem_of(call, given)
            if reason:
                item.bad = Bad(line, mid, None, reason, _FIX, verbatim)
                continue
            unreadable: list[str] = []
            when = event_time(message, received_at, sent_at, parsed, unreadable)
            noted = len(batch.dropped)
            item.good = rows.normalise(
                message, call, when, given, line, mid, verbatim, batch, user_is_customer
            )
            if item.good is None:
                item.bad = batch.bad[-1]
                continue
            item.shape, item.row = present(item.good.values, stamp)
            item.dropped = batch.dropped[noted:]
            for name in unreadable:
                item.dropped.append(
                    Bad(line, mid, name, _TIME_REASON.format(name), _TIME_FIX, verbatim)
                )
    for item in calls:
        if item.good is not None and item.verified != "key":
            values, item.claims = as_claims(item.good.values, item.verified == "signature")
            if item.claims:
                good = item.good
                item.good = Good(good.line_no, good.record_id, good.payload, values)
                item.shape, item.row = present(values, stamp)
    _read_signals(app, requests, results, calls)
    return Prepared(requests, results, calls, learnt)


def _signed(
    app: Custos, source: str, call: str, message: Mapping[str, Any], given: Mapping[str, str]
) -> str:
    """``signature`` when an identify or alias of the public write key carries its user id
    signed with the key's identity secret (``context.userHash``), else ``""``."""
    user = given.get("user_id")
    if call not in ("identify", "alias") or not user:
        return ""
    signature = user_hash(message)
    return "signature" if signature and keys.signed(app, source, user, signature) else ""


def _read_signals(
    app: Custos, requests: list[CollectRequest], results: list[CollectResult], calls: list[Call]
) -> None:
    """The consent signals of the normalised calls. They depend on the context and the headers
    only, and the calls of a request mostly share their consent context: each distinct one is
    read once."""
    signal_map = app.taxonomy.signals
    read: dict[tuple[int, bytes], tuple[list[Signal], list[str]]] = {}
    for item in calls:
        if item.good is None:
            continue
        key = (item.request, context_key(item.message))
        found = read.get(key)
        if found is None:
            headers = requests[item.request].headers
            found = read[key] = signals_from_event(item.message, signal_map, headers)
        item.signals, problems = found
        good = item.good
        for text in problems:
            reason, _, fix = text.partition("; send ")
            fix = f"send {fix}" if fix else _SIGNAL_FIX
            item.unread.append(Bad(item.line, good.record_id, "consent", reason, fix, good.payload))


def write(app: Custos, parts: list[Prepared]) -> list[CollectResult]:
    """Store prepared requests (one or more parts, in order) in one write transaction: calls
    stored before, or earlier in the group, are duplicates; anonymous calls take the user id
    their device is known by; erased persons' calls are quarantined without their values;
    consent signals go to the ledger.

    The parts are not changed, so a failed write can be tried again (alone or in another
    group); the results, one per request, are new.
    """
    requests = [r for part in parts for r in part.requests]
    results = [replace(r, problems=list(r.problems)) for part in parts for r in part.results]
    items: list[tuple[int, Call]] = []  # (index of the request in the group, call)
    taken: set[tuple[str, str]] = set()
    learnt: dict[str, tuple[str, datetime]] = {}
    teacher: dict[str, int] = {}  # anonymous id → index of the request that taught it
    offset = 0
    for part in parts:
        for item in part.calls:
            index = offset + item.request
            key = (requests[index].source, item.mid)
            if key in taken:  # the same call in an earlier request of the group
                results[index].duplicates += 1
                continue
            taken.add(key)
            items.append((index, item))
        for anon, user, when, index in part.learnt:
            learnt[anon] = (user, when)
            teacher[anon] = offset + index
        offset += len(part.requests)
    wanted = {item.anon for _, item in items if item.anon}
    stamp = _bind(app, t.interactions.c.timestamp)
    names = COLUMNS[Kind.INTERACTIONS]
    customer = names.index("customer_id")
    # Each instance (a server process has one) looks a source up once (see sink.SourceIds).
    sources = sink.SourceIds(app.source_ids, Kind.INTERACTIONS)
    with app.store.write() as conn:
        source_ids = sources.of(conn, (r.source for r in requests))
        sids = [source_ids[r.source] for r in requests]
        known = sink.stored_records(conn, [(sids[index], c.mid) for index, c in items])
        # Erased persons' calls are held back. Most stores have erased nobody: one probe in
        # this transaction says so, and only otherwise is the suppression list loaded.
        suppressed = dsr.suppression_check(app) if store.has_rows(conn, t.suppressions) else None
        aliases, taught = store.learn_aliases(conn, wanted, learnt)
        stored: list[store.Stored] = []
        bad: list[tuple[int, Bad]] = []
        dropped: list[tuple[int, Bad]] = []
        unread: list[tuple[int, Bad]] = []  # consent signals that could not be read
        hidden: list[tuple[int, Good]] = []
        for index, item in items:
            result = results[index]
            if (sids[index], item.mid) in known:
                result.duplicates += 1
            elif item.good is None:
                assert item.bad is not None
                bad.append((index, item.bad))
                result.quarantined += 1
            else:
                good, shape, row = item.good, item.shape, item.row
                if good.values[customer] is None and item.anon and item.anon in aliases:
                    cid = n.customer_id(aliases[item.anon])
                    values = (*good.values[:customer], cid, *good.values[customer + 1 :])
                    good = Good(good.line_no, good.record_id, good.payload, values)
                    shape, row = present(values, stamp)
                if suppressed and sink.suppressed(
                    suppressed,
                    requests[index].source,
                    Kind.INTERACTIONS,
                    good,
                    left_out=bool(item.dropped),
                    claims=item.claims,
                ):
                    hidden.append((index, good))
                    result.quarantined += 1
                else:
                    stored.append((index, item, good, shape, row))
                    result.stored += 1
                    dropped.extend((index, note) for note in item.dropped)
                    result.fields_dropped += len(item.dropped)
                    unread.extend((index, note) for note in item.unread)
                    result.consent_problems += len(item.unread)
        raw_ids = store.store_rows(app, conn, requests, sids, stored)
        landed: dict[int, list[tuple[str, str]]] = {}  # a call quarantined before lands now
        for index, _, good, _, _ in stored:
            landed.setdefault(sids[index], []).append((good.record_id, good.payload))
        for sid, rows in landed.items():
            sink.close_landed(conn, sid, Kind.INTERACTIONS, rows, datetime.now(UTC))
        waiting = store.link_pending(conn, taught)
        kept = pending_signals(requests, sids)
        store.remember_anonymous(conn, stored, raw_ids, customer, kept)
        store.quarantine(app, conn, requests, sids, bad, hidden, dropped, unread)
        purposes = record_signals(app, conn, requests, sids, stored, results)
        purposes += record_pending(app, conn, waiting, results, teacher)
        for purpose in sorted(set(purposes)):
            cache.refresh(app.store, conn, purpose)
        store.audit_group(conn, requests, results)
    sources.remember()
    return results


def utcnow() -> datetime:
    """The current time, UTC (the receivedAt of a request)."""
    return datetime.now(UTC)
