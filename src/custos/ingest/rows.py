"""Normalise one batch of raw rows into table-ready values, or quarantine entries.

Pure functions of their arguments (no store access), so batches can be normalised in worker
processes while the main process writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from custos.core.fields import CONSENT_STATUSES, STRONG_IDENTIFIERS, Kind
from custos.ingest import normalise as n
from custos.ingest.mapping import ColumnMap
from custos.ingest.readers import RawRow


@dataclass(frozen=True, slots=True)
class RowContext:
    """What normalising a row needs to know besides the row."""

    kind: Kind
    region: str
    date_format: str | None = None
    channel: str | None = None
    #: A row whose optional field is bad: ``quarantine`` the row; ``implausible``: store it
    #: without the field (and list the field with the quarantine) when the value reads but
    #: cannot be true, quarantine it when the value cannot be read; ``drop``: store it without
    #: the field either way.
    bad_fields: str = "implausible"
    #: What happens to free text (the ``text`` field) before anything is stored, the verbatim
    #: payload included: ``keep``, or the name of a filter in :data:`TEXT_FILTERS`.
    pii: str = "keep"


@dataclass(slots=True)
class Good:
    """A row that normalised: its id, the verbatim payload and the canonical values."""

    line_no: int
    record_id: str
    payload: str
    values: Any  # a tuple in COLUMNS[kind] order, or a dict for consents


@dataclass(slots=True)
class Bad:
    """A row for the quarantine: where it is, what is wrong and how to fix it."""

    line_no: int
    record_id: str | None
    field: str | None
    reason: str
    fix: str
    raw: str


@dataclass(slots=True)
class NormalisedBatch:
    """The outcome of one batch."""

    good: list[Good] = field(default_factory=list)
    bad: list[Bad] = field(default_factory=list)
    #: fields left out of rows that were stored anyway (``bad_fields``): for the quarantine
    #: list, so that nothing is lost, but not counted as quarantined rows
    dropped: list[Bad] = field(default_factory=list)


def _default(value: Any) -> Any:
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON (dates as ISO strings, anything exotic as its string form)."""
    return orjson.dumps(value, default=_default).decode()


#: Column order of the normalised person fields, as :func:`person_values` returns them.
PERSON_COLUMNS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "full_name",
    "first_name_key",
    "last_name_key",
    "email",
    "phone",
    "date_of_birth",
    "street",
    "street_key",
    "postcode",
    "city",
    "country",
    "social_handle",
    "customer_id",
)
INTERACTION_COLUMNS: tuple[str, ...] = ("timestamp", "channel", "text", "language", *PERSON_COLUMNS)
#: Columns of :class:`Good` ``values`` per kind (records and interactions add ``extra`` last).
COLUMNS: dict[Kind, tuple[str, ...]] = {
    Kind.RECORDS: (*PERSON_COLUMNS, "extra"),
    Kind.INTERACTIONS: (*INTERACTION_COLUMNS, "extra"),
}


def person_values(values: dict[str, Any], ctx: RowContext) -> tuple[Any, ...]:
    """Normalise the person fields of ``values`` in :data:`PERSON_COLUMNS` order.

    Raises :class:`~custos.ingest.normalise.FieldError` with ``field`` set.
    """
    # Empty values (None, "") skip the normalisers: most rows leave several fields empty.
    get = values.get
    field_name = "country"
    try:
        country = n.country(v) if (v := get("country")) else None
        field_name = "email"
        email = n.email(v) if (v := get("email")) else None
        field_name = "phone"
        phone = n.phone(v, country or ctx.region) if (v := get("phone")) else None
        field_name = "date_of_birth"
        born = n.date_of_birth(v, ctx.date_format) if (v := get("date_of_birth")) else None
        field_name = "social_handle"
        handle = n.social_handle(v) if (v := get("social_handle")) else None
    except n.FieldError as exc:
        exc.field = field_name
        raise
    first = n.clean(v) if (v := get("first_name")) else None
    last = n.clean(v) if (v := get("last_name")) else None
    full = n.clean(v) if (v := get("full_name")) else None
    if full and not (first or last):
        first, last = n.split_full_name(full)
    if first:
        first = n.display_name(first)
    if last:
        last = n.display_name(last)
    if not full and (first or last):
        full = f"{first} {last}" if first and last else first or last
    street = n.clean(v) if (v := get("street")) else None
    city = n.clean(v) if (v := get("city")) else None
    return (
        first,
        last,
        full,
        n.name_key(first) if first else None,
        n.name_key(last) if last else None,
        email,
        phone,
        born,
        street,
        n.street_key(street) if street else None,
        n.postcode(v) if (v := get("postcode")) else None,
        n.display_name(city) if city else None,
        country,
        handle,
        n.customer_id(v) if (v := get("customer_id")) else None,
    )


