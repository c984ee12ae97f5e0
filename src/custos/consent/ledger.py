"""The append-only consent ledger and the state derived from it.

Events are never updated or deleted (only erasure of the person removes them). The state of a
person for a purpose is derived on every read, so a withdrawal acts on the next read:

* events form *streams*: the events of one identifier (a customer number, an e-mail, a phone, a
  handle) or, for events recorded against the profile itself, the person stream;
* a stream's state is its latest event at the time asked about (``granted``, ``denied`` or
  ``withdrawn``; ``none`` once that event has expired); person-stream events supersede older
  events of every other stream (the verified person said so);
* the person's state is the most restrictive of the current stream states: a withdrawal or
  denial on any record of a merged person applies to the whole person;
* where identity is uncertain, consent is conservative: the streams of a *possible match* (a
  profile that identity resolution scored close to this one but did not link: see
  :func:`possible_partners`) restrict the person too — their latest event, when it is a denial
  or withdrawal, counts — but never grant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, Unpack

import orjson
from sqlalchemy import Connection, select, union_all

from custos.core.fields import STRONG_IDENTIFIERS
from custos.store import Store, event_keys
from custos.store import tables as t
from custos.store.redirects import active_ids, merged_into, redirects

GRANTED, DENIED, WITHDRAWN, NONE = "granted", "denied", "withdrawn", "none"
PERSON_STREAM = "profile"
#: Prefix of the streams a person takes over from a possible match (restrictions only).
POSSIBLE_STREAM = "possible:"


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One consent event as the state derivation sees it."""

    id: int
    stream: str
    purpose: str
    status: str
    timestamp: datetime
    expires_at: datetime | None = None
    explicit: bool = False


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A person's state for one purpose at one time, with the events it rests on."""

    status: str
    explicit: bool = False
    since: datetime | None = None
    event_ids: tuple[int, ...] = ()

    @property
    def granted(self) -> bool:
        """True when consent is in force."""
        return self.status == GRANTED

    @property
    def objected(self) -> bool:
        """True when the person said no (denied or withdrew)."""
        return self.status in (DENIED, WITHDRAWN)


NO_RECORD = ConsentState(NONE)


def derive_state(events: Iterable[LedgerEvent], as_of: datetime | None = None) -> ConsentState:
    """The person's state for the purpose of ``events`` at ``as_of`` (default: now)."""
    when = as_of or datetime.now(UTC)
    if isinstance(events, list) and len(events) == 1:  # the common case: one event, one stream
        only = events[0]
        if only.timestamp > when:
            return NO_RECORD
        if only.expires_at is not None and only.expires_at <= when:
            return NO_RECORD
        if only.status == GRANTED:
            if only.stream.startswith(POSSIBLE_STREAM):
                return NO_RECORD  # a possible match's grant is not this person's
            return ConsentState(GRANTED, only.explicit, only.timestamp, (only.id,))
        return ConsentState(only.status, False, only.timestamp, (only.id,))
    latest: dict[str, LedgerEvent] = {}
    for event in events:
        if event.timestamp > when:
            continue
        current = latest.get(event.stream)
        if current is None or (event.timestamp, event.id) > (current.timestamp, current.id):
            latest[event.stream] = event
    person = latest.get(PERSON_STREAM)
    live = [
        e
        for e in latest.values()
        if person is None or e is person or (e.timestamp, e.id) > (person.timestamp, person.id)
    ]
    in_force = [e for e in live if e.expires_at is None or e.expires_at > when]
    refusals = [e for e in in_force if e.status in (DENIED, WITHDRAWN)]
    if refusals:
        last = max(refusals, key=lambda e: (e.timestamp, e.id))
        status = WITHDRAWN if any(e.status == WITHDRAWN for e in refusals) else DENIED
        return ConsentState(status, False, last.timestamp, tuple(sorted(e.id for e in refusals)))
    # a possible match's grant is not this person's
    grants = [
        e for e in in_force if e.status == GRANTED and not e.stream.startswith(POSSIBLE_STREAM)
    ]
    if grants:
        first = min(grants, key=lambda e: (e.timestamp, e.id))
        explicit = any(e.explicit for e in grants)
        return ConsentState(GRANTED, explicit, first.timestamp, tuple(sorted(e.id for e in grants)))
    return NO_RECORD


