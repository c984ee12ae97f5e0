"""Normalise one batch of raw rows into table-ready values, or quarantine entries.

Pure functions of their arguments (no store access), so batches can be normalised in worker
processes while the main process writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from custos.core.errors import unknown_name
from custos.core.fields import (
    CONSENT_STATUSES,
    DROPPABLE_PERSON_FIELDS,
    SALUTATION,
    STRONG_IDENTIFIERS,
    Kind,
    reads_as_prose,
)
from custos.core.fields import (
    PERSON_COLUMNS as PERSON_COLUMNS,  # (the order person_values returns them in)
)
from custos.core.files import csv_value
from custos.core.settings import Settings
from custos.ingest import normalise as n
from custos.ingest.mapping import ENTRY_COLUMN, ColumnMap
from custos.ingest.readers import RawRow
from custos.store.event_keys import file_event_key

#: What a free-text filter returns: the text to store as ``text``, and the whole text (the
#: health terms left in) when it names a health matter, stored as ``health_text``, else None.
FilteredText = tuple[str, str | None]
#: A free-text filter (ingestion does not know how personal data is found: the service layer
#: gives it): takes the text and its language (or None), returns a :data:`FilteredText`.
TextFilter = Callable[[str, str | None], FilteredText]


@dataclass(frozen=True, slots=True)
class RowContext:
    """What normalising a row needs to know besides the row."""

    kind: Kind
    #: The region of a phone written without a country code when the row has no country (the
    #: map file's ``phone_region``, else ``default_region``); None: such a number keeps its
    #: national digits and is given no country.
    region: str | None
    date_format: str | None = None
    channel: str | None = None
    #: A row whose e-mail, phone, birth date, handle, country (or an interaction's timestamp) is
    #: bad: ``drop`` (the default, as in the settings): store it without the field and list the
    #: field with the quarantine; ``implausible``: that only when the value reads but cannot be
    #: true, else quarantine the row; ``quarantine``: quarantine the row either way.
    bad_fields: str = Settings.model_fields["bad_fields"].default
    #: What happens to free text (the ``text`` field) before anything is stored, the verbatim
    #: payload included: ``keep``, or the name of a policy (``redact``, ``pseudonymise``).
    pii: str = "keep"
    #: The filter of ``pii``, given by the caller that knows how personal data is found: each
    #: ingestion carries its own (its key file included) to every worker. Needed unless ``pii``
    #: is ``keep``.
    text_filter: TextFilter | None = field(default=None, compare=False)
    #: Extra columns the map file tags ``free_text`` (a physician's note): filtered by ``pii``
    #: like ``text``, as is any other extra value that reads as prose.
    text_columns: frozenset[str] = frozenset()
    #: The map file asks ``normalise: upper`` of the customer id (spaces removed, upper case:
    #: :func:`~custos.ingest.normalise.customer_id_upper`); else it is kept exactly
    #: (:func:`~custos.ingest.normalise.customer_id`).
    upper_customer_id: bool = False
    #: The purposes the taxonomy knows: a consent event for another one (a typo) would never
    #: take effect, so its row is quarantined. None: not checked.
    purposes: frozenset[str] | None = None
    #: The normal forms remembered so far (the instance's, :class:`Memos`): a context of its
    #: own (a look-up, a test) starts empty.
    memos: Memos = field(default_factory=lambda: Memos(), compare=False, repr=False)


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
    skipped: int = 0  # blank lines
    #: line → quarantine entry the row was re-read from (its ``quarantine_id``): closed when the
    #: row lands
    entries: dict[int, int] = field(default_factory=dict)


def _default(value: Any) -> Any:
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON (dates as ISO strings, anything exotic as its string form)."""
    return orjson.dumps(value, default=_default).decode()


_dumps = orjson.dumps


#: ``health_text``: the whole text of a note that names a health matter (only identifiers
#: replaced), category ``health``; ``text`` then holds it with the health terms replaced too.
HEALTH_TEXT = "health_text"
INTERACTION_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "channel",
    "text",
    "language",
    HEALTH_TEXT,
    *PERSON_COLUMNS,
)
#: The readings of an ambiguous date of birth (``03/04/1982``), ISO dates separated by a space,
#: the day/month reading first (``"1982-04-03 1982-03-04"``), while ``date_of_birth`` stays
#: empty; None for every other row.
CANDIDATES = "date_of_birth_candidates"
#: Columns of :class:`Good` ``values`` per kind: the kind's fields, then the birth date
#: candidates and the extra attributes (records and interactions).
COLUMNS: dict[Kind, tuple[str, ...]] = {
    Kind.RECORDS: (*PERSON_COLUMNS, CANDIDATES, "extra"),
    Kind.INTERACTIONS: (*INTERACTION_COLUMNS, CANDIDATES, "extra"),
}