def _record(values: dict[str, Any], ctx: RowContext) -> tuple[Any, ...]:
    return person_values(values, ctx)


def _interaction(values: dict[str, Any], ctx: RowContext) -> tuple[Any, ...]:
    try:
        when = n.timestamp(values.get("timestamp"))
    except n.FieldError as exc:
        exc.field = "timestamp"
        raise
    channel = n.clean(values.get("channel")) or ctx.channel
    return (
        when,
        channel.lower() if channel else None,
        n.free_text(values.get("text")),
        n.language(values.get("language")),
        *person_values(values, ctx),
    )


_STATUS = {
    **{s: s for s in CONSENT_STATUSES},
    **dict.fromkeys(
        ("yes", "true", "1", "opt-in", "optin", "opt_in", "given", "consent"), "granted"
    ),
    **dict.fromkeys(("no", "false", "0", "opt-out", "optout", "opt_out", "refused"), "denied"),
    **dict.fromkeys(("revoked", "withdraw", "unsubscribed"), "withdrawn"),
}


def consent_values(values: dict[str, Any], ctx: RowContext) -> dict[str, Any]:
    """Normalise a consent event into the columns of ``consent_events``."""
    out: dict[str, Any] = {}
    purpose = n.clean(values.get("purpose"))
    if not purpose:
        raise n.FieldError(
            "purpose is missing", "name the purpose, e.g. marketing_email", "purpose"
        )
    out["purpose"] = purpose.lower().replace(" ", "_").replace("-", "_")
    status = _STATUS.get((n.clean(values.get("status")) or "").lower())
    if status is None:
        raise n.FieldError(
            "status is missing or unknown", "use granted, denied or withdrawn", "status"
        )
    out["status"] = status
    for name in ("timestamp", "expires_at"):
        try:
            out[name] = n.timestamp(values.get(name))
        except n.FieldError as exc:
            exc.field = name
            raise
    if out["timestamp"] is None:
        raise n.FieldError("timestamp is missing", "give the time consent was given", "timestamp")
    out["method"] = n.clean(values.get("method"))
    out["notice_version"] = n.clean(values.get("notice_version"))
    out["evidence"] = n.clean(values.get("evidence"))
    explicit = (n.clean(values.get("explicit")) or "").lower()
    out["explicit"] = explicit in ("1", "true", "yes", "y", "x", "ja", "explicit")
    person = dict(zip(PERSON_COLUMNS, person_values(values, ctx), strict=True))
    for key in STRONG_IDENTIFIERS:
        out[key] = person[key]
    if not any(out[k] for k in STRONG_IDENTIFIERS):
        raise n.FieldError(
            "no identifier of the person",
            f"give at least one of {', '.join(STRONG_IDENTIFIERS)}",
            "email",
        )
    return out


#: Optional fields a row may lose (``bad_fields``) rather than be quarantined for.
DROPPABLE = frozenset({"email", "phone", "date_of_birth", "social_handle", "country"})

_NORMALISERS: dict[Kind, Callable[[dict[str, Any], RowContext], Any]] = {
    Kind.RECORDS: _record,
    Kind.INTERACTIONS: _interaction,
    Kind.CONSENTS: consent_values,
}