#: The columns of a decision, and those of an event that :func:`_event` reads.
_DECISION = tuple(
    t.consent_events.c[name]
    for name in ("id", "purpose", "status", "timestamp", "expires_at", "explicit")
)
_EVENT_COLUMNS = (
    *_DECISION,
    t.consent_events.c.profile_id.label("event_profile"),
    *(t.consent_events.c[k] for k in STRONG_IDENTIFIERS),
)


def _event_query(purpose: str | None) -> Any:
    """Consent events joined to the profiles they belong to (by identifier or by profile id)."""
    columns = _EVENT_COLUMNS
    parts = []
    for kind in STRONG_IDENTIFIERS:
        query = (
            select(t.profile_identifiers.c.profile_id.label("owner"), *columns)
            .join(
                t.profile_identifiers,
                (t.profile_identifiers.c.kind == kind)
                & (t.profile_identifiers.c.value == t.consent_events.c[kind]),
            )
            .where(t.consent_events.c[kind].is_not(None))
        )
        parts.append(query)
    parts.append(
        select(t.consent_events.c.profile_id.label("owner"), *columns).where(
            t.consent_events.c.profile_id.is_not(None)
        )
    )
    if purpose is not None:
        parts = [query.where(t.consent_events.c.purpose == purpose) for query in parts]
    return union_all(*parts)


def _event(row: Any) -> LedgerEvent:
    # Rows of _event_query / events_by_profile: the identifier columns come in STRONG_IDENTIFIERS
    # order (email, phone, customer_id, social_handle); the stream prefers the customer number.
    mapping = row._mapping
    if mapping["event_profile"]:
        stream = PERSON_STREAM
    elif mapping["customer_id"]:
        stream = f"customer_id:{mapping['customer_id']}"
    else:
        stream = next(
            (f"{k}:{mapping[k]}" for k in ("email", "phone", "social_handle") if mapping[k]),
            f"event:{mapping['id']}",
        )
    return LedgerEvent(
        mapping["id"],
        stream,
        mapping["purpose"],
        mapping["status"],
        mapping["timestamp"],
        mapping["expires_at"],
        bool(mapping["explicit"]),
    )


def events_by_profile(
    conn: Connection, purpose: str | None, profile_ids: Sequence[str], *, possible: bool = True
) -> dict[str, list[LedgerEvent]]:
    """Each of some profiles' consent events (optionally for one purpose), index-driven: their
    identifiers, then the events carrying them; with ``possible``, also the events of their
    possible matches (as restriction-only streams). Many profiles at once:
    :func:`bulk_states`."""
    profile_ids = list(profile_ids)
    owner_of = {pid: pid for pid in profile_ids}
    owner_of.update(merged_into(conn, profile_ids))
    by_identifier: dict[tuple[str, str], set[str]] = defaultdict(set)
    for kind, value, pid in conn.execute(
        select(
            t.profile_identifiers.c.kind,
            t.profile_identifiers.c.value,
            t.profile_identifiers.c.profile_id,
        ).where(t.profile_identifiers.c.profile_id.in_(profile_ids))
    ):
        by_identifier[(kind, value)].add(pid)
    columns = _EVENT_COLUMNS
    conditions = [t.consent_events.c.profile_id.in_(sorted(owner_of))]
    for kind in STRONG_IDENTIFIERS:
        values = sorted(v for k, v in by_identifier if k == kind)
        if values:
            conditions.append(t.consent_events.c[kind].in_(values))
    out: dict[str, dict[int, LedgerEvent]] = defaultdict(dict)
    for condition in conditions:
        query = select(*columns).where(condition)
        if purpose is not None:
            query = query.where(t.consent_events.c.purpose == purpose)
        for row in conn.execute(query):
            owners = {owner_of[row.event_profile]} if row.event_profile in owner_of else set()
            for kind in STRONG_IDENTIFIERS:
                value = getattr(row, kind)
                if value is not None:
                    owners |= by_identifier.get((kind, value), set())
            for owner in owners:
                out[owner][row.id] = _event(row)
    if possible:
        partners = possible_partners(conn, profile_ids)
        theirs = sorted({q for qs in partners.values() for q in qs} - set(profile_ids))
        found = events_by_profile(conn, purpose, theirs, possible=False) if theirs else {}
        found |= {pid: list(out[pid].values()) for pid in profile_ids if pid in out}
        for pid, qs in partners.items():
            for q in qs:
                for event in found.get(q, ()):
                    if event.id not in out[pid]:
                        out[pid][event.id] = as_possible(event)
    return {pid: list(events.values()) for pid, events in out.items()}


