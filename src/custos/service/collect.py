"""Collected events (Segment's HTTP Tracking API shape) → stored interactions and consent events.

Every call is stored like an ingested interaction of the source named after the write key:
``record_id`` is the call's ``messageId`` (so a resend is stored once), the raw record keeps the
call verbatim, and the normalised row carries the user id as ``customer_id`` and the e-mail,
phone and name found in the traits, so ``custos resolve`` links it to the person. A call that
cannot be read is quarantined with its reason, never dropped. Consent carried in ``context``
(Segment and RudderStack shapes, a TCF string, GPC) and the ``Sec-GPC`` header become ledger
events. Requests are written in groups (:func:`collect_many`: the server's single writer takes
every request waiting, so many requests share one transaction and one commit); a request is
acknowledged only once the transaction holding all of it has committed.

Identity: ``identify`` and ``alias`` calls that name both an anonymous id and a user id are
remembered (``collect_aliases``); later anonymous calls of that device carry the user id. Calls
made anonymously before that wait in ``collect_pending``: the identify gives them the user id
too, and marks them for the next resolution (``identity_recheck``), which links them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, select

from custos.consent import cache, ledger
from custos.consent.signals import Signal, signals_from_event
from custos.core.fields import INTERACTION_FIELDS, Kind
from custos.ingest import normalise as n
from custos.ingest.mapping import ColumnMap, MapFile
from custos.ingest.pipeline import SUPPRESSED_FIX, SUPPRESSED_REASON, ensure_source
from custos.ingest.readers import RawRow
from custos.ingest.rows import COLUMNS, Bad, Good, RowContext, dumps, normalise_batch
from custos.service import dsr
from custos.store import audit
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
_EXTRA = "segment"
_COLUMNS = (*INTERACTION_FIELDS, _EXTRA)
_IN_CHUNK = 900


@dataclass
class CollectResult:
    """What one collection request did."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    consent_events: int = 0
    problems: list[str] = field(default_factory=list)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def message_id(message: Mapping[str, Any]) -> str:
    """The call's ``messageId``, or (when a client sent none) a digest of its content, so that a
    resend of the same call is still recognised."""
    given = n.identifier(_text(message.get("messageId")))
    if given:
        return given[:200]
    body = {k: v for k, v in message.items() if k not in ("sentAt", "writeKey")}
    return "sha256:" + hashlib.sha256(dumps(body).encode()).hexdigest()[:40]


def event_time(message: Mapping[str, Any], received_at: datetime, sent_at: Any = None) -> datetime:
    """When the call happened, corrected for the client's clock: receivedAt − (sentAt − timestamp).

    Without a ``sentAt`` the client's ``timestamp`` is taken as it is; without either, the time
    the call was received.
    """
    try:
        when = n.timestamp(message.get("timestamp") or message.get("originalTimestamp"))
        sent = n.timestamp(message.get("sentAt") or sent_at)
    except (n.FieldError, ValueError, TypeError, OverflowError):
        return received_at
    if when is None:
        return received_at
    if sent is None:
        return when
    try:
        return received_at - (sent - when)
    except OverflowError:  # a clock centuries off: the client's time cannot be corrected
        return received_at


def problem(message: Mapping[str, Any], call: str) -> str | None:
    """Why a call cannot be stored as it is (then it is quarantined), or None."""
    if call not in CALL_TYPES:
        return f"unknown call type {call!r}"
    user, anon = _text(message.get("userId")), _text(message.get("anonymousId"))
    if call == "alias":
        if not user or not _text(message.get("previousId")):
            return "alias needs userId and previousId"
    elif not (user or anon):
        return "userId or anonymousId is required"
    if call == "track" and not _text(message.get("event")):
        return "track needs event"
    if call == "group" and not _text(message.get("groupId")):
        return "group needs groupId"
    return None


def _traits(message: Mapping[str, Any], call: str) -> dict[str, Any]:
    context = message.get("context")
    context = context if isinstance(context, dict) else {}
    traits = message.get("traits") if call in ("identify", "group") else None
    found = traits if isinstance(traits, dict) else context.get("traits")
    return found if isinstance(found, dict) else {}


