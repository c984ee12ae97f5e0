"""Reading one collected call (Segment's shape): its message id, time, problem, and the
interaction row it becomes.

The Segment (and RudderStack) source of the ingestion sink: pure functions of the call (no
store access), which the request handlers run while the writer thread holds a transaction. A
call is a row (:func:`call_fields`) that ingestion's normaliser makes canonical, as for every
source (:class:`CallRows`); the writing is :mod:`custos.service.collect`'s, through
:mod:`custos.ingest.sink`. :func:`generic_row` is the same call as a file would hold it (the
tests hold collection and file ingestion to the same rows through it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from itertools import compress
from typing import Any

import orjson

from custos.core.fields import CLAIMS, INTERACTION_FIELDS, Kind
from custos.ingest import normalise as n
from custos.ingest.rows import (
    CANDIDATES,
    COLUMNS,
    PERSON_COLUMNS,
    Good,
    NormalisedBatch,
    RowContext,
    dumps,
    normalise_row,
)

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
#: The extra attribute that keeps the call's Segment ids and names (event, anonymous id, …).
EXTRA = "segment"
#: The columns of a call's generic row (canonical interaction fields, then the extra).
ROW_COLUMNS = (*INTERACTION_FIELDS, EXTRA)
#: A call's person fields: (person column, trait names in order of preference).
TRAITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("email", ("email",)),
    ("phone", ("phone",)),
    ("first_name", ("firstName", "first_name")),
    ("last_name", ("lastName", "last_name")),
    ("full_name", ("name",)),
    ("date_of_birth", ("birthday",)),
)
ADDRESS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("street", ("street",)),
    ("postcode", ("postalCode", "postal_code")),
    ("city", ("city",)),
    ("country", ("country",)),
)
_UNREADABLE_TIME = (n.FieldError, ValueError, TypeError, OverflowError)


def text(value: Any) -> str | None:
    """A call's field as trimmed text, or None (absent, empty, or an object or list)."""
    if type(value) is str:
        value = value.strip()
        return value or None
    if value is None or isinstance(value, dict | list):
        return None
    found = str(value).strip()
    return found or None


def message_id(message: Mapping[str, Any]) -> str:
    """The call's ``messageId`` exactly as sent (``ab cd`` and ``abcd`` are two calls), or,
    when it is longer than a record id may be (:data:`MAX_ID`), ``sha256:`` and the hex digest
    of the exact id (the raw call keeps the id itself); when a client sent none, a digest of
    the call's content (also for an empty id or a null token, ``null``: clients that send
    those send them for every call), so that a resend of the same call is still recognised."""
    value = message.get("messageId")
    if type(value) is not str:
        value = None if value is None or isinstance(value, dict | list) else str(value)
    if value and not (value.isspace() or (len(value) < 8 and n.clean(value) is None)):
        if len(value) <= MAX_ID:
            return value
        return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    body = {k: v for k, v in message.items() if k not in ("sentAt", "writeKey")}
    return "sha256:" + hashlib.sha256(dumps(body).encode()).hexdigest()[:40]


#: The longest record id stored as it is (``raw_records.record_id``); a longer message id is
#: stored as the digest of it.
MAX_ID = 200


def _moment(value: Any, parsed: dict[str, Any] | None) -> datetime | None:
    """``n.timestamp(value)``, each distinct text read once per ``parsed`` cache (the calls of a
    batch share their ``sentAt`` and often their times); raises as it does."""
    if parsed is None or type(value) is not str:
        return n.timestamp(value)
    found = parsed.get(value)
    if found is None and value not in parsed:
        try:
            found = n.timestamp(value)
        except _UNREADABLE_TIME as exc:
            found = exc
        parsed[value] = found
    if isinstance(found, Exception):
        raise found
    return found


def event_time(
    message: Mapping[str, Any],
    received_at: datetime,
    sent_at: Any = None,
    parsed: dict[str, Any] | None = None,
    unreadable: list[str] | None = None,
) -> datetime:
    """When the call happened, corrected for the client's clock: receivedAt − (sentAt − timestamp).

    Without a ``sentAt`` the client's ``timestamp`` is taken as it is; without either, the time
    the call was received. ``parsed``: a cache of times read already (see :func:`_moment`).
    A time that cannot be read is not guessed from: the time the call was received is taken,
    and the field that could not be read is named in ``unreadable`` (when given).
    """
    try:
        when = _moment(message.get("timestamp") or message.get("originalTimestamp"), parsed)
        sent = _moment(message.get("sentAt") or sent_at, parsed)
    except _UNREADABLE_TIME:
        if unreadable is not None:
            unreadable.append(_unreadable_time(message, sent_at, parsed))
        return received_at
    if when is None:
        return received_at
    if sent is None:
        return when
    try:
        return received_at - (sent - when)
    except OverflowError:  # a clock centuries off: the client's time cannot be corrected
        return received_at