def as_possible(event: LedgerEvent) -> LedgerEvent:
    """A possible match's event as one of the person's streams: it may restrict, never grant."""
    return replace(event, stream=POSSIBLE_STREAM + event.stream)


def possible_partners(
    conn: Connection, profile_ids: Sequence[str] | None = None
) -> dict[str, set[str]]:
    """Active profile → the active profiles it is a possible match of (pairs that identity
    resolution scored at ``possible_match`` or above without linking them: the ``possible``
    rows of ``identity_candidates``), for ``profile_ids`` or all."""
    left, right = t.profile_members.alias("lm"), t.profile_members.alias("rm")
    query = (
        select(left.c.profile_id, right.c.profile_id)
        .select_from(t.identity_candidates)
        .join(left, left.c.raw_id == t.identity_candidates.c.left_raw_id)
        .join(right, right.c.raw_id == t.identity_candidates.c.right_raw_id)
        .where(
            t.identity_candidates.c.status == "possible", left.c.profile_id != right.c.profile_id
        )
    )
    out: dict[str, set[str]] = defaultdict(set)
    if profile_ids is None:
        for a, b in conn.execute(query):
            out[a].add(b)
            out[b].add(a)
        return dict(out)
    wanted = sorted(set(profile_ids))
    for chunk in Store.of(conn).chunks(wanted, lists=2):
        for a, b in conn.execute(
            query.where(left.c.profile_id.in_(chunk) | right.c.profile_id.in_(chunk))
        ):
            out[a].add(b)
            out[b].add(a)
    keep = set(wanted)
    return {pid: qs for pid, qs in out.items() if pid in keep}


def possible_links(conn: Connection, profile_id: str) -> list[dict[str, Any]]:
    """The profile's possible matches, record by record: which of its records was scored close
    to which record of another profile (references and weights only, no values)."""
    mine, theirs = t.profile_members.alias("mine"), t.profile_members.alias("theirs")
    my_raw, their_raw = t.raw_records.alias("my_raw"), t.raw_records.alias("their_raw")
    my_src, their_src = t.sources.alias("my_src"), t.sources.alias("their_src")
    out: list[dict[str, Any]] = []
    for here, there in (
        (t.identity_candidates.c.left_raw_id, t.identity_candidates.c.right_raw_id),
        (t.identity_candidates.c.right_raw_id, t.identity_candidates.c.left_raw_id),
    ):
        query = (
            select(
                my_src.c.name,
                my_raw.c.record_id,
                their_src.c.name,
                their_raw.c.record_id,
                theirs.c.profile_id,
                t.identity_candidates.c.weight,
            )
            .select_from(t.identity_candidates)
            .join(mine, mine.c.raw_id == here)
            .join(theirs, theirs.c.raw_id == there)
            .join(my_raw, my_raw.c.id == here)
            .join(my_src, my_src.c.id == my_raw.c.source_id)
            .join(their_raw, their_raw.c.id == there)
            .join(their_src, their_src.c.id == their_raw.c.source_id)
            .where(
                t.identity_candidates.c.status == "possible",
                mine.c.profile_id == profile_id,
                theirs.c.profile_id != profile_id,
            )
        )
        for source, record, other_source, other_record, other, weight in conn.execute(query):
            out.append(
                {
                    "record": f"{source}:{record}",
                    "with": f"{other_source}:{other_record}",
                    "profile_id": other,
                    "weight": float(weight),
                }
            )
    return sorted(out, key=lambda link: -float(link["weight"]))