def _row(
    message: Mapping[str, Any], call: str, when: datetime, user: str | None, mid: str
) -> dict[str, Any]:
    traits = _traits(message, call) if call != "group" else {}
    found = traits.get("address")
    address: dict[str, Any] = found if isinstance(found, dict) else {}

    def trait(*names: str, within: Mapping[str, Any] = traits) -> str | None:
        for name in names:
            value = _text(within.get(name))
            if value:
                return value
        return None

    get = message.get
    extra = {
        k: v
        for k, v in (
            ("event", _text(get("event"))),
            ("name", _text(get("name"))),
            ("anonymous_id", _text(get("anonymousId"))),
            ("user_id", _text(get("userId"))),
            ("group_id", _text(get("groupId"))),
            ("previous_id", _text(get("previousId"))),
        )
        if v
    }
    row: dict[str, Any] = dict.fromkeys(_COLUMNS)
    row.update(record_id=mid, timestamp=when, channel=call, customer_id=user)
    row[_EXTRA] = extra
    if traits:
        row.update(
            email=trait("email"),
            phone=trait("phone"),
            first_name=trait("firstName", "first_name"),
            last_name=trait("lastName", "last_name"),
            full_name=trait("name"),
            date_of_birth=trait("birthday"),
        )
        if address:
            row.update(
                street=trait("street", within=address),
                postcode=trait("postalCode", "postal_code", within=address),
                city=trait("city", within=address),
                country=trait("country", within=address),
            )
    return row


@dataclass
class CollectRequest:
    """One collection request: its calls ``(type, message)`` and what came with them."""

    calls: list[tuple[str, dict[str, Any]]]
    source: str
    received_at: datetime
    sent_at: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Call:
    """One call of a request on its way to the store: normalised (``good``) or not (``bad``)."""

    request: int
    line: int
    mid: str
    message: dict[str, Any]
    anon: str | None
    good: Good | None = None
    bad: Bad | None = None
    signals: list[Signal] = field(default_factory=list)


@dataclass
class Prepared:
    """Requests read and normalised (no store access yet), ready for :func:`write`."""

    requests: list[CollectRequest]
    results: list[CollectResult]
    calls: list[_Call]


def collect(
    app: Custos,
    calls: list[tuple[str, dict[str, Any]]],
    *,
    source: str,
    received_at: datetime,
    sent_at: Any = None,
    headers: Mapping[str, str] | None = None,
) -> CollectResult:
    """Store collected calls ``(type, message)`` of ``source`` in one write transaction."""
    request = CollectRequest(calls, source, received_at, sent_at, headers or {})
    return collect_many(app, [request])[0]


def collect_many(app: Custos, requests: list[CollectRequest]) -> list[CollectResult]:
    """Store the calls of several requests in one write transaction (group commit).

    The requests are taken in order, as if one after another: a message id sent twice (in one
    request or in two) is stored once, for the first. All of it commits together or not at all,
    so a caller acknowledges every request once this returns, and none when it raises.
    """
    return write(app, [prepare(app, requests)])