def _unreadable_time(
    message: Mapping[str, Any], sent_at: Any, parsed: dict[str, Any] | None
) -> str:
    """Which of a call's times cannot be read (``timestamp``, ``originalTimestamp`` or
    ``sentAt``)."""
    for name, value in (
        ("timestamp", message.get("timestamp")),
        ("originalTimestamp", message.get("originalTimestamp")),
        ("sentAt", message.get("sentAt") or sent_at),
    ):
        if value:
            try:
                _moment(value, parsed)
            except _UNREADABLE_TIME:
                return name
    return "timestamp"


#: The Segment ids and names of a call: (key in its ``extra``, field of the call).
IDS = (
    ("event", "event"),
    ("name", "name"),
    ("anonymous_id", "anonymousId"),
    ("user_id", "userId"),
    ("group_id", "groupId"),
    ("previous_id", "previousId"),
)


def ids(message: Mapping[str, Any]) -> dict[str, str]:
    """The Segment ids and names a call carries, as text (only those present; kept as the
    interaction's ``extra``)."""
    get = message.get
    found = {}
    for key, name in IDS:
        value = get(name)
        if value is not None and (value := text(value)):
            found[key] = value
    return found


def problem(message: Mapping[str, Any], call: str) -> str | None:
    """Why a call cannot be stored as it is (then it is quarantined), or None."""
    return problem_of(call, ids(message))


def problem_of(call: str, given: Mapping[str, str]) -> str | None:
    """:func:`problem`, from the call's :func:`ids`."""
    if call not in CALL_TYPES:
        return f"unknown call type {call!r}"
    user, anon = given.get("user_id"), given.get("anonymous_id")
    if call == "alias":
        if not user or not given.get("previous_id"):
            return "alias needs userId and previousId"
    elif not (user or anon):
        return "userId or anonymousId is required"
    if call == "track" and not given.get("event"):
        return "track needs event"
    if call == "group" and not given.get("group_id"):
        return "group needs groupId"
    return None


def _traits(message: Mapping[str, Any], call: str) -> dict[str, Any]:
    if call == "group":  # a group's traits are the group's, not the person's
        return {}
    context = message.get("context")
    traits = message.get("traits") if call == "identify" else None
    if not isinstance(traits, dict):
        traits = context.get("traits") if isinstance(context, dict) else None
    return traits if isinstance(traits, dict) else {}


def _pick(fields: dict[str, str], within: Mapping[str, Any], names: Any) -> None:
    for column, keys in names:
        for key in keys:
            value = text(within.get(key))
            if value:
                fields[column] = value
                break


def call_region(message: Mapping[str, Any], default: str | None) -> str | None:
    """The region of a phone the call's traits give without a country code (when their address
    names no country either): the country of the call's ``context.locale`` (``en-GB`` → GB),
    else ``default`` (``CUSTOS_DEFAULT_REGION``; None keeps such a number's national digits)."""
    context = message.get("context")
    locale = context.get("locale") if isinstance(context, dict) else None
    if type(locale) is str and len(locale) >= 4:
        part = locale.replace("_", "-").split("-")[-1]
        if len(part) == 2 and (region := n.phone_region(part)) is not None:
            return region
    return default


def person_fields(message: Mapping[str, Any], call: str, user: str | None) -> dict[str, str]:
    """The person fields a call carries (user id, and e-mail, phone, name, birthday and address
    of its traits), as given: only those present."""
    fields = {"customer_id": user} if user else {}
    traits = _traits(message, call)
    if traits:
        _pick(fields, traits, TRAITS)
        address = traits.get("address")
        if isinstance(address, dict) and address:
            _pick(fields, address, ADDRESS)
    return fields


def call_fields(
    message: Mapping[str, Any], call: str, when: datetime, user: str | None, mid: str
) -> dict[str, Any]:
    """The fields of a call as a row of ingestion: those it fills (see :func:`generic_row`)."""
    fields: dict[str, Any] = person_fields(message, call, user)
    fields.update(record_id=mid, timestamp=when, channel=call)
    return fields


def generic_row(
    message: Mapping[str, Any], call: str, when: datetime, user: str | None, mid: str
) -> dict[str, Any]:
    """The call as a row of ingestion (``ROW_COLUMNS``), as a file would hold it: its
    :func:`call_fields`, every other column empty, and its :func:`ids` as the extra."""
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    row.update(call_fields(message, call, when, user, mid))
    row[EXTRA] = ids(message)
    return row


#: The interaction columns, in the order of a call's values.
NAMES = COLUMNS[Kind.INTERACTIONS]
_TIME = NAMES.index("timestamp")
assert _TIME == 0
#: A call's row as inserted: (the columns it fills, their values as the driver takes them).
Shaped = tuple[tuple[str, ...], tuple[Any, ...]]