def states(
    conn: Connection,
    purpose: str,
    profile_ids: Sequence[str] | None = None,
    as_of: datetime | None = None,
) -> dict[str, ConsentState]:
    """The consent state of each profile (that has any event) for ``purpose``."""
    if profile_ids is not None and len(profile_ids) <= 500:
        return {
            pid: derive_state(events, as_of)
            for pid, events in events_by_profile(conn, purpose, profile_ids).items()
        }
    wanted = set(profile_ids) if profile_ids is not None else None
    return {pid: state for pid, (state, _) in bulk_states(conn, purpose, wanted, as_of).items()}


def recheck_time(events: Iterable[LedgerEvent], when: datetime) -> datetime | None:
    """The earliest time after ``when`` at which the derived state may change by itself (an
    expiry, or an event dated in the future), or None."""
    times = [e.timestamp for e in events if e.timestamp > when]
    times += [e.expires_at for e in events if e.expires_at is not None and e.expires_at > when]
    return min(times, default=None)


def bulk_states(
    conn: Connection, purpose: str, wanted: set[str] | None = None, as_of: datetime | None = None
) -> dict[str, tuple[ConsentState, datetime | None]]:
    """(state, recheck time) of many profiles: one pass over the purpose's events, a fast path
    for the usual person with a single event, the full derivation for the rest."""
    when = as_of or datetime.now(UTC)
    moved = redirects(conn)
    partners = possible_partners(conn)
    keep = wanted
    if wanted is not None and partners:  # the possible matches' events restrict them too
        keep = wanted | {q for pid in wanted for q in partners.get(pid, ())}
    rows: dict[str, list[Any]] = defaultdict(list)
    for row in conn.execute(_event_query(purpose)):
        owner = moved.get(row[0], row[0]) if moved else row[0]
        if keep is None or owner in keep:
            rows[owner].append(row)
    possible: dict[str, list[Any]] = defaultdict(list)
    for owner, found in rows.items():
        for q in partners.get(owner, ()):
            possible[q].extend(found)
    out: dict[str, tuple[ConsentState, datetime | None]] = {}
    for owner in set(rows) | set(possible):
        if wanted is not None and owner not in wanted:
            continue
        found = rows.get(owner, [])
        theirs = possible.get(owner)
        if theirs:
            events = list({r[1]: _event(r) for r in found}.values())
            mine = {e.id for e in events}
            events += [
                as_possible(e)
                for e in {r[1]: _event(r) for r in theirs}.values()
                if e.id not in mine
            ]
            out[owner] = (derive_state(events, when), recheck_time(events, when))
        elif len(found) == 1:
            # owner, id, purpose, status, timestamp, expires_at, explicit, ...
            _, event_id, _, status, at, expires, explicit = found[0][:7]
            if at > when:
                out[owner] = (NO_RECORD, at)
            elif expires is not None and expires <= when:
                out[owner] = (NO_RECORD, None)
            elif status == GRANTED:
                out[owner] = (ConsentState(GRANTED, bool(explicit), at, (event_id,)), expires)
            else:
                out[owner] = (ConsentState(status, False, at, (event_id,)), expires)
        else:
            events = list({r[1]: _event(r) for r in found}.values())
            out[owner] = (derive_state(events, when), recheck_time(events, when))
    return out