def prepare(app: Custos, requests: list[CollectRequest]) -> Prepared:
    """Read, check and normalise the calls of ``requests`` (CPU only, no store access), so that
    the write transaction holds the store's writer lock only for the writing."""
    results = [CollectResult(received=len(r.calls)) for r in requests]
    ctx = RowContext(kind=Kind.INTERACTIONS, region=app.settings.default_region)
    cmap = ColumnMap(MapFile(), Kind.INTERACTIONS, _COLUMNS)
    taken: set[tuple[str, str]] = set()
    calls: list[_Call] = []
    rows: list[RawRow] = []
    raw: dict[int, str] = {}
    signal_map = app.taxonomy.signals
    for index, request in enumerate(requests):
        for line, (call, message) in enumerate(request.calls, 1):
            mid = message_id(message)
            if (request.source, mid) in taken:  # sent twice in this group: the first counts
                results[index].duplicates += 1
                continue
            taken.add((request.source, mid))
            verbatim = dumps({"type": call, **message})
            item = _Call(index, line, mid, message, _text(message.get("anonymousId")))
            calls.append(item)
            reason = problem(message, call)
            if reason:
                item.bad = Bad(line, mid, None, reason, "send the call again, corrected", verbatim)
                continue
            user = _text(message.get("userId"))
            when = event_time(message, request.received_at, request.sent_at)
            raw[len(calls)] = verbatim
            rows.append(RawRow(len(calls), _row(message, call, when, user, mid)))
    batch = normalise_batch(rows, cmap, ctx)
    # The signals depend on the context and the headers only, and the calls of a request
    # mostly share their consent context: read each distinct one once.
    read: dict[tuple[int, bytes], tuple[list[Signal], list[str]]] = {}
    for good in batch.good:
        item = calls[good.line_no - 1]
        good.payload, good.line_no = raw[good.line_no], item.line
        item.good = good
        context = item.message.get("context")
        key = (item.request, dumps(context).encode() if context else b"")
        if key not in read:
            headers = requests[item.request].headers
            read[key] = signals_from_event(item.message, signal_map, headers)
        item.signals, problems = read[key]
        if problems:
            results[item.request].problems += [f"{item.mid}: {p}" for p in problems]
    for bad in batch.bad:
        item = calls[bad.line_no - 1]
        bad.raw, bad.line_no = raw.get(bad.line_no, bad.raw), item.line
        item.bad = bad
    return Prepared(requests, results, calls)


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
    items: list[tuple[int, _Call]] = []  # (index of the request in the group, call)
    taken: set[tuple[str, str]] = set()
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
        offset += len(part.requests)
    suppressed = dsr.suppression_check(app)
    names = COLUMNS[Kind.INTERACTIONS]
    customer = names.index("customer_id")
    with app.store.write() as conn:
        source_ids = {
            name: ensure_source(conn, name, Kind.INTERACTIONS)
            for name in dict.fromkeys(r.source for r in requests)
        }
        sids = [source_ids[r.source] for r in requests]
        known = _existing(conn, [(sids[index], c.mid) for index, c in items])
        aliases, taught = _learn_aliases(conn, requests)
        stored: list[tuple[int, _Call, Good]] = []
        bad: list[tuple[int, Bad]] = []
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
                good = item.good
                if good.values[customer] is None and item.anon and item.anon in aliases:
                    values = list(good.values)
                    values[customer] = n.customer_id(aliases[item.anon])
                    good = Good(good.line_no, good.record_id, good.payload, tuple(values))
                if suppressed and suppressed(
                    requests[index].source,
                    good.record_id,
                    dict(zip(names, good.values, strict=True)),
                    good.payload,
                ):
                    hidden.append((index, good))
                    result.quarantined += 1
                else:
                    stored.append((index, item, good))
                    result.stored += 1
        raw_ids = _store_rows(app, conn, requests, sids, stored)
        _link_pending(conn, taught)
        _remember_anonymous(conn, stored, raw_ids, customer)
        _quarantine(app, conn, requests, sids, bad, hidden)
        _signals(app, conn, requests, sids, stored, results)
        _audit(conn, requests, results)
    return results


def _audit(conn: Connection, requests: list[CollectRequest], results: list[CollectResult]) -> None:
    """One audit entry per source of the group: how many requests and calls, and what became
    of them (counts only)."""
    totals: dict[str, dict[str, int]] = {}
    for request, result in zip(requests, results, strict=True):
        total = totals.setdefault(
            request.source,
            dict.fromkeys(
                ("requests", "received", "stored", "duplicates", "quarantined", "consent_events"),
                0,
            ),
        )
        total["requests"] += 1
        total["received"] += result.received
        total["stored"] += result.stored
        total["duplicates"] += result.duplicates
        total["quarantined"] += result.quarantined
        total["consent_events"] += result.consent_events
    for source, total in totals.items():
        audit.append(conn, actor=source, action="collect", detail={"source": source, **total})


def _marks(conn: Connection, count: int) -> str:
    """``count`` driver placeholders, comma-separated (qmark for SQLite, format for psycopg)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * count)


def _existing(conn: Connection, keys: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which of these (source id, message id) pairs are stored already (one indexed look-up per
    chunk, on the unique key of ``raw_records``)."""
    wanted: dict[int, set[str]] = {}
    for sid, mid in keys:
        wanted.setdefault(sid, set()).add(mid)
    found: set[tuple[int, str]] = set()
    for sid, mids in wanted.items():
        listed = sorted(mids)
        for i in range(0, len(listed), _IN_CHUNK):
            chunk = listed[i : i + _IN_CHUNK]
            sql = (
                f"SELECT record_id FROM {t.raw_records.name} WHERE source_id = {int(sid)} "
                f"AND record_id IN ({_marks(conn, len(chunk))})"
            )
            found.update((sid, r[0]) for r in conn.exec_driver_sql(sql, tuple(chunk)))
    return found


