"""Collected events (Segment's HTTP Tracking API shape) → stored interactions and consent events.

Every call is stored like an ingested interaction of the source named after the write key:
``record_id`` is the call's ``messageId`` (so a resend is stored once), the raw record keeps the
call verbatim, and the normalised row carries the user id as ``customer_id`` and the e-mail,
phone and name found in the traits, so ``custos resolve`` links it to the person. A call that
cannot be read is quarantined with its reason, never dropped. Consent carried in ``context``
(Segment and RudderStack shapes, a TCF string, GPC) and the ``Sec-GPC`` header become ledger
events. One request is one write transaction: it is acknowledged only once all of it is stored.

Identity: ``identify`` and ``alias`` calls that name both an anonymous id and a user id are
remembered (``collect_aliases``); later anonymous calls of that device carry the user id. Calls
made anonymously before that stay unlinked (their anonymous id is kept in ``extra``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from custos.consent import cache, ledger
from custos.consent.signals import signals_from_event
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


def _row(message: Mapping[str, Any], call: str, when: datetime, user: str | None) -> dict[str, Any]:
    traits = _traits(message, call) if call != "group" else {}
    found = traits.get("address")
    address: dict[str, Any] = found if isinstance(found, dict) else {}

    def trait(*names: str, within: Mapping[str, Any] = traits) -> str | None:
        for name in names:
            value = _text(within.get(name))
            if value:
                return value
        return None

    row: dict[str, Any] = dict.fromkeys(_COLUMNS)
    return row | {
        "record_id": message_id(message),
        "timestamp": when,
        "channel": call,
        "email": trait("email"),
        "phone": trait("phone"),
        "first_name": trait("firstName", "first_name"),
        "last_name": trait("lastName", "last_name"),
        "full_name": trait("name"),
        "date_of_birth": trait("birthday"),
        "street": trait("street", within=address),
        "postcode": trait("postalCode", "postal_code", within=address),
        "city": trait("city", within=address),
        "country": trait("country", within=address),
        "customer_id": user,
        _EXTRA: {
            k: v
            for k, v in (
                ("event", _text(message.get("event"))),
                ("name", _text(message.get("name"))),
                ("anonymous_id", _text(message.get("anonymousId"))),
                ("user_id", _text(message.get("userId"))),
                ("group_id", _text(message.get("groupId"))),
                ("previous_id", _text(message.get("previousId"))),
            )
            if v
        },
    }


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
    result = CollectResult(received=len(calls))
    ctx = RowContext(kind=Kind.INTERACTIONS, region=app.settings.default_region)
    cmap = ColumnMap(MapFile(), Kind.INTERACTIONS, _COLUMNS)
    suppressed = dsr.suppression_check(app)
    with app.store.write() as conn:
        source_id = ensure_source(conn, source, Kind.INTERACTIONS)
        ids = [message_id(m) for _, m in calls]
        known = _existing(conn, source_id, ids)
        aliases = _learn_aliases(conn, calls, received_at)
        rows: list[RawRow] = []
        verbatim: dict[str, str] = {}
        bad: list[Bad] = []
        fresh: list[tuple[str, dict[str, Any], str]] = []
        for line, ((call, message), mid) in enumerate(zip(calls, ids, strict=True), 1):
            if mid in known or mid in verbatim:
                result.duplicates += 1
                continue
            raw = dumps({"type": call, **message})
            verbatim[mid] = raw
            reason = problem(message, call)
            if reason:
                bad.append(Bad(line, mid, None, reason, "send the call again, corrected", raw))
                continue
            anon = _text(message.get("anonymousId"))
            user = _text(message.get("userId")) or (aliases.get(anon) if anon else None)
            when = event_time(message, received_at, sent_at)
            rows.append(RawRow(line, _row(message, call, when, user)))
            fresh.append((call, message, mid))
        batch = normalise_batch(rows, cmap, ctx)
        good: list[Good] = []
        hidden: list[Good | Bad] = []
        names = COLUMNS[Kind.INTERACTIONS]
        for row in batch.good:
            row.payload = verbatim[row.record_id]
            values = dict(zip(names, row.values, strict=True))
            if suppressed and suppressed(source, row.record_id, values, row.payload):
                hidden.append(row)
            else:
                good.append(row)
        for item in batch.bad:
            item.raw = verbatim.get(item.record_id or "", item.raw)
        bad += batch.bad
        result.stored = _store_rows(app, conn, source_id, good, received_at)
        result.quarantined = _quarantine(app, conn, source, source_id, bad, hidden, received_at)
        stored_ids = {g.record_id for g in good}
        result.consent_events = _signals(
            app, conn, source_id, fresh, stored_ids, good, headers or {}, result, received_at
        )
        audit.append(
            conn,
            actor=source,
            action="collect",
            detail={
                "source": source,
                "received": result.received,
                "stored": result.stored,
                "duplicates": result.duplicates,
                "quarantined": result.quarantined,
                "consent_events": result.consent_events,
            },
        )
    return result


def _existing(conn: Connection, source_id: int, ids: list[str]) -> set[str]:
    found: set[str] = set()
    column = t.raw_records.c.record_id
    for i in range(0, len(ids), _IN_CHUNK):
        chunk = ids[i : i + _IN_CHUNK]
        found.update(
            conn.execute(
                select(column).where(column.in_(chunk), t.raw_records.c.source_id == source_id)
            ).scalars()
        )
    return found


def _learn_aliases(
    conn: Connection, calls: list[tuple[str, dict[str, Any]]], when: datetime
) -> dict[str, str]:
    """Remember anonymous id → user id from identify and alias calls; return every known one
    for the anonymous ids of these calls."""
    learnt: dict[str, str] = {}
    for call, message in calls:
        user = _text(message.get("userId"))
        anon = _text(message.get("previousId") if call == "alias" else message.get("anonymousId"))
        if call in ("identify", "alias") and user and anon and anon != user:
            learnt[anon[:200]] = user[:200]
    wanted = {a for _, m in calls if (a := _text(m.get("anonymousId")))} | set(learnt)
    ca = t.collect_aliases
    known: dict[str, str] = {}
    listed = sorted(wanted)
    for i in range(0, len(listed), _IN_CHUNK):
        rows = conn.execute(
            select(ca.c.anonymous_id, ca.c.user_id).where(
                ca.c.anonymous_id.in_(listed[i : i + _IN_CHUNK])
            )
        )
        known.update({a: u for a, u in rows})
    for anon, user in sorted(learnt.items()):
        if anon not in known:
            conn.execute(ca.insert().values(anonymous_id=anon, user_id=user, linked_at=when))
        elif known[anon] != user:
            conn.execute(
                ca.update().where(ca.c.anonymous_id == anon).values(user_id=user, linked_at=when)
            )
    return known | learnt


def _store_rows(
    app: Custos, conn: Connection, source_id: int, good: list[Good], now: datetime
) -> int:
    if not good:
        return 0
    next_id = app.store.next_id(conn, t.raw_records, len(good))
    ids = range(next_id, next_id + len(good))
    app.store.insert_many(
        conn,
        t.raw_records,
        [(i, r.record_id, r.line_no, r.payload) for i, r in zip(ids, good, strict=True)],
        names=("id", "record_id", "line_no", "payload"),
        const={
            "source_id": source_id,
            "kind": Kind.INTERACTIONS.value,
            "file_name": "collect",
            "ingested_at": now,
        },
    )
    app.store.insert_many(
        conn,
        t.interactions,
        [(i, *r.values) for i, r in zip(ids, good, strict=True)],
        names=("raw_id", *COLUMNS[Kind.INTERACTIONS]),
        const={"source_id": source_id, "observed_at": now},
    )
    return len(good)


def _quarantine(
    app: Custos,
    conn: Connection,
    source: str,
    source_id: int,
    bad: list[Bad],
    hidden: list[Good | Bad],
    now: datetime,
) -> int:
    entries: dict[str, dict[str, Any]] = {}
    for item in bad:
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
            },
        )
    for row in hidden:  # an erased person's call: where and why, never the values
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
            },
        )
    column = t.quarantine.c.row_key
    listed = list(entries)
    for i in range(0, len(listed), _IN_CHUNK):
        for known in conn.execute(select(column).where(column.in_(listed[i : i + _IN_CHUNK]))):
            del entries[known[0]]
    app.store.insert_many(
        conn,
        t.quarantine,
        [
            {
                **e,
                "source_id": source_id,
                "kind": Kind.INTERACTIONS.value,
                "file_name": "collect",
                "created_at": now,
            }
            for e in entries.values()
        ],
    )
    return len(bad) + len(hidden)


def _signals(
    app: Custos,
    conn: Connection,
    source_id: int,
    fresh: list[tuple[str, dict[str, Any], str]],
    stored: set[str],
    good: list[Good],
    headers: Mapping[str, str],
    result: CollectResult,
    now: datetime,
) -> int:
    """Append the consent signals of the stored calls to the ledger (identified persons only)."""
    names = COLUMNS[Kind.INTERACTIONS]
    by_id = {g.record_id: dict(zip(names, g.values, strict=True)) for g in good}
    rows: dict[str, dict[str, Any]] = {}
    for _call, message, mid in fresh:
        if mid not in stored:
            continue
        found, problems = signals_from_event(message, app.taxonomy.signals, headers)
        result.problems += [f"{mid}: {p}" for p in problems]
        if not found:
            continue
        values = by_id[mid]
        identifiers = {
            k: values[k] for k in ("customer_id", "email", "phone") if values.get(k) is not None
        }
        if not identifiers:
            result.problems.append(
                f"{mid}: consent signal of an anonymous call (kept in the raw call)"
            )
            continue
        when = values.get("timestamp") or now
        for signal in found:
            if signal.purpose not in app.taxonomy.purposes:
                result.problems.append(f"{mid}: signal maps to unknown purpose {signal.purpose}")
                continue
            row = ledger.event_row(
                source_id=source_id,
                identifiers=identifiers,
                purpose=signal.purpose,
                status=signal.status,
                at=signal.at or when,
                method=signal.method,
                evidence=f"{signal.evidence}; message {mid}",
            )
            rows.setdefault(row["event_key"], row)  # the same decision at the same time: once
    column = t.consent_events.c.event_key
    listed = list(rows)
    for i in range(0, len(listed), _IN_CHUNK):
        for known in conn.execute(select(column).where(column.in_(listed[i : i + _IN_CHUNK]))):
            del rows[known[0]]
    app.store.insert_many(conn, t.consent_events, list(rows.values()))
    purposes = {row["purpose"] for row in rows.values()}
    for purpose in sorted(purposes):
        cache.refresh(app.store, conn, purpose)
    return len(rows)


def utcnow() -> datetime:
    """The current time, UTC (the receivedAt of a request)."""
    return datetime.now(UTC)