def owners_of_events(conn: Connection, event_ids_from: int, purpose: str) -> set[str]:
    """The active profiles that events of ``purpose`` with id above ``event_ids_from`` belong to."""
    columns = [t.consent_events.c.profile_id, *(t.consent_events.c[k] for k in STRONG_IDENTIFIERS)]
    query = select(*columns).where(
        t.consent_events.c.id > event_ids_from, t.consent_events.c.purpose == purpose
    )
    direct: set[str] = set()
    by_kind: dict[str, set[str]] = defaultdict(set)
    for row in conn.execute(query):
        if row[0]:
            direct.add(row[0])
        for kind, value in zip(STRONG_IDENTIFIERS, row[1:], strict=True):
            if value:
                by_kind[kind].add(value)
    owners = set(direct)
    for kind, values in by_kind.items():
        for chunk in Store.of(conn).chunks(sorted(values)):
            owners.update(
                conn.execute(
                    select(t.profile_identifiers.c.profile_id).where(
                        t.profile_identifiers.c.kind == kind,
                        t.profile_identifiers.c.value.in_(chunk),
                    )
                ).scalars()
            )
    if direct:
        moved = active_ids(conn, direct)
        owners = {moved.get(o) or o for o in owners}
    if owners:  # their possible matches take over their restrictions
        for partners in possible_partners(conn, sorted(owners)).values():
            owners |= partners
    return owners


def ledger_rows(conn: Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The consent events with these ids, oldest first, for display."""
    if not ids:
        return []
    query = (
        select(
            *_DECISION,
            t.consent_events.c.method,
            t.consent_events.c.notice_version,
            t.consent_events.c.evidence,
            t.sources.c.name.label("source"),
        )
        .join(t.sources, t.sources.c.id == t.consent_events.c.source_id)
        .where(t.consent_events.c.id.in_(ids))
        .order_by(t.consent_events.c.timestamp, t.consent_events.c.id)
    )
    return [{str(k): v for k, v in row.items()} for row in conn.execute(query).mappings()]


class Event(TypedDict):
    """One consent event as :func:`event_key`, :func:`event_row` and :func:`append_event` take
    it (keyword arguments)."""

    source_id: int
    purpose: str
    status: str
    at: datetime
    profile_id: NotRequired[str | None]
    identifiers: NotRequired[dict[str, str] | None]
    method: NotRequired[str | None]
    explicit: NotRequired[bool]
    notice_version: NotRequired[str | None]
    evidence: NotRequired[str | None]
    expires_at: NotRequired[datetime | None]


def event_key(**event: Unpack[Event]) -> str:
    """The idempotency key of one event (``event_key``; see :mod:`custos.store.event_keys`):
    its source, person, purpose, status, time and method. Cheaper than :func:`event_row`, so a
    writer can look keys up before it builds rows."""
    at, method = event["at"], event.get("method")
    decision = (event["purpose"], event["status"], at.isoformat(), method or "")
    identifiers = event.get("identifiers") or {}
    return event_keys.event_key(event["source_id"], event.get("profile_id"), decision, identifiers)


def event_row(*, key: str | None = None, **event: Unpack[Event]) -> dict[str, Any]:
    """The ``consent_events`` row of one event, with its idempotency key (``event_key``;
    ``key``: one worked out already, e.g. from the time a client claims rather than the time
    recorded)."""
    purpose, status, method = event["purpose"], event["status"], event.get("method")
    if status not in (GRANTED, DENIED, WITHDRAWN):
        raise ValueError(f"status must be granted, denied or withdrawn, not {status!r}")
    ids = event.get("identifiers") or {}
    return {
        "source_id": event["source_id"],
        "event_key": key or event_key(**event),
        "profile_id": event.get("profile_id"),
        "purpose": purpose,
        "status": status,
        "timestamp": event["at"],
        "expires_at": event.get("expires_at"),
        "method": method,
        "explicit": event.get("explicit", False),
        "notice_version": event.get("notice_version"),
        "evidence": event.get("evidence"),
        "payload": orjson.dumps({"purpose": purpose, "status": status, "method": method}).decode(),
        "ingested_at": datetime.now(UTC),
        **{k: ids.get(k) for k in STRONG_IDENTIFIERS},
    }


def append_event(conn: Connection, **event: Unpack[Event]) -> int:
    """Append one event to the ledger (never updates one) and return its id."""
    row = event_row(**event)
    result = conn.execute(t.consent_events.insert().values(**row))
    return int(result.inserted_primary_key[0])  # type: ignore[index]