def _learn_aliases(
    conn: Connection, requests: list[CollectRequest]
) -> tuple[dict[str, str], dict[str, str]]:
    """Remember anonymous id → user id from identify and alias calls; return every known one
    for the anonymous ids of these calls, and the ones these calls taught."""
    learnt: dict[str, tuple[str, datetime]] = {}
    wanted: set[str] = set()
    for request in requests:
        for call, message in request.calls:
            anon = _text(message.get("anonymousId"))
            if anon:
                wanted.add(anon)
            if call not in ("identify", "alias"):
                continue
            user = _text(message.get("userId"))
            if call == "alias":
                anon = _text(message.get("previousId"))
            if user and anon and anon != user:
                learnt[anon[:200]] = (user[:200], request.received_at)
    if not (wanted or learnt):
        return {}, {}
    ca = t.collect_aliases
    known: dict[str, str] = {}
    listed = sorted(wanted | set(learnt))
    for i in range(0, len(listed), _IN_CHUNK):
        rows = conn.execute(
            select(ca.c.anonymous_id, ca.c.user_id).where(
                ca.c.anonymous_id.in_(listed[i : i + _IN_CHUNK])
            )
        )
        known.update({a: u for a, u in rows})
    for anon, (user, when) in sorted(learnt.items()):
        if anon not in known:
            conn.execute(ca.insert().values(anonymous_id=anon, user_id=user, linked_at=when))
        elif known[anon] != user:
            conn.execute(
                ca.update().where(ca.c.anonymous_id == anon).values(user_id=user, linked_at=when)
            )
    taught = {anon: user for anon, (user, _) in learnt.items()}
    return known | taught, taught


def _link_pending(conn: Connection, taught: dict[str, str]) -> None:
    """Give the calls stored earlier under an anonymous id the user id an identify or alias of
    this group named for it, and mark them for the next resolution to look at again."""
    if not taught:
        return
    cp, it = t.collect_pending, t.interactions
    listed = sorted(taught)
    for i in range(0, len(listed), _IN_CHUNK):
        chunk = listed[i : i + _IN_CHUNK]
        waiting: dict[str, list[int]] = {}
        for anon, raw_id in conn.execute(
            select(cp.c.anonymous_id, cp.c.raw_id).where(cp.c.anonymous_id.in_(chunk))
        ):
            if user := n.customer_id(taught[anon]):
                waiting.setdefault(user, []).append(raw_id)
        for user, raw_ids in waiting.items():
            conn.execute(
                it.update()
                .where(it.c.raw_id.in_(raw_ids), it.c.customer_id.is_(None))
                .values(customer_id=user)
            )
            conn.execute(t.identity_recheck.insert(), [{"raw_id": r} for r in raw_ids])
        conn.execute(cp.delete().where(cp.c.anonymous_id.in_(chunk)))


def _remember_anonymous(
    conn: Connection, stored: list[tuple[int, _Call, Good]], raw_ids: list[int], customer: int
) -> None:
    """Keep the anonymous id of each call stored without a user id, for a later identify."""
    waiting = [
        {"anonymous_id": item.anon[:200], "raw_id": raw_id}
        for raw_id, (_, item, good) in zip(raw_ids, stored, strict=True)
        if item.anon and good.values[customer] is None
    ]
    if waiting:
        conn.execute(t.collect_pending.insert(), waiting)


def _store_rows(
    app: Custos,
    conn: Connection,
    requests: list[CollectRequest],
    sids: list[int],
    stored: list[tuple[int, _Call, Good]],
) -> list[int]:
    """Store the calls as raw records and interactions; their raw ids, in order."""
    if not stored:
        return []
    next_id = app.store.next_id(conn, t.raw_records, len(stored))
    raw: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    kind = Kind.INTERACTIONS.value
    for raw_id, (index, _, good) in enumerate(stored, next_id):
        sid, now = sids[index], requests[index].received_at
        raw.append((raw_id, sid, good.record_id, good.line_no, good.payload, now, kind, "collect"))
        rows.append((raw_id, sid, now, *good.values))
    _insert(
        app,
        conn,
        t.raw_records,
        ("id", "source_id", "record_id", "line_no", "payload", "ingested_at", "kind", "file_name"),
        raw,
    )
    _insert(
        app,
        conn,
        t.interactions,
        ("raw_id", "source_id", "observed_at", *COLUMNS[Kind.INTERACTIONS]),
        rows,
    )
    return list(range(next_id, next_id + len(stored)))


