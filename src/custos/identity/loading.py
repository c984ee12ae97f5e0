"""Records and interactions as identity resolution loads them, and their golden records.

Rows are plain tuples straight from the driver (a million objects with a dict each would cost
seconds and hundreds of megabytes); :func:`golden_documents` turns the rows of each cluster
into its golden record document.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Select, Text, func, literal, select, type_coerce

from custos.core.fields import STRONG_IDENTIFIERS
from custos.core.phones import digits_key
from custos.core.settings import Settings
from custos.identity import names
from custos.identity.exact import exact_edges
from custos.identity.golden import ADDRESS, RECTIFICATION, SINGLE, Candidate, golden_record
from custos.identity.graph import ExactResult, Node
from custos.identity.matcher import MATCH_COLUMNS as MATCHER_COLUMNS
from custos.identity.matcher import column_type
from custos.store import Store
from custos.store import golden as golden_store
from custos.store import tables as t
from custos.store.tables import utc_text

if TYPE_CHECKING:
    import pyarrow as pa

#: Record columns → the matcher's columns (names as folded keys, street as its key).
MATCH_SOURCE = {
    "first_name": "first_name_key",
    "surname": "last_name_key",
    "dob": "date_of_birth",
    "email": "email",
    "phone": "phone",
    "street": "street_key",
    "postcode": "postcode",
    "city": "city",
    "customer_id": "customer_id",
}

_GOLDEN_COLUMNS = (*SINGLE, *ADDRESS)
#: Where each column the matcher reads sits in a loaded row.
_ROW_AT = {
    "first_name_key": 4,
    "last_name_key": 5,
    "street_key": 8,
    **{name: 9 + i for i, name in enumerate(_GOLDEN_COLUMNS)},
}


#: A loaded row: (raw_id, source, record_id, is_record, first_key, last_key, when, extra JSON,
#: street_key, *golden values in :data:`_GOLDEN_COLUMNS` order, birth-date candidates). Kept as
#: plain tuples: a million objects with a dict each would cost seconds and hundreds of
#: megabytes, and most are only read once, to write their profile's golden record.
Row = tuple[Any, ...]
Loaded = tuple[list[Node], dict[int, Row], dict[str, list[Any]]]

_GOLDEN_AT = 9  # first golden value in a Row
_IDENTIFIER_AT = tuple((k, _GOLDEN_AT + _GOLDEN_COLUMNS.index(k)) for k in STRONG_IDENTIFIERS)
_DOB_AT = _GOLDEN_AT + _GOLDEN_COLUMNS.index("date_of_birth")
#: Row positions whose values repeat across rows (see :func:`_fetch_all`).
_SHARED = (
    1,  # source
    4,  # first name key
    5,  # surname key
    6,  # when
    *(
        _GOLDEN_AT + _GOLDEN_COLUMNS.index(name)
        for name in ("first_name", "last_name", "date_of_birth", "postcode", "city", "country")
    ),
)
assert _SHARED == (1, 4, 5, 6, 9, 10, 13, 17, 18, 19), "update _shared_values to the Row layout"
_SINGLE_AT = tuple((name, _GOLDEN_AT + _GOLDEN_COLUMNS.index(name)) for name in SINGLE)
_ADDRESS_AT = tuple((name, _GOLDEN_AT + _GOLDEN_COLUMNS.index(name)) for name in ADDRESS)
_STREET_AT = _GOLDEN_AT + _GOLDEN_COLUMNS.index("street")
_CITY_AT = _GOLDEN_AT + _GOLDEN_COLUMNS.index("city")
_POSTCODE_AT = _GOLDEN_AT + _GOLDEN_COLUMNS.index("postcode")
_CANDIDATES_AT = _GOLDEN_AT + len(_GOLDEN_COLUMNS)  # ambiguous birth date: its readings


def load(
    conn: Connection, *, new_only: bool = False, raw_ids: Sequence[int] | None = None
) -> Loaded:
    """Records and interactions as identity resolution sees them: graph nodes, the rows behind
    golden records (by raw id; see :func:`candidate`) and the matcher's columns (records only).
    ``new_only``: those in no profile yet; ``raw_ids``: just these."""
    if raw_ids is not None:
        out: Loaded = ([], {}, {})
        ordered = sorted(raw_ids)
        for chunk in Store.of(conn).chunks(ordered):
            part = _load(conn, new_only=new_only, raw_ids=chunk)
            out[0].extend(part[0])
            out[1].update(part[1])
            for key, values in part[2].items():
                out[2].setdefault(key, []).extend(values)
        if not out[2]:
            out[2].update({"unique_id": [], **{name: [] for name in MATCH_SOURCE}})
        return out
    return _load(conn, new_only=new_only)


class _Instants(dict[Any, datetime]):
    """Stored timestamps → aware datetimes, each distinct value parsed once (records ingested
    together share one; SQLite hands back text, PostgreSQL datetimes)."""

    def __init__(self) -> None:
        super().__init__()
        #: parsed → as stored, to write a chosen value's time back unchanged
        self.stored: dict[datetime, Any] = {}

    def __missing__(self, value: Any) -> datetime:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        self[value] = parsed
        self.stored.setdefault(parsed, value)
        return parsed


def candidate(row: Row, instants: dict[Any, datetime] | None = None) -> Candidate:
    """The golden-record candidate of a loaded row."""
    instant = (instants if instants is not None else _Instants())[row[6]]
    values = {
        k: v
        for k, v in zip(_GOLDEN_COLUMNS, row[_GOLDEN_AT:_CANDIDATES_AT], strict=True)
        if v is not None
    }
    extras = orjson.loads(row[7]) if row[7] and row[3] else None
    return Candidate(row[0], row[1], row[2], row[3], instant, values, extras)


def _load(
    conn: Connection, *, new_only: bool = False, raw_ids: Sequence[int] | None = None
) -> Loaded:
    nodes: list[Node] = []
    rows: dict[int, Row] = {}
    match: dict[str, list[Any]] = {"unique_id": [], **{name: [] for name in MATCH_SOURCE}}
    highest = 0
    if new_only:
        # Rows arrive with growing ids and every resolution puts all records (and linkable
        # interactions) into profiles, so the new ones lie above the highest member: an
        # index range, not a scan of the store. (Erasure deletes members too, so the bound
        # only ever lets more rows through.)
        highest = conn.execute(select(func.max(t.profile_members.c.raw_id))).scalar() or 0
    for table, is_record in ((t.records, True), (t.interactions, False)):
        # When a value was true: a record's observation, an interaction's own time. Read as
        # stored (no per-row conversion) and parsed once per distinct value in candidate().
        when = (
            table.c.observed_at
            if is_record
            else func.coalesce(table.c.timestamp, table.c.observed_at)
        )
        columns = [
            table.c.raw_id,
            t.sources.c.name,
            t.raw_records.c.record_id,
            literal(is_record),
            table.c.first_name_key,
            table.c.last_name_key,
            type_coerce(when, Text),
            table.c.extra,
            table.c.street_key,
            *(table.c[name] for name in _GOLDEN_COLUMNS),
            table.c.date_of_birth_candidates,
        ]
        query = (
            select(*columns)
            .join(t.raw_records, t.raw_records.c.id == table.c.raw_id)
            .join(t.sources, t.sources.c.id == table.c.source_id)
            .order_by(table.c.raw_id)
        )
        if raw_ids is not None:
            query = query.where(table.c.raw_id.in_(raw_ids))
        if new_only:
            # ... and the rows that changed since they were stored (identity_recheck: an
            # anonymous collected call that got its user id, a record re-ingested with other
            # values), wherever their ids lie and whether in a profile or not. Two queries:
            # with an OR between them SQLite would scan the table.
            pm = t.profile_members
            unlinked = query.outerjoin(pm, pm.c.raw_id == table.c.raw_id).where(
                pm.c.raw_id.is_(None)
            )
            recheck = select(t.identity_recheck.c.raw_id)
            loaded = _fetch_all(conn, unlinked.where(table.c.raw_id > highest))
            earlier = query.where(table.c.raw_id <= highest, table.c.raw_id.in_(recheck))
            if again := _fetch_all(conn, earlier):
                loaded = sorted(again + loaded, key=itemgetter(0))
        else:
            loaded = _fetch_all(conn, query)
        (email, at_e), (phone, at_p), (customer, at_c), (handle, at_h) = _IDENTIFIER_AT
        matched: list[Row] = []
        for row in loaded:
            identifiers: list[tuple[str, str]] = []
            if row[at_e]:
                identifiers.append((email, row[at_e]))
            if row[at_p]:
                identifiers.append((phone, row[at_p]))
            if row[at_c]:
                identifiers.append((customer, row[at_c]))
            if row[at_h]:
                identifiers.append((handle, row[at_h]))
            if not is_record and not identifiers:
                continue  # an interaction with nothing to link it by stays unlinked
            first, last = row[4], row[5]
            generation = None
            if (first and " " in first) or (last and " " in last):  # a suffix is a word of its own
                generation = names.generation(first, last)
                if generation is not None and last:
                    last = names.strip_generation(last) or last
            street = row[8]
            address = (
                f"{street}|{row[_POSTCODE_AT] or (row[_CITY_AT] or '').lower()}" if street else None
            )
            nodes.append(
                Node(
                    row[0],
                    is_record,
                    first,
                    last,
                    row[_DOB_AT],
                    tuple(identifiers),
                    generation,
                    address,
                )
            )
            rows[row[0]] = row
            # Interactions (calls, orders, posts) are scored by the matcher too when they carry
            # a name and a contact: a name alone never links.
            if is_record or first or last:
                matched.append(row if last == row[5] else (*row[:5], last, *row[6:]))
        if matched:
            columns_of = list(zip(*matched, strict=True))
            match["unique_id"].extend(columns_of[0])
            for name, column in MATCH_SOURCE.items():
                at = _ROW_AT[column]
                if name == "city":
                    match[name].extend(v.lower() if v else v for v in columns_of[at])
                elif name == "dob":
                    match[name].extend(
                        dob or (ambiguous.split(" ", 1)[0] if ambiguous else None)
                        for dob, ambiguous in zip(
                            columns_of[at], columns_of[_CANDIDATES_AT], strict=True
                        )
                    )
                else:
                    match[name].extend(columns_of[at])
            del columns_of
    return nodes, rows, match


def join_phone_forms(nodes: list[Node]) -> list[Node]:
    """The nodes, where a phone stored without its country (national digits) meets the same
    digits of a number stored in E.164: both carry the identifier ``phone~DIGITS`` too, so
    exact linking joins them (with its guard rails: the carriers must be one person). Numbers
    that meet no national form keep to their E.164 value: two E.164 numbers of different
    countries can share their national digits."""
    national = {
        digits_key(value)
        for node in nodes
        for kind, value in node.identifiers
        if kind == "phone" and not value.startswith("+")
    }
    if not national:
        return nodes
    forms: dict[str, set[str]] = defaultdict(set)
    for node in nodes:
        for kind, value in node.identifiers:
            if kind == "phone" and (key := digits_key(value)) in national:
                forms[key].add(value)
    national = {key for key, stored in forms.items() if len(stored) > 1}  # else nothing to join
    if not national:
        return nodes
    out = []
    for node in nodes:
        extra = [
            ("phone~", key)
            for kind, value in node.identifiers
            if kind == "phone" and (key := digits_key(value)) in national
        ]
        out.append(replace(node, identifiers=(*node.identifiers, *extra)) if extra else node)
    return out


def _fetch_all(conn: Connection, query: Select[Any]) -> list[Row]:
    """All rows of ``query`` as plain tuples, straight from the driver: for a million rows,
    SQLAlchemy's row objects and per-row fetching would double the time. (The query's
    parameters are integers, inlined.)

    Values that repeat across rows (source, time, names, city, postcode, birth date: the
    columns of :data:`_SHARED`) are kept once: the driver makes a new string per row, and for a
    million rows the copies cost ~400 MB.
    """
    return _shared_values(Store.of(conn).fetch_tuples(conn, query), {})


def _shared_values(rows: Sequence[Row], memo: dict[Any, Any]) -> list[Row]:
    """The rows with the values of the :data:`_SHARED` columns kept once (spelled out for the
    Row layout: a generic loop per value costs twice the time)."""
    s = memo.setdefault
    return [
        (
            r[0],
            s(r[1], r[1]),
            r[2],
            r[3],
            s(r[4], r[4]),
            s(r[5], r[5]),
            s(r[6], r[6]),
            r[7],
            r[8],
            s(r[9], r[9]),
            s(r[10], r[10]),
            r[11],
            r[12],
            s(r[13], r[13]),
            r[14],
            r[15],
            r[16],
            s(r[17], r[17]),
            s(r[18], r[18]),
            s(r[19], r[19]),
            r[20],
        )
        for r in rows
    ]


def arrow_table(match: dict[str, list[Any]], exact: ExactResult | None = None) -> pa.Table:
    """The matcher's input table (:data:`~custos.identity.matcher.MATCH_COLUMNS`) from
    :func:`load`'s columns and what exact linking learned about the identifiers.

    Phones are compared on their digits (:func:`~custos.core.phones.digits_key`), so a number
    stored without its country meets the same number in E.164. A landline, and an e-mail or
    phone carried by records of two or more persons (a couple's address), is household
    evidence: it moves from the person-level column to ``shared_email`` / ``shared_phone``. An
    identifier left out by the guard rails (a placeholder e-mail on hundreds of records) is
    evidence of nothing and is left out.
    """
    import pyarrow as pa

    shared = (exact.shared | exact.landlines) if exact else set()
    noise = exact.noise if exact else set()
    if noise:
        noisy_emails = {v for k, v in noise if k == "email"}
        noisy_phones = {digits_key(v) for k, v in noise if k == "phone"}
        noisy_phones |= {v for k, v in noise if k == "phone~"}
        match = {
            **match,
            "email": [None if v in noisy_emails else v for v in match["email"]],
            "phone": [None if v and digits_key(v) in noisy_phones else v for v in match["phone"]],
        }

    import pyarrow.compute as pc

    shared_emails = {v for k, v in shared if k == "email"}
    shared_phones = {digits_key(v) for k, v in shared if k == "phone"}
    shared_phones |= {v for k, v in shared if k == "phone~"}
    keys = [digits_key(v) if v else None for v in match["phone"]]
    if shared_phones:
        personal_phone = [None if k in shared_phones else k for k in keys]
        shared_phone = [k if k in shared_phones else None for k in keys]
    else:
        personal_phone, shared_phone = keys, [None] * len(keys)
    emails = match["email"]
    if shared_emails:
        personal_email = [None if v in shared_emails else v for v in emails]
        shared_email = [v if v in shared_emails else None for v in emails]
    else:
        personal_email, shared_email = emails, [None] * len(emails)
    columns: dict[str, Any] = {
        name: pa.array(match[name], pa.string())
        for name in MATCH_SOURCE
        if name not in ("email", "phone")
    } | {
        "email": pa.array(personal_email, pa.string()),
        "phone": pa.array(personal_phone, pa.string()),
        "shared_email": pa.array(shared_email, pa.string()),
        "shared_phone": pa.array(shared_phone, pa.string()),
    }
    # Nickname partners per distinct first name (a few thousand), spread by index.
    first = pc.dictionary_encode(columns["first_name"])
    partners = names.nickname_partners
    found = [sorted(p) if (p := partners(v)) else None for v in first.dictionary.to_pylist()]
    columns["first_name_nicknames"] = pa.array(found, column_type("first_name_nicknames")).take(
        first.indices
    )
    sparse = pc.and_(pc.is_null(columns["dob"]), pc.is_null(columns["city"]))
    columns["sparse"] = pc.if_else(sparse, pa.scalar("1"), pa.scalar(None, pa.string()))
    return pa.table(
        {"unique_id": pa.array(match["unique_id"], pa.int64())}
        | {name: columns[name] for name in MATCHER_COLUMNS}
    )


def match_table(conn: Connection) -> pa.Table:
    """Every record's (and name-carrying interaction's) matching fields as the matcher reads
    them, with the shared identifiers of the whole store counted as household evidence."""
    nodes, _rows, match = load(conn)
    exact = exact_edges(join_phone_forms(nodes), max_persons=3, max_records=200)
    return arrow_table(match, exact)


def golden_documents(
    profile_ids: Sequence[str],
    clusters: Sequence[Sequence[int]],
    rows: dict[int, Row],
    settings: Settings,
) -> Iterator[tuple[str, str]]:
    """(profile id, golden record document) per profile (:mod:`custos.store.golden`), produced
    one profile at a time from the loaded rows of its members.

    The same choice as :func:`~custos.identity.golden.golden_record`, made on the loaded rows
    directly for the rank-order rules (``priority``, ``recent``): a full resolution writes
    millions of golden values, and objects per member and value would cost most of its time.
    """
    instants = _Instants()
    rule = settings.golden_rule
    if rule not in ("priority", "recent"):
        for pid, members in zip(profile_ids, clusters, strict=True):
            chosen = golden_record(
                [candidate(rows[m], instants) for m in members],
                rule=rule,
                priority=settings.source_priority,
            )
            yield pid, golden_store.encode(chosen, rule)
        return
    rank = {name: i for i, name in enumerate(settings.source_priority)}
    rank_of = rank.get if rule == "priority" else (lambda _source, _default: 0)
    unranked = len(rank)
    stamps = _Stamps(instants)
    recency = _Recency(instants)
    dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS

    def order(row: Row) -> tuple[Any, ...]:
        # As golden._ranker: a rectification first, records before interactions, then the
        # source's priority (rule "priority"), newest first, lowest raw id.
        return (
            row[1] != RECTIFICATION,
            not row[3],
            rank_of(row[1], unranked),
            recency[row[6]],
            row[0],
        )

    # (Person columns are text: only extra attributes need str(); values are (value, origin)
    # pairs, origin indexing the document's "from" list.)
    for pid, members in zip(profile_ids, clusters, strict=True):
        values: dict[str, tuple[Any, int]] = {}
        if len(members) == 1:
            row = rows[members[0]]
            for attribute, at in _SINGLE_AT:
                if row[at]:
                    values[attribute] = (row[at], 0)
            if row[_STREET_AT] or row[_CITY_AT]:
                for attribute, at in _ADDRESS_AT:
                    if row[at]:
                        values[attribute] = (row[at], 0)
            if row[3] and row[7]:
                for name, value in orjson.loads(row[7]).items():
                    if value not in (None, ""):
                        values[name] = (str(value), 0)
            document = {"rule": rule, "from": ((row[1], row[2], stamps[row[6]]),), "values": values}
            yield pid, dumps(document, option=sort_keys).decode()
            continue
        ordered = sorted(map(rows.__getitem__, members), key=order)
        picks: list[tuple[str, Any, Row]] = []
        for attribute, at in _SINGLE_AT:
            for row in ordered:
                if row[at]:
                    picks.append((attribute, row[at], row))
                    break
        for row in ordered:
            if row[_STREET_AT] or row[_CITY_AT]:
                picks.extend((a, row[at], row) for a, at in _ADDRESS_AT if row[at])
                break
        extras = [(row, orjson.loads(row[7])) for row in ordered if row[3] and row[7]]
        for name in sorted({name for _, extra in extras for name in extra}):
            for row, extra in extras:
                if extra.get(name) not in (None, ""):
                    picks.append((name, str(extra[name]), row))
                    break
        origins: list[tuple[str, str, str]] = []
        index: dict[int, int] = {}
        for attribute, value, row in picks:
            origin = index.get(row[0])
            if origin is None:
                origin = index[row[0]] = len(origins)
                origins.append((row[1], row[2], stamps[row[6]]))
            values[attribute] = (value, origin)
        document = {"rule": rule, "from": origins, "values": values}
        yield pid, dumps(document, option=sort_keys).decode()


class _Recency(dict[Any, float]):
    """Stored timestamps → minus their POSIX time (newest sorts first), each value once."""

    def __init__(self, instants: _Instants) -> None:
        super().__init__()
        self.instants = instants

    def __missing__(self, value: Any) -> float:
        self[value] = out = -self.instants[value].timestamp()
        return out


class _Stamps(dict[Any, str]):
    """Stored timestamps → their form in golden documents, each distinct value once."""

    def __init__(self, instants: _Instants) -> None:
        super().__init__()
        self.instants = instants

    def __missing__(self, value: Any) -> str:
        self[value] = out = utc_text(self.instants[value])
        return out