class _Memo(dict[str, Any]):
    """A bounded memo of one normaliser, from the raw text to the final form(s).

    Names, cities, postcodes, birth dates and phones repeat a lot, and a dict lookup costs a
    fraction of cleaning and normalising the text again (e-mails and streets repeat too rarely
    to pay for a memo: measured). The normalisers are pure functions of the text, so a hit
    gives exactly what a call would. A value that raises
    :class:`~custos.ingest.normalise.FieldError` is not remembered (the error propagates from
    the lookup). When full, the memo starts over: memory stays bounded. Only ``str`` keys go
    in (``1 == 1.0 == True`` would mix numbers whose normal forms differ).
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, key: str) -> Any:
        value = self.fn(key)
        if len(self) >= MEMO_SIZE:
            self.clear()
        self[key] = value
        return value


#: Entries per memo (each normaliser, and each region or date format, has its own).
MEMO_SIZE = 65_536


def _name_forms(raw: Any) -> tuple[str, str] | None:
    """(display form, comparison key) of a first or last name, or None when it is empty."""
    text = n.clean(raw)
    if not text:
        return None
    display = n.display_name(text)
    return display, n.name_key(display)


def _city_form(raw: Any) -> str | None:
    text = n.clean(raw)
    return n.display_name(text) if text else None


class Memos:
    """The normal forms one custos instance remembers while it ingests: names, cities,
    postcodes and countries, phones per region, birth dates per date format (each a bounded
    :class:`_Memo`).

    They hang on the instance (:attr:`custos.service.Custos.memos`) and travel in each row
    context (:attr:`RowContext.memos`), so two stores in one process share nothing and a test
    starts with empty memos. A copy sent to a worker process starts empty (:meth:`__reduce__`):
    each worker builds its own.
    """

    __slots__ = ("_birth_dates", "_phones", "cities", "countries", "names", "postcodes")

    def __init__(self) -> None:
        self.names = _Memo(_name_forms)
        self.cities = _Memo(_city_form)
        self.postcodes = _Memo(n.postcode)
        self.countries = _Memo(n.country)
        self._phones: dict[str | None, _Memo] = {}  # by region (None: national digits kept)
        self._birth_dates: dict[str | None, _Memo] = {}  # by date format

    def __reduce__(self) -> tuple[type[Memos], tuple[()]]:
        return (Memos, ())

    def phones(self, region: str | None) -> _Memo:
        """The memo of phone numbers read with ``region`` for those without a country code."""
        memo = self._phones.get(region)
        if memo is None:
            memo = self._phones[region] = _Memo(lambda raw: n.phone(raw, region))
        return memo

    def birth_dates(self, date_format: str | None) -> _Memo:
        """The memo of birth dates read with ``date_format``."""
        memo = self._birth_dates.get(date_format)
        if memo is None:
            memo = self._birth_dates[date_format] = _Memo(
                lambda raw: n.date_of_birth(raw, date_format)
            )
        return memo

    def __len__(self) -> int:
        memos = (self.names, self.cities, self.postcodes, self.countries)
        return sum(map(len, (*memos, *self._phones.values(), *self._birth_dates.values())))

    def clear(self) -> None:
        """Forget every remembered normal form, and the normalisers' own caches (they hold
        values of persons in process memory): after an erasure, so that no value of the erased
        person stays behind in a long-running process. Results do not change, only speed."""
        for memo in (self.names, self.cities, self.postcodes, self.countries):
            memo.clear()
        self._phones.clear()
        self._birth_dates.clear()
        n.clear_caches()


def person_values(values: dict[str, Any], ctx: RowContext) -> tuple[Any, ...]:
    """Normalise the person fields of ``values`` in :data:`PERSON_COLUMNS` order.

    Raises :class:`~custos.ingest.normalise.FieldError` with ``field`` set.
    """
    # Empty values (None, "") skip the normalisers: most rows leave several fields empty. Text
    # goes through the memos (exactly the normaliser's result); anything else (numbers from
    # Parquet or JSON) straight to the normaliser.
    get = values.get
    memos = ctx.memos
    field_name = "country"
    try:
        if v := get("country"):
            country = memos.countries[v] if type(v) is str else n.country(v)
        else:
            country = None
        field_name = "email"
        email = n.email(v) if (v := get("email")) else None
        field_name = "phone"
        if v := get("phone"):
            # The region of a number written without its country code: the row's country,
            # else the source's (ctx.region), else none (the number keeps its national digits).
            region = country if country in n.PHONE_REGIONS else ctx.region
            phone = memos.phones(region)[v] if type(v) is str else n.phone(v, region)
        else:
            phone = None
        field_name = "date_of_birth"
        if v := get("date_of_birth"):
            fmt = ctx.date_format
            born = memos.birth_dates(fmt)[v] if type(v) is str else n.date_of_birth(v, fmt)
        else:
            born = None
        field_name = "social_handle"
        handle = n.social_handle(v) if (v := get("social_handle")) else None
    except n.FieldError as exc:
        exc.field = field_name
        raise
    if v := get("first_name"):
        first_forms = memos.names[v] if type(v) is str else _name_forms(v)
    else:
        first_forms = None
    if v := get("last_name"):
        last_forms = memos.names[v] if type(v) is str else _name_forms(v)
    else:
        last_forms = None
    full = n.clean(v) if (v := get("full_name")) else None
    first: str | None
    last: str | None
    if full and not (first_forms or last_forms):
        where = country or ctx.region  # (a French "M. Dupont" is Monsieur Dupont)
        first, last = n.split_full_name(full, monsieur=where is None or where in n.FRENCH_SPEAKING)
        first, first_key = _display_forms(first) if first else (first, None)
        last, last_key = _display_forms(last) if last else (last, None)
    else:
        first, first_key = first_forms or (None, None)
        last, last_key = last_forms or (None, None)
    if not full and (first or last):
        full = f"{first} {last}" if first and last else first or last
    if (
        full
        and (v := get(SALUTATION))
        and (said := n.clean(v))
        and not full.casefold().startswith(said.casefold())
    ):
        full = f"{said} {full}"  # (a CRM's Anrede column: "Mrs R. West")
    street = n.clean(v) if (v := get("street")) else None
    if v := get("postcode"):
        postcode = memos.postcodes[v] if type(v) is str else n.postcode(v)
    else:
        postcode = None
    city = (memos.cities[v] if type(v) is str else _city_form(v)) if (v := get("city")) else None
    return (
        first,
        last,
        full,
        first_key,
        last_key,
        email,
        phone,
        born,
        street,
        n.street_key(street) if street else None,
        postcode,
        city,
        country,
        handle,
        _customer_id(v, ctx) if (v := get("customer_id")) else None,
    )


def _customer_id(value: Any, ctx: RowContext) -> str | None:
    """A row's customer id: exact, or upper-cased where the map file asks for it."""
    return n.customer_id_upper(value) if ctx.upper_customer_id else n.customer_id(value)


