"""Consent signals of collected calls → ledger events (inside the write transaction).

Trust follows the channel: a signal is evidence of the *device's* choice. A restriction
(denial, withdrawal, GPC) acts at once, for the verified identifiers of the call and for those
it only claims (fail closed); a grant is recorded only for a verified identity (a server-side
key, a signed identify, a device a verified identify named), never for a claim. Events are timed
when the server received them: the client's time (its clock, a TC string's last update) is kept
in the evidence as a claim, and identifies the decision for idempotency only.

A device's choice made before sign-in is not lost: the restrictions an anonymous call carries
wait with the call (``collect_pending.signals``) and are recorded for the person when a verified
identify or alias names the device (:func:`record_pending`), timed when each call was received.
Its grants are not: a device used before sign-in may be someone else's (a shared computer), so
only a restriction, which fails closed, carries over.

Most calls repeat a decision the ledger holds already (the same person, purpose, status and
time: one event, by its ``event_key``), so the keys are worked out and looked up first, and a
row is built only for an event the ledger lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection

from custos.consent import ledger
from custos.consent.ledger import GRANTED
from custos.consent.signals import Signal
from custos.core.fields import Kind
from custos.ingest.rows import COLUMNS, Good
from custos.service.collect_store import Stored, column, marks, rows_of
from custos.store import Store
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos
    from custos.service.collect import Call, CollectRequest, CollectResult

_NAMES = COLUMNS[Kind.INTERACTIONS]
_KINDS = ("customer_id", "email", "phone")
_IDENTIFIERS = tuple((k, _NAMES.index(k)) for k in _KINDS)
_UNVERIFIED_GRANT = (
    "{mid}: grant of {purpose} not recorded: only a verified identity grants (a server-side "
    "key, a signed identify, or the preference centre API); the call keeps it as a claim"
)
_AT = _NAMES.index("timestamp")
_DEFAULTED = frozenset(c.name for c in t.consent_events.c if c.server_default is not None)


def _stored(conn: Connection, keys: list[str]) -> list[str]:
    """Which of these event keys the ledger holds. A group's decisions are usually all new
    (calls carry their own times) or all known (a resend): a count says which, and only a
    mixed chunk has its keys listed."""
    found: list[str] = []
    for chunk in Store.chunks(keys):
        within = f"FROM {t.consent_events.name} WHERE event_key IN ({marks(conn, len(chunk))})"
        count = rows_of(conn, f"SELECT count(*) {within}", chunk)[0][0]
        if count == len(chunk):
            found += chunk
        elif count:
            found += column(conn, f"SELECT event_key {within}", chunk)
    return found


def record_signals(
    app: Custos,
    conn: Connection,
    requests: list[CollectRequest],
    sids: list[int],
    stored: list[Stored],
    results: list[CollectResult],
) -> list[str]:
    """Append the consent signals of the stored calls to the ledger (identified persons only);
    each request is credited with the ledger events it added first. Returns the purposes that
    got events (their cached consent states need a refresh)."""
    purposes = app.taxonomy.purposes
    # event key → (index of the request, source id, identifiers, signal, claimed time, message
    # id, whether the identifiers are verified)
    found: dict[str, tuple[int, int, dict[str, Any], Signal, datetime, str, bool]] = {}
    for index, item, good, _, _ in stored:
        if not item.signals:
            continue
        values, result, mid = good.values, results[index], item.mid
        verified = {k: values[i] for k, i in _IDENTIFIERS if values[i] is not None}
        claimed = {k: item.claims[k] for k in _KINDS if item.claims.get(k) is not None}
        if not (verified or claimed):
            # An anonymous call: its restrictions wait for the identify (remember_anonymous).
            continue
        client = values[_AT] or requests[index].received_at
        sid = sids[index]
        for signal in item.signals:
            if signal.purpose not in purposes:
                result.problems.append(f"{mid}: signal maps to unknown purpose {signal.purpose}")
                continue
            if signal.status == GRANTED and not verified:
                result.problems.append(_UNVERIFIED_GRANT.format(mid=mid, purpose=signal.purpose))
                continue
            claimed_at = signal.at or client
            for identifiers in _whose(signal, verified, claimed):
                # The same decision of the same person at the same (claimed) time is one ledger
                # event (its event_key says so): the first call that carried it is its evidence.
                key = ledger.event_key(
                    source_id=sid,
                    purpose=signal.purpose,
                    status=signal.status,
                    at=claimed_at,
                    method=signal.method,
                    identifiers=identifiers,
                )
                if key not in found:
                    sure = identifiers.items() <= verified.items()
                    found[key] = (index, sid, identifiers, signal, claimed_at, mid, sure)
    if not found:
        return []
    for known in _stored(conn, list(found)):
        del found[known]
    if not found:
        return []
    events = []
    for key, (index, sid, identifiers, signal, claimed_at, mid, sure) in found.items():
        results[index].consent_events += 1
        trust = "verified" if sure else "claimed"
        events.append(
            ledger.event_row(
                source_id=sid,
                identifiers=identifiers,
                purpose=signal.purpose,
                status=signal.status,
                at=requests[index].received_at,
                method=signal.method,
                evidence=f"{signal.evidence}; message {mid}; client time "
                f"{claimed_at.isoformat()}; identity {trust}",
                key=key,
            )
        )
    return _append(app, conn, events)


def _append(app: Custos, conn: Connection, events: list[dict[str, Any]]) -> list[str]:
    """Insert ledger event rows; the purposes they are of."""
    # One insert per set of columns the events fill: their NULLs unbound (a column with a
    # default is always bound).
    shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for event in events:
        shape = tuple(k for k, v in event.items() if v is not None or k in _DEFAULTED)
        shapes.setdefault(shape, []).append(tuple(event[k] for k in shape))
    for shape, rows in shapes.items():
        app.store.insert_many(conn, t.consent_events, rows, names=shape)
    return sorted({e["purpose"] for e in events})


def pending_signals(
    requests: list[CollectRequest], sids: list[int]
) -> Callable[[int, Call, Good], str | None]:
    """What an anonymous call keeps of its consent signals until its device is identified: its
    restrictions (with the request's source and receipt time), as JSON; None without any."""

    def kept(index: int, item: Call, good: Good) -> str | None:
        client = good.values[_AT] or requests[index].received_at
        restrictions = [
            [s.purpose, s.status, s.method, s.evidence, (s.at or client).isoformat()]
            for s in item.signals
            if s.status != GRANTED
        ]
        if not restrictions:
            return None
        received = requests[index].received_at.isoformat()
        body = {"source": sids[index], "received": received, "message": item.mid}
        return orjson.dumps({**body, "signals": restrictions}).decode()

    return kept


def record_pending(
    app: Custos,
    conn: Connection,
    waiting: list[tuple[str, str, str]],
    results: list[CollectResult],
    teacher: dict[str, int],
) -> list[str]:
    """Record the restrictions of anonymous calls whose device a verified identify or alias
    has now named (``(anonymous id, user id, kept signals)`` from ``link_pending``) for that
    user id, each timed when its call was received; the request that named the device
    (``teacher``: anonymous id → its index) is credited with them. Returns the purposes that
    got events."""
    purposes = app.taxonomy.purposes
    found: dict[str, dict[str, Any]] = {}
    credit: dict[str, str] = {}  # event key → anonymous id
    for anon, user, kept in waiting:
        body = orjson.loads(kept)
        identifiers = {"customer_id": user}
        received = datetime.fromisoformat(body["received"])
        for purpose, status, method, evidence, claimed in body["signals"]:
            if purpose not in purposes or status == GRANTED:
                continue
            claimed_at = datetime.fromisoformat(claimed)
            event = ledger.Event(
                source_id=body["source"],
                purpose=purpose,
                status=status,
                at=claimed_at,
                method=method,
                identifiers=identifiers,
            )
            key = ledger.event_key(**event)
            credit.setdefault(key, anon)
            # The key is the claimed time's; the row records the time the call came in.
            event["at"] = received
            event["evidence"] = (
                f"{evidence}; message {body['message']}; client time {claimed}; identity "
                "verified (sent before sign-in by the device a verified identify named)"
            )
            found.setdefault(key, ledger.event_row(key=key, **event))
    for known in _stored(conn, list(found)):
        del found[known]
    for key in found:
        results[teacher[credit[key]]].consent_events += 1
    return _append(app, conn, list(found.values())) if found else []


def _whose(
    signal: Signal, verified: dict[str, Any], claimed: dict[str, Any]
) -> list[dict[str, Any]]:
    """The identifier sets a signal is recorded for: a grant, the verified identity only; a
    restriction, the claimed identifiers too (in one event where they agree with the verified
    ones, else in an event of their own)."""
    if signal.status == GRANTED or not claimed:
        return [verified] if verified else []
    merged = {**claimed, **verified}
    if all(merged[k] == v for k, v in claimed.items()):
        return [merged]
    return [verified, claimed] if verified else [claimed]