class _Shapes(dict[tuple[bool, ...], tuple[str, ...]]):
    """The columns a call fills, by which of its values are not NULL (a few shapes per
    source: worked out once each)."""

    def __missing__(self, filled: tuple[bool, ...]) -> tuple[str, ...]:
        shape = self[filled] = tuple(compress(NAMES, filled))
        return shape


_SHAPES = _Shapes()


def present(values: tuple[Any, ...], stamp: Callable[[Any], Any]) -> Shaped:
    """The columns of a call's values that are not NULL, and their values as the driver takes
    them (``stamp`` converts the time): an insert binds those only (binding a NULL costs the
    driver several times what binding a text does, and a call leaves most columns empty)."""
    filled = tuple([value is not None for value in values])
    row = list(compress(values, filled))
    if filled[_TIME]:  # the time comes first among the values bound
        row[0] = stamp(row[0])
    return _SHAPES[filled], tuple(row)


class CallRows:
    """Makes the interaction rows of calls: a call as a row (:func:`call_fields`) through
    ingestion's normaliser (:func:`~custos.ingest.rows.normalise_row`), the one rule of every
    source for what a field that does not normalise means (left out and listed, or the call
    quarantined). ``ctx`` holds the default region (see :func:`call_region`)."""

    def __init__(self, ctx: RowContext) -> None:
        self.ctx = ctx
        self._contexts: dict[str | None, RowContext] = {ctx.region: ctx}

    def context(self, message: Mapping[str, Any]) -> RowContext:
        """The row context of a call: ``ctx`` with the call's region (:func:`call_region`)."""
        region = call_region(message, self.ctx.region)
        found = self._contexts.get(region)
        if found is None:
            found = self._contexts[region] = replace(self.ctx, region=region)
        return found

    def normalise(
        self,
        message: Mapping[str, Any],
        call: str,
        when: datetime,
        given: dict[str, str],
        line: int,
        mid: str,
        verbatim: str,
        into: NormalisedBatch,
        user_is_customer: bool = True,
    ) -> Good | None:
        """Normalise a call that passed :func:`problem_of` (``given``: its :func:`ids`) into
        ``into``: its values (returned), or None when it is quarantined. ``user_is_customer``:
        the user id is the customer number (else it stays in the extra attributes only)."""
        user = given.get("user_id") if user_is_customer else None
        row = call_fields(message, call, when, user, mid)
        ctx = self.context(message) if row.get("phone") else self.ctx
        return normalise_row(row, {EXTRA: given}, line, mid, verbatim, ctx, into)


#: The person columns of a call's values (what it says of a person), and where the user id and
#: the extra attributes are.
_PERSON_AT = tuple(NAMES.index(c) for c in (*PERSON_COLUMNS, CANDIDATES))
_CUSTOMER_AT = NAMES.index("customer_id")
_EXTRA_AT = NAMES.index("extra")


def as_claims(
    values: tuple[Any, ...], keep_customer: bool
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A call's values with what it asserts about a person taken out, and that as claims.

    What a call of the public write key says of a person (user id, e-mail, phone, name, …) is
    a claim of a device, not a fact: the row keeps none of it in the columns identity links
    by, data-subject requests find people by or reads show; the claims stay in the row's extra
    attributes (``claims``) and the raw call. ``keep_customer``: the user id is verified (a
    signed identify), so it stays.
    """
    claims: dict[str, Any] = {}
    row = list(values)
    for i in _PERSON_AT:
        value = row[i]
        if value is not None and not (keep_customer and i == _CUSTOMER_AT):
            claims[NAMES[i]] = value
            row[i] = None
    if not claims:
        return values, claims
    extra = row[_EXTRA_AT]
    attributes = orjson.loads(extra) if type(extra) is str else dict(extra or {})
    attributes[CLAIMS] = claims
    row[_EXTRA_AT] = dumps(attributes)
    return tuple(row), claims


def user_hash(message: Mapping[str, Any]) -> Any:
    """The signature of the user id a call carries (``context.userHash``), if any."""
    context = message.get("context")
    return context.get("userHash") if isinstance(context, dict) else None


def context_key(message: Mapping[str, Any]) -> bytes:
    """What a call's consent signals depend on besides its headers: its context, as JSON."""
    context = message.get("context")
    return orjson.dumps(context, default=str) if context else b""


def timestamp_writer(bind: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """A function giving a timestamp as the driver takes it (``bind``: the column type's bind
    processor), each distinct value converted once."""
    if bind is None:
        return lambda value: value
    seen: dict[Any, Any] = {None: None}

    def convert(value: Any) -> Any:
        found = seen.get(value)
        if found is None and value is not None:
            found = seen[value] = bind(value)
        return found

    return convert