def _display_forms(name: str) -> tuple[str, str]:
    """(display form, comparison key) of a name that is already clean."""
    display = n.display_name(name)
    return display, n.name_key(display)


def _interaction(values: dict[str, Any], ctx: RowContext) -> tuple[Any, ...]:
    try:
        when = n.timestamp(values.get("timestamp"))
    except n.FieldError as exc:
        exc.field = "timestamp"
        raise
    channel = n.clean(values.get("channel")) or ctx.channel
    text, language = values.get("text"), values.get("language")
    return (
        when,
        channel.lower() if channel else None,
        None if text is None else n.free_text(text),
        None if language is None else n.language(language),
        values.get(HEALTH_TEXT),
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
    if ctx.purposes is not None and out["purpose"] not in ctx.purposes:
        raise n.FieldError(
            unknown_name("purpose", out["purpose"], ctx.purposes),
            f"use one of: {', '.join(sorted(ctx.purposes))} (or add the purpose to the taxonomy)",
            "purpose",
        )
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


_PERSON_DROPPABLE = DROPPABLE_PERSON_FIELDS
#: Fields a row may lose (``bad_fields``) rather than be quarantined for, per kind. A consent
#: event needs its purpose, status and times (without them it says nothing), and keeps at least
#: one identifier of the person (checked after the bad ones are left out).
DROPPABLE: dict[Kind, frozenset[str]] = {
    Kind.RECORDS: _PERSON_DROPPABLE,
    Kind.INTERACTIONS: _PERSON_DROPPABLE | {"timestamp"},
    Kind.CONSENTS: _PERSON_DROPPABLE,
}

_NORMALISERS: dict[Kind, Callable[[dict[str, Any], RowContext], Any]] = {
    Kind.RECORDS: person_values,
    Kind.INTERACTIONS: _interaction,
    Kind.CONSENTS: consent_values,
}


def consent_key(source: str, values: dict[str, Any]) -> str:
    """Idempotency key of a consent event: the same event ingested twice is stored once."""
    return file_event_key(source, values)


def _filter_text(
    row_values: dict[str, Any], values: dict[str, Any], cmap: ColumnMap, text_filter: TextFilter
) -> dict[str, Any]:
    """Apply the free-text policy to the canonical ``text`` and, in place, to the row as
    received (so the verbatim payload never holds what the policy removes, health terms
    included: their whole text is kept only in ``health_text``)."""
    text = values.get("text")
    if not isinstance(text, str) or not text.strip():
        return values
    language = values.get("language")
    filtered, whole = text_filter(text, language if isinstance(language, str) else None)
    column = cmap.fields.get("text", "text")
    target: Any = row_values
    if column not in row_values and "." in column:
        *parents, column = column.split(".")
        for key in parents:
            target = target.get(key) if isinstance(target, dict) else None
    if isinstance(target, dict) and column in target:
        target[column] = filtered
    return {**values, "text": filtered, HEALTH_TEXT: whole}


def _filter_extra(
    row_values: dict[str, Any],
    extra: dict[str, Any],
    language: Any,
    ctx: RowContext,
    text_filter: TextFilter,
) -> dict[str, Any]:
    """Apply the free-text policy to the extra columns that hold free text (tagged
    ``free_text``, or reading as prose), in ``extra`` and, in place, in the row as received."""
    out = dict(extra)
    for column, value in extra.items():
        if not isinstance(value, str) or not (column in ctx.text_columns or reads_as_prose(value)):
            continue
        filtered, _ = text_filter(value, language if isinstance(language, str) else None)
        out[column] = filtered
        if row_values.get(column) == value:
            row_values[column] = filtered
    return out


_SAME: Mapping[str, str] = MappingProxyType({})  # every field in its own column


def normalise_batch(rows: list[RawRow], cmap: ColumnMap, ctx: RowContext) -> NormalisedBatch:
    """Normalise a batch; each row lands in ``good`` or ``bad``, none is dropped."""
    result = NormalisedBatch()
    columns = cmap.fields
    filtering = ctx.pii != "keep" and ctx.kind is not Kind.CONSENTS
    text_filter = ctx.text_filter
    if filtering and text_filter is None:
        raise ValueError(f"the row context names the policy {ctx.pii!r} but gives no filter")
    needs_id = ctx.kind is not Kind.CONSENTS
    split = cmap.split
    identifier = n.identifier
    bad = result.bad.append
    notes = cmap.notes
    for row in rows:
        raw = row.values
        if raw is None:
            if row.error is None:
                result.skipped += 1
                continue
            fix = row.fix or _UNREADABLE
            bad(Bad(row.line_no, None, None, row.error or "unreadable", fix, row.raw or ""))
            continue
        if notes:  # a row of `custos quarantine export`: its entry, and no notes in the data
            entry = str(raw.get(ENTRY_COLUMN) or "")
            if entry.isdigit():
                result.entries[row.line_no] = int(entry)
            for column in notes:
                del raw[column]
            for key, value in raw.items():  # written with csv_cell: read it back as it was
                if type(value) is str:
                    raw[key] = csv_value(value)
        values, extra = split(raw)
        if filtering and extra:
            assert text_filter is not None
            extra = _filter_extra(raw, extra, values.get("language"), ctx, text_filter)
        if filtering and values.get("text") is not None:
            assert text_filter is not None
            values = _filter_text(raw, values, cmap, text_filter)
        record_id = identifier(values.get("record_id"))
        try:
            payload = _dumps(raw, default=_default).decode()  # dumps(), without a call
        except (TypeError, orjson.JSONEncodeError) as exc:
            reason = f"cannot be stored verbatim: {exc}"
            bad(Bad(row.line_no, record_id, None, reason, _UNREADABLE, str(raw)))
            continue
        if record_id is None and needs_id:
            fix = f"give every row a unique {cmap.fields.get('record_id', 'record_id')}"
            bad(Bad(row.line_no, None, "record_id", "record_id is missing", fix, payload))
            continue
        normalise_row(values, extra, row.line_no, record_id or "", payload, ctx, result, columns)
    return result


def normalise_row(
    values: dict[str, Any],
    extra: dict[str, Any] | None,
    line_no: int,
    record_id: str,
    payload: str,
    ctx: RowContext,
    result: NormalisedBatch,
    columns: Mapping[str, str] = _SAME,
) -> Good | None:
    """Normalise one row of canonical ``values`` (and its ``extra`` attributes) into
    ``result``: its :class:`Good` (returned), or the quarantine entry of a row that cannot be
    stored (None returned); a field left out of a stored row is listed in ``result.dropped``.

    The one rule of every source (files, collected calls). ``columns``: the source's column of
    each field, for the quarantine's messages."""
    candidates = None
    try:
        out = _NORMALISERS[ctx.kind](values, ctx)
    except n.FieldError as exc:
        kept = _without_bad_fields(exc, values, line_no, record_id, payload, columns, ctx, result)
        if kept is None:
            return None
        out, candidates = kept
    if ctx.kind is not Kind.CONSENTS:  # the kind's columns, then candidates and extra attributes
        out = (*out, candidates, dumps(extra) if extra else None)
    row = Good(line_no, record_id, payload, out)
    result.good.append(row)
    return row


def _without_bad_fields(
    exc: n.FieldError,
    values: dict[str, Any],
    line_no: int,
    record_id: str | None,
    payload: str,
    columns: Mapping[str, str],
    ctx: RowContext,
    result: NormalisedBatch,
) -> tuple[Any, str | None] | None:
    """Normalise a row whose field ``exc`` names is bad: without the field where ``bad_fields``
    allows (the field is listed in ``result.dropped``), else quarantine the row (None).

    An ambiguous date of birth is not bad, it reads two ways: whatever ``bad_fields`` says, the
    row is stored without ``date_of_birth`` and with both readings (returned as the candidates,
    the second item), and the field is listed too, so that someone sets the map file's
    ``date_format``."""
    normalise = _NORMALISERS[ctx.kind]
    droppable_fields = DROPPABLE[ctx.kind]
    dropped: list[Bad] = []
    candidates: str | None = None
    # Only the error's parts are kept, never the error: its traceback holds this frame, and
    # a reference cycle through the frame would keep the whole batch alive until the cyclic
    # garbage collector runs.
    error: tuple[str, str, str, bool, tuple[Any, ...]] | None = _parts(exc)
    del exc
    while error is not None:
        field_name, reason, fix, implausible, readings = error
        column = columns.get(field_name, field_name)
        shown = field_name if column == field_name else f"{field_name} (column {column})"
        issue = Bad(line_no, record_id, shown, reason, fix, payload)
        two_readings = (
            field_name == "date_of_birth" and len(readings) == 2 and ctx.kind is not Kind.CONSENTS
        )
        droppable = (
            two_readings
            or ctx.bad_fields == "drop"
            or (ctx.bad_fields == "implausible" and implausible)
        )
        if not (droppable and field_name in droppable_fields and values.get(field_name)):
            result.bad.append(issue)
            return None
        values = {**values, field_name: None}
        if two_readings:
            candidates = " ".join(str(r) for r in readings)
            issue.reason = (
                "ambiguous date: kept both readings in date_of_birth_candidates (day/month "
                "first, then month/day); row stored without date_of_birth"
            )
        else:
            issue.reason = f"{reason} (row stored without this field)"
        dropped.append(issue)
        try:
            out = normalise(values, ctx)
        except n.FieldError as again:
            error = _parts(again)
        else:
            error = None
    result.dropped.extend(dropped)
    return out, candidates


def _parts(exc: n.FieldError) -> tuple[str, str, str, bool, tuple[Any, ...]]:
    """(field, reason, fix, implausible, readings of an ambiguous date) of an error."""
    readings = exc.readings if isinstance(exc, n.AmbiguousDate) else ()
    return (exc.field, exc.reason, exc.fix, exc.implausible, readings)


_UNREADABLE = "repair the line in the file (quoting, field count, encoding) and ingest it again"