def consent_key(source: str, values: dict[str, Any]) -> str:
    """Idempotency key of a consent event: the same event ingested twice is stored once."""
    parts = [source] + [
        values[k].isoformat() if isinstance(values.get(k), datetime) else str(values.get(k))
        for k in (
            "email",
            "phone",
            "customer_id",
            "social_handle",
            "purpose",
            "status",
            "timestamp",
        )
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


#: Free-text filters by policy name (``redact``, ``pseudonymise``), registered by the service
#: layer (ingestion does not know how personal data is found). A filter takes the text and its
#: language (or None) and returns the text to store. Worker processes are forked, so they
#: inherit the registry.
TEXT_FILTERS: dict[str, Callable[[str, str | None], str]] = {}


def _filter_text(
    row_values: dict[str, Any], values: dict[str, Any], cmap: ColumnMap, ctx: RowContext
) -> dict[str, Any]:
    """Apply the free-text policy to the canonical ``text`` and, in place, to the row as
    received (so the verbatim payload never holds what the policy removes)."""
    text = values.get("text")
    if not isinstance(text, str) or not text.strip():
        return values
    language = values.get("language")
    filtered = TEXT_FILTERS[ctx.pii](text, language if isinstance(language, str) else None)
    column = cmap.fields.get("text", "text")
    target: Any = row_values
    if column not in row_values and "." in column:
        *parents, column = column.split(".")
        for key in parents:
            target = target.get(key) if isinstance(target, dict) else None
    if isinstance(target, dict) and column in target:
        target[column] = filtered
    return {**values, "text": filtered}


def normalise_batch(rows: list[RawRow], cmap: ColumnMap, ctx: RowContext) -> NormalisedBatch:
    """Normalise a batch; each row lands in ``good`` or ``bad``, none is dropped."""
    result = NormalisedBatch()
    normalise = _NORMALISERS[ctx.kind]
    if ctx.pii != "keep" and ctx.kind is not Kind.CONSENTS and ctx.pii not in TEXT_FILTERS:
        raise ValueError(f"no free-text filter {ctx.pii!r} is registered")
    for row in rows:
        if row.values is None:
            result.bad.append(
                Bad(row.line_no, None, None, row.error or "unreadable", _UNREADABLE, row.raw or "")
            )
            continue
        values, extra = cmap.split(row.values)
        if ctx.pii != "keep" and ctx.kind is not Kind.CONSENTS:
            values = _filter_text(row.values, values, cmap, ctx)
        record_id = n.identifier(values.get("record_id"))
        try:
            payload = dumps(row.values)
        except (TypeError, orjson.JSONEncodeError) as exc:
            reason = f"cannot be stored verbatim: {exc}"
            result.bad.append(
                Bad(row.line_no, record_id, None, reason, _UNREADABLE, str(row.values))
            )
            continue
        if record_id is None and ctx.kind is not Kind.CONSENTS:
            fix = f"give every row a unique {cmap.fields.get('record_id', 'record_id')}"
            result.bad.append(
                Bad(row.line_no, None, "record_id", "record_id is missing", fix, payload)
            )
            continue
        dropped: list[Bad] = []
        while True:
            try:
                out = normalise(values, ctx)
                break
            except n.FieldError as exc:
                column = cmap.fields.get(exc.field, exc.field)
                shown = exc.field if column == exc.field else f"{exc.field} (column {column})"
                issue = Bad(row.line_no, record_id, shown, exc.reason, exc.fix, payload)
                droppable = ctx.bad_fields == "drop" or (
                    ctx.bad_fields == "implausible" and exc.implausible
                )
                if not (droppable and exc.field in DROPPABLE and values.get(exc.field)):
                    out = None
                    result.bad.append(issue)
                    break
                values = {**values, exc.field: None}
                issue.reason = f"{exc.reason} (row stored without this field)"
                dropped.append(issue)
        if out is None:
            continue
        result.dropped.extend(dropped)
        extra_json = dumps(extra) if extra else None
        if isinstance(out, tuple):
            out = (*out, extra_json)
        result.good.append(Good(row.line_no, record_id or "", payload, out))
    return result


_UNREADABLE = "repair the line in the file (quoting, field count, encoding) and ingest it again"
