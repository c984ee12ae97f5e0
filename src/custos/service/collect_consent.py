"""Consent signals of collected calls → ledger events (inside the write transaction).

Most calls repeat a decision the ledger holds already (the same person, purpose, status and
time: one event, by its ``event_key``), so the keys are worked out and looked up first, and a
row is built only for an event the ledger lacks.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from custos.consent import ledger
from custos.consent.signals import Signal
from custos.core.fields import Kind
from custos.ingest.rows import COLUMNS
from custos.service.collect_store import IN_CHUNK, Stored, column, marks, rows_of
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos
    from custos.service.collect import CollectRequest, CollectResult

_NAMES = COLUMNS[Kind.INTERACTIONS]
_IDENTIFIERS = tuple((k, _NAMES.index(k)) for k in ("customer_id", "email", "phone"))
_AT = _NAMES.index("timestamp")
_DEFAULTED = frozenset(c.name for c in t.consent_events.c if c.server_default is not None)


def _stored(conn: Connection, keys: list[str]) -> list[str]:
    """Which of these event keys the ledger holds. A group's decisions are usually all new
    (calls carry their own times) or all known (a resend): a count says which, and only a
    mixed chunk has its keys listed."""
    found: list[str] = []
    for i in range(0, len(keys), IN_CHUNK):
        chunk = keys[i : i + IN_CHUNK]
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
    # event key → (index of the request, source id, identifiers, signal, time, message id)
    found: dict[str, tuple[int, int, dict[str, Any], Signal, datetime, str]] = {}
    for index, item, good, _, _ in stored:
        if not item.signals:
            continue
        values, result, mid = good.values, results[index], item.mid
        identifiers = {k: values[i] for k, i in _IDENTIFIERS if values[i] is not None}
        if not identifiers:
            result.problems.append(
                f"{mid}: consent signal of an anonymous call (kept in the raw call)"
            )
            continue
        when = values[_AT] or requests[index].received_at
        sid = sids[index]
        for signal in item.signals:
            if signal.purpose not in purposes:
                result.problems.append(f"{mid}: signal maps to unknown purpose {signal.purpose}")
                continue
            at = signal.at or when
            # The same decision of the same person at the same time is one ledger event (its
            # event_key says so): the first call that carried it is its evidence.
            key = ledger.event_key(
                source_id=sid,
                purpose=signal.purpose,
                status=signal.status,
                at=at,
                method=signal.method,
                identifiers=identifiers,
            )
            if key not in found:
                found[key] = (index, sid, identifiers, signal, at, mid)
    if not found:
        return []
    for known in _stored(conn, list(found)):
        del found[known]
    if not found:
        return []
    events = []
    for index, sid, identifiers, signal, at, mid in found.values():
        results[index].consent_events += 1
        events.append(
            ledger.event_row(
                source_id=sid,
                identifiers=identifiers,
                purpose=signal.purpose,
                status=signal.status,
                at=at,
                method=signal.method,
                evidence=f"{signal.evidence}; message {mid}",
            )
        )
    # One insert per set of columns the events fill: their NULLs unbound (a column with a
    # default is always bound).
    shapes: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for event in events:
        shape = tuple(k for k, v in event.items() if v is not None or k in _DEFAULTED)
        shapes.setdefault(shape, []).append(tuple(event[k] for k in shape))
    for shape, rows in shapes.items():
        app.store.insert_many(conn, t.consent_events, rows, names=shape)
    return sorted({e["purpose"] for e in events})