def _insert(
    app: Custos, conn: Connection, table: Table, names: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert tuple rows through the store's bulk path (timestamps converted column by column,
    each distinct value once)."""
    app.store.insert_many(conn, table, rows, names=names)


def _quarantine(
    app: Custos,
    conn: Connection,
    requests: list[CollectRequest],
    sids: list[int],
    bad: list[tuple[int, Bad]],
    hidden: list[tuple[int, Good]],
) -> None:
    entries: dict[str, dict[str, Any]] = {}

    def common(index: int) -> dict[str, Any]:
        return {
            "source_id": sids[index],
            "kind": Kind.INTERACTIONS.value,
            "file_name": "collect",
            "created_at": requests[index].received_at,
        }

    for index, item in bad:
        source = requests[index].source
        # Keyed by message id (a resend differs in sentAt only) or, without one, the content.
        body = f"call {item.record_id}" if item.record_id else item.raw
        key = hashlib.sha256(f"{source}\x1finteractions\x1f{body}".encode()).hexdigest()
        entries.setdefault(
            key,
            {
                "row_key": key,
                "record_id": item.record_id,
                "field": item.field,
                "reason": item.reason,
                "fix": item.fix,
                "raw": item.raw,
                "line_no": item.line_no,
                **common(index),
            },
        )
    for index, row in hidden:  # an erased person's call: where and why, never the values
        source = requests[index].source
        key = hashlib.sha256(
            f"{source}\x1finteractions\x1fsuppressed\x1f{row.record_id}".encode()
        ).hexdigest()
        entries.setdefault(
            key,
            {
                "row_key": key,
                "record_id": None,
                "field": None,
                "reason": SUPPRESSED_REASON,
                "fix": SUPPRESSED_FIX,
                "raw": None,
                "line_no": row.line_no,
                **common(index),
            },
        )
    if not entries:
        return
    column = t.quarantine.c.row_key
    listed = list(entries)
    for i in range(0, len(listed), _IN_CHUNK):
        for known in conn.execute(select(column).where(column.in_(listed[i : i + _IN_CHUNK]))):
            del entries[known[0]]
    app.store.insert_many(conn, t.quarantine, list(entries.values()))


def _signals(
    app: Custos,
    conn: Connection,
    requests: list[CollectRequest],
    sids: list[int],
    stored: list[tuple[int, _Call, Good]],
    results: list[CollectResult],
) -> None:
    """Append the consent signals of the stored calls to the ledger (identified persons only);
    each request is credited with the ledger events it added first."""
    names = COLUMNS[Kind.INTERACTIONS]
    wanted = [(k, names.index(k)) for k in ("customer_id", "email", "phone")]
    at_index = names.index("timestamp")
    purposes = app.taxonomy.purposes
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    seen: set[tuple[Any, ...]] = set()
    for index, item, good in stored:
        if not item.signals:
            continue
        values, result, mid = good.values, results[index], item.mid
        identifiers = {k: values[i] for k, i in wanted if values[i] is not None}
        if not identifiers:
            result.problems.append(
                f"{mid}: consent signal of an anonymous call (kept in the raw call)"
            )
            continue
        when = values[at_index] or requests[index].received_at
        person = tuple(sorted(identifiers.items()))
        sid = sids[index]
        for signal in item.signals:
            if signal.purpose not in purposes:
                result.problems.append(f"{mid}: signal maps to unknown purpose {signal.purpose}")
                continue
            at = signal.at or when
            # The same decision of the same person at the same time is one ledger event (its
            # event_key says so): the first call that carried it is its evidence.
            decision = (sid, signal.purpose, signal.status, at, signal.method, person)
            if decision in seen:
                continue
            seen.add(decision)
            row = ledger.event_row(
                source_id=sid,
                identifiers=identifiers,
                purpose=signal.purpose,
                status=signal.status,
                at=at,
                method=signal.method,
                evidence=f"{signal.evidence}; message {mid}",
            )
            rows.setdefault(row["event_key"], (index, row))
    if not rows:
        return
    listed = list(rows)
    for i in range(0, len(listed), _IN_CHUNK):
        chunk = listed[i : i + _IN_CHUNK]
        sql = (
            f"SELECT event_key FROM {t.consent_events.name} "
            f"WHERE event_key IN ({_marks(conn, len(chunk))})"
        )
        for known in conn.exec_driver_sql(sql, tuple(chunk)):
            del rows[known[0]]
    for index, _ in rows.values():
        results[index].consent_events += 1
    events = [row for _, row in rows.values()]
    if not events:
        return
    columns = list(events[0])
    _insert(app, conn, t.consent_events, columns, [tuple(e[c] for c in columns) for e in events])
    for purpose in sorted({row["purpose"] for _, row in rows.values()}):
        cache.refresh(app.store, conn, purpose)


def utcnow() -> datetime:
    """The current time, UTC (the receivedAt of a request)."""
    return datetime.now(UTC)
