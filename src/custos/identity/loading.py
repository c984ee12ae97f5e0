"""Records and interactions as identity resolution loads them, and their golden records.

A loaded row is a :class:`LoadedRow`, a named tuple straight from the driver (a million objects
with a dict each would cost seconds and hundreds of megabytes); :func:`golden_documents` turns
the rows of each cluster into its golden record document
(:class:`~custos.identity.golden.GoldenPlan`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from itertools import compress
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    Text,
    delete,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy import text as sql_text

from custos.core.fields import MATCH_SOURCE, SALUTATION_GENDERS, STRONG_IDENTIFIERS
from custos.core.phones import digits_key
from custos.core.settings import Settings
from custos.identity import names
from custos.identity.exact import exact_edges
from custos.identity.golden import GoldenPlan
from custos.identity.graph import ExactResult, Node
from custos.identity.matcher import MATCH_COLUMNS as MATCHER_COLUMNS
from custos.identity.matcher import column_type
from custos.store import Store, meta
from custos.store import tables as t

if TYPE_CHECKING:
    import pyarrow as pa


class LoadedRow(NamedTuple):
    """A record or interaction as identity resolution reads it: what links it (keys and
    identifiers), what its golden values are and where they came from."""

    raw_id: int
    source: str
    record_id: str
    is_record: bool
    first_name_key: str | None
    last_name_key: str | None
    #: the name as one field (``Philip``, ``Frau Lehmann``), when the source gave it so
    full_name: str | None
    #: when its values were true (a record's observation, an interaction's own time), as stored
    when: Any
    #: extra attributes (JSON)
    extra: str | None
    street_key: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    date_of_birth: str | None
    social_handle: str | None
    customer_id: str | None
    street: str | None
    postcode: str | None
    city: str | None
    country: str | None
    #: an ambiguous birth date: its readings, separated by a space
    date_of_birth_candidates: str | None


Loaded = tuple[list[Node], dict[int, LoadedRow], dict[str, list[Any]]]

#: Columns whose values repeat across rows, kept once (see :func:`_interned`).
_SHARED = (
    "source",
    "first_name_key",
    "last_name_key",
    "when",
    "first_name",
    "last_name",
    "date_of_birth",
    "postcode",
    "city",
    "country",
)
_identifiers_of = attrgetter(*STRONG_IDENTIFIERS)


def load(
    conn: Connection,
    *,
    new_only: bool = False,
    raw_ids: Sequence[int] | None = None,
    keep_rows: int | None = None,
) -> Loaded:
    """Records and interactions as identity resolution sees them: graph nodes, the rows behind
    golden records (by raw id) and the matcher's columns (records only).
    ``new_only``: those in no profile yet; ``raw_ids``: just these. ``keep_rows`` bounds the
    rows kept (None: all): past it none are kept (a full run at millions of records: they are
    a quarter of its memory, and :func:`fetch_rows` reads a batch of them again when the golden
    records are written); the nodes are complete either way."""
    if raw_ids is not None:
        out: Loaded = ([], {}, {})
        ordered = sorted(raw_ids)
        for chunk in Store.chunks(ordered, inlined=True):
            part = _load(conn, new_only=new_only, raw_ids=chunk)
            out[0].extend(part[0])
            out[1].update(part[1])
            for key, values in part[2].items():
                out[2].setdefault(key, []).extend(values)
        if not out[2]:
            out[2].update({"unique_id": [], **{name: [] for name in MATCH_SOURCE}})
        return _double_surnames(conn, out)
    return _double_surnames(conn, _load(conn, new_only=new_only, keep_rows=keep_rows))


def _double_surnames(conn: Connection, loaded: Loaded) -> Loaded:
    """``loaded``, with a name given whole and split before its double surname read with it:
    "Malte Grein Groth" is Malte of the Grein Groths, "María García López" María of the García
    Lópezes, where a row of the store gives that surname (in its own column, as a CRM does);
    ingestion cannot tell a double surname from a second given name, so it splits before the
    last word. The store is asked in full and partial loads alike (an index holds the surnames
    of more than one word), so both read a name the same way."""
    nodes, _rows, match = loaded
    wanted: dict[int, tuple[str, str]] = {}
    for i, node in enumerate(nodes):
        first, last = node.first_key, node.last_key
        if first and last and " " in first:
            head, _, tail = first.rpartition(" ")
            wanted[i] = (head, f"{tail} {last}")
    if not wanted:
        return loaded
    surnames = {last for _, last in wanted.values()}
    given: set[str] = set()
    for table in (t.records, t.interactions):
        column = table.c.last_name_key
        for chunk in Store.chunks(sorted(surnames)):
            # (the index of the surnames of more than one word: a few of the rows)
            query = select(column).where(sql_text(t.DOUBLE_SURNAME), column.in_(chunk))
            given.update(conn.execute(query.distinct()).scalars())
    changed = {i: split for i, split in wanted.items() if split[1] in given}
    if not changed:
        return loaded
    at = {raw_id: i for i, raw_id in enumerate(match["unique_id"])}
    for i, (first, last) in changed.items():
        node = nodes[i] = replace(nodes[i], first_key=first, last_key=last)
        if (row := at.get(node.raw_id)) is not None:
            match["first_name"][row], match["surname"][row] = first, last
    return loaded


def _load(
    conn: Connection,
    *,
    new_only: bool = False,
    raw_ids: Sequence[int] | None = None,
    keep_rows: int | None = None,
) -> Loaded:
    nodes: list[Node] = []
    rows: dict[int, LoadedRow] = {}
    kept: dict[int, LoadedRow] | None = rows if keep_rows != 0 else None
    match: dict[str, list[Any]] = {"unique_id": [], **{name: [] for name in MATCH_SOURCE}}
    highest = 0
    everything = raw_ids is None and not new_only
    if new_only:
        # Rows arrive with growing ids and every resolution puts all records (and linkable
        # interactions) into profiles, so the new ones lie above the highest member: an
        # index range, not a scan of the store. (Erasure deletes members too, so the bound
        # only ever lets more rows through.)
        highest = conn.execute(select(func.max(t.profile_members.c.raw_id))).scalar() or 0
    for table, is_record in ((t.records, True), (t.interactions, False)):
        query = _rows_query(table, is_record).order_by(table.c.raw_id)
        if raw_ids is not None:
            query = query.where(table.c.raw_id.in_(raw_ids))
        if new_only:
            # ... and the rows that changed since they were stored (identity_recheck: an
            # anonymous collected call that got its user id, a record re-ingested with other
            # values), wherever their ids lie and whether in a profile or not. Two queries:
            # with an OR between them SQLite would scan the table.
            members = t.profile_members
            unlinked = query.outerjoin(members, members.c.raw_id == table.c.raw_id).where(
                members.c.raw_id.is_(None)
            )
            recheck = select(t.identity_recheck.c.raw_id)
            loaded = _fetch_all(conn, unlinked.where(table.c.raw_id > highest))
            earlier = query.where(table.c.raw_id <= highest, table.c.raw_id.in_(recheck))
            if again := _fetch_all(conn, earlier):
                loaded = sorted(again + loaded, key=attrgetter("raw_id"))
            batches: Iterable[list[LoadedRow]] = [loaded]
        elif everything:
            # A batch at a time, each gone before the next is read: the driver's rows and the
            # values only they hold would otherwise all be made first and freed after, leaving
            # the memory of a million rows to the process (fragmented, not given back).
            memo: dict[Any, Any] = {}
            batches = (_interned(part, memo) for part in Store.of(conn).iter_tuples(conn, query))
        else:
            batches = [_fetch_all(conn, query)]
        quoted_all = references(conn, [], True) if everything and not is_record else None
        for batch in batches:
            if is_record:
                quoted: dict[int, tuple[int, ...]] = {}
            elif quoted_all is not None:
                quoted = quoted_all
            else:
                quoted = references(conn, [r.raw_id for r in batch])
            if kept is not None and keep_rows is not None and len(kept) + len(batch) > keep_rows:
                kept.clear()  # (past the bound: none are kept, and the memory is reused)
                kept = None
            _add_nodes(batch, is_record, quoted, nodes, kept, match)
    return nodes, rows, match


def _add_nodes(
    loaded: list[LoadedRow],
    is_record: bool,
    quoted: dict[int, tuple[int, ...]],
    nodes: list[Node],
    rows: dict[int, LoadedRow] | None,
    match: dict[str, list[Any]],
) -> None:
    """Append the nodes (and, with ``rows``, the rows; and the matcher's columns) of a batch
    of loaded rows; ``quoted``: the rows each interaction's text refers to."""
    matched: list[LoadedRow] = []
    for row in loaded:
        values = _identifiers_of(row)  # the non-empty ones, as (kind, value)
        identifiers = tuple(compress(zip(STRONG_IDENTIFIERS, values, strict=True), values))
        refers = quoted.get(row.raw_id, ())
        if not is_record and not identifiers and not refers:
            continue  # an interaction with nothing to link it by stays unlinked
        first, last = row.first_name_key, row.last_name_key
        if not is_record and not first and last and _bare_given_name(row.full_name, last):
            first, last = last, None  # a caller who gave only "Philip": a first name
        generation = None
        if (first and " " in first) or (last and " " in last):  # a suffix is a word of its own
            generation = names.generation(first, last)
            if generation is not None and last:
                last = names.strip_generation(last) or last
        street = row.street_key
        address = f"{street}|{row.postcode or (row.city or '').lower()}" if street else None
        nodes.append(
            Node(
                row.raw_id,
                is_record,
                first,
                last,
                row.date_of_birth or row.date_of_birth_candidates,  # (ambiguous: both)
                identifiers,
                generation,
                address,
                refers,
                # (the gender it states: "Mrs R. West"; "Mr Julian Horn" is not his twin Julia)
                _salutation(row.full_name) if row.full_name else None,
            )
        )
        if rows is not None:
            rows[row.raw_id] = row
        # Interactions (calls, orders, posts) are scored by the matcher too when they carry
        # a name and a contact: a name alone never links.
        if is_record or first or last:
            if (first, last) != (row.first_name_key, row.last_name_key):
                row = row._replace(first_name_key=first, last_name_key=last)
            matched.append(row)
    if matched:
        _add_match_columns(match, matched)


def _salutation(full_name: str) -> str | None:
    """The gender a name's form of address states ("Frau Ackermann", "Mrs. Booth": ``"f"``;
    "Herr", "Mr", "Monsieur": ``"m"``), from its leading words; None when it states none."""
    # (every record's name is looked at: split, not a pattern, at a million names)
    for word in full_name.split(None, 3)[:3]:
        if found := SALUTATION_GENDERS.get(word.strip(".,;:()").lower()):
            return found
    return None


def _bare_given_name(full_name: str | None, last: str) -> bool:
    """Is an interaction's surname, its whole name of one word with no salutation, a given
    name (or one typo from one)? Ingestion cannot tell "Philip" from "Lehmann" and keeps one word as the surname
    ("Frau Lehmann" is one); a caller who gives only a known given name gave their first
    name, and a surname does not keep apart two people of one household. (A record's name of
    one word stays its surname: a CRM's last-name column with no first name gives the same
    ``full_name``.)"""
    if full_name is None or " " in (word := full_name.strip()) or "," in word:
        return False
    return names.given_name_like(last)


#: A word of a note that may be a record id: letters and digits (and ``-``, ``/``, ``_``), not
#: part of an e-mail address or a domain.
_WORD = re.compile(r"(?<![\w.@/-])#?([A-Za-z0-9][\w/-]*[A-Za-z0-9])(?![\w@/-]|\.\w)")


def quoted_ids(text: str) -> set[str]:
    """The words of ``text`` that look like a record id another system gave out: at least one
    letter and four digits (``O-500123``, ``ORD-2024-0042``, ``C300001``), so that years,
    amounts, postcodes and house numbers are never taken for one."""
    return {
        word
        for word in _WORD.findall(text)
        if len(word) >= 5 and any(c.isalpha() for c in word) and sum(map(str.isdigit, word)) >= 4
    }


def references(
    conn: Connection, interactions: Sequence[int], everything: bool = False
) -> dict[int, tuple[int, ...]]:
    """Interaction → the rows (records or interactions, of any source) whose record id its text
    quotes: a call note about order ``O-500123`` refers to that order. A quoted id that several
    rows carry (two sources numbering alike) refers to none of them; a row never refers to
    itself. ``everything``: ``interactions`` are all of them (one scan instead of look-ups)."""
    texts = t.interactions.c
    query = select(texts.raw_id, texts.text).where(texts.text.is_not(None))
    found: dict[int, set[str]] = {}
    parts = (
        [query]
        if everything
        else [
            query.where(texts.raw_id.in_(chunk))
            for chunk in Store.of(conn).chunks(sorted(interactions))
        ]
    )
    for part in parts:
        for raw_id, text in conn.execute(part):
            if words := quoted_ids(text):
                found[raw_id] = words
    if not found:
        return {}
    wanted = sorted(set().union(*found.values()))
    carriers: dict[str, list[int]] = defaultdict(list)
    raw = t.raw_records.c
    for source in conn.execute(select(t.sources.c.id)).scalars():
        for chunk in Store.of(conn).chunks(wanted):
            rows = conn.execute(
                select(raw.id, raw.record_id).where(
                    raw.source_id == source,
                    raw.record_id.in_(chunk),
                    raw.kind.in_(("records", "interactions")),
                )
            )
            for raw_id, record_id in rows:
                carriers[record_id].append(raw_id)
    out: dict[int, tuple[int, ...]] = {}
    for raw_id, words in found.items():
        targets = tuple(sorted(carriers[w][0] for w in words if len(carriers.get(w, ())) == 1))
        targets = tuple(x for x in targets if x != raw_id)
        if targets:
            out[raw_id] = targets
    return out


def _unindexed_texts(conn: Connection) -> Select[Any]:
    """The texts of the interactions stored since :func:`index_quotes` last ran."""
    since = int(meta.get(conn, meta.QUOTES_INDEXED) or 0)
    texts = t.interactions.c
    return select(texts.raw_id, texts.text).where(texts.raw_id > since, texts.text.is_not(None))


def index_quotes(conn: Connection, again: Iterable[int] = ()) -> None:
    """Bring ``interaction_quotes`` up to date (inside a resolution's write transaction): the
    words that may be record ids (:func:`quoted_ids`) of every interaction stored since it
    last ran, and again of the rows ``again`` (re-ingested: their text may have changed)."""
    store, quotes, texts = Store.of(conn), t.interaction_quotes, t.interactions.c
    since = int(meta.get(conn, meta.QUOTES_INDEXED) or 0)
    highest = conn.execute(select(func.max(t.raw_records.c.id))).scalar() or 0
    older = sorted(x for x in set(again) if x <= since)
    conn.execute(delete(quotes).where(quotes.c.raw_id > since))
    parts = [_unindexed_texts(conn)]
    for chunk in store.chunks(older):
        conn.execute(delete(quotes).where(quotes.c.raw_id.in_(chunk)))
        parts.append(
            select(texts.raw_id, texts.text).where(texts.raw_id.in_(chunk), texts.text.is_not(None))
        )
    # (texts read a batch at a time, and only their words kept: a first run after an upgrade
    # reads every note of the store)
    rows = [
        {"raw_id": raw_id, "word": word}
        for part in parts
        for batch in store.iter_tuples(conn, part)
        for raw_id, text in batch
        for word in sorted(quoted_ids(text))
    ]
    for start in range(0, len(rows), 10_000):
        conn.execute(quotes.insert(), rows[start : start + 10_000])
    meta.put(conn, meta.QUOTES_INDEXED, str(max(highest, since)))


def quoting(conn: Connection, rows: Iterable[int]) -> set[int]:
    """The other interactions whose text quotes the record id of one of ``rows``: the older call
    notes about a new order. From ``interaction_quotes``, and from the texts stored since
    :func:`index_quotes` last ran (after an upgrade, once, all of them)."""
    store, raw, quotes = Store.of(conn), t.raw_records.c, t.interaction_quotes.c
    given = sorted(set(rows))
    ids: set[str] = set()
    for chunk in store.chunks(given):
        ids.update(conn.execute(select(raw.record_id).where(raw.id.in_(chunk))).scalars())
    if not ids:
        return set()
    found: set[int] = set()
    for words in store.chunks(sorted(ids)):
        found.update(conn.execute(select(quotes.raw_id).where(quotes.word.in_(words))).scalars())
    for raw_id, text in conn.execute(_unindexed_texts(conn)):
        if not ids.isdisjoint(quoted_ids(text)):
            found.add(raw_id)
    return found.difference(given)


def _columns(table: Table, is_record: bool) -> list[ColumnElement[Any]]:
    """The columns of a :class:`LoadedRow` of ``table`` (records or interactions)."""
    # When a value was true: a record's observation, an interaction's own time. Read as stored
    # (no per-row conversion) and parsed once per distinct value by the golden record.
    when = (
        table.c.observed_at if is_record else func.coalesce(table.c.timestamp, table.c.observed_at)
    )
    provenance: dict[str, ColumnElement[Any]] = {
        "source": t.sources.c.name,
        "record_id": t.raw_records.c.record_id,
        "is_record": literal(is_record),
        "when": type_coerce(when, Text),
    }
    return [provenance[name] if name in provenance else table.c[name] for name in LoadedRow._fields]


def _rows_query(table: Table, is_record: bool) -> Select[Any]:
    """The :class:`LoadedRow` rows of ``table`` (records or interactions), with their source
    and record id."""
    return (
        select(*_columns(table, is_record))
        .join(t.raw_records, t.raw_records.c.id == table.c.raw_id)
        .join(t.sources, t.sources.c.id == table.c.source_id)
    )


def _add_match_columns(match: dict[str, list[Any]], rows: list[LoadedRow]) -> None:
    """Append the matcher's columns (:data:`~custos.core.fields.MATCH_SOURCE`) of ``rows``."""
    columns = dict(zip(LoadedRow._fields, zip(*rows, strict=True), strict=True))
    match["unique_id"].extend(columns["raw_id"])
    lowered: dict[str, str] = {}  # one string per city, not one per row
    for name, column in MATCH_SOURCE.items():
        if name == "city":
            match[name].extend(
                (lowered.get(v) or lowered.setdefault(v, v.lower())) if v else v
                for v in columns[column]
            )
        elif name == "dob":  # an ambiguous date: its first reading
            match[name].extend(
                dob or (ambiguous.split(" ", 1)[0] if ambiguous else None)
                for dob, ambiguous in zip(
                    columns[column], columns["date_of_birth_candidates"], strict=True
                )
            )
        else:
            match[name].extend(columns[column])


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


def _fetch_all(conn: Connection, query: Select[Any]) -> list[LoadedRow]:
    """All rows of ``query`` (the columns of a :class:`LoadedRow`) straight from the driver
    (:meth:`Store.fetch_tuples`): for a million rows, SQLAlchemy's row objects and per-row
    fetching would double the time. (The query's parameters are integers, inlined.)"""
    return _interned(Store.of(conn).fetch_tuples(conn, query), {})


def fetch_rows(conn: Connection, raw_ids: Sequence[int]) -> dict[int, LoadedRow]:
    """The loaded rows (records and interactions) of ``raw_ids``, as :func:`load` keeps them,
    read again by raw id: what a full run's golden records are made from, a batch at a time.
    (The query is compiled once and the ids appended as integer literals: SQLAlchemy's
    rendering of 5,000 literals per statement took longer than the database's look-ups.)"""
    out: dict[int, LoadedRow] = {}
    ordered = sorted(raw_ids)
    store = Store.of(conn)
    for table, is_record in ((t.records, True), (t.interactions, False)):
        # (interactions: only the ids that are no record's; SQLite looks each id of the list up
        # in raw_records first, even where no interaction has it)
        ordered = [raw_id for raw_id in ordered if raw_id not in out]
        query = _rows_query(table, is_record)
        text = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        head = f"{text} WHERE {table.name}.raw_id IN "
        for chunk in Store.chunks(ordered, inlined=True):
            sql = head + "(" + ",".join(map(str, map(int, chunk))) + ")"
            for row in map(LoadedRow._make, store.fetch_tuples(conn, sql)):
                out[row.raw_id] = row  # (a batch's rows live briefly: nothing to share)
    return out


def stored_anchors(conn: Connection, raw_ids: Sequence[int]) -> list[str]:
    """Each raw id's stable name, its source and record id, read from the store in the order
    asked: a new profile's id derives from its first member's (full and incremental runs
    alike)."""
    raw = t.raw_records.c
    query = select(raw.id, t.sources.c.name, raw.record_id).join(
        t.sources, t.sources.c.id == raw.source_id
    )
    names: dict[int, str] = {}
    store = Store.of(conn)
    for chunk in Store.chunks(sorted(set(raw_ids)), inlined=True):
        for raw_id, source, record_id in store.fetch_tuples(conn, query.where(raw.id.in_(chunk))):
            names[raw_id] = f"{source}\x1f{record_id}"
    return [names[raw_id] for raw_id in raw_ids]


def _interner() -> Callable[[Sequence[tuple[Any, ...]], dict[Any, Any]], list[LoadedRow]]:
    """Kernel: driver tuples → :class:`LoadedRow`, with the values of the :data:`_SHARED`
    columns (source, time, names, city, postcode, birth date) kept once in a memo: the driver
    makes a new string per row, and for a million rows the copies cost ~400 MB.

    The loop is generated from the row's fields, as :func:`collections.namedtuple` generates
    its methods: spelled out per field it costs half of a loop per value, and a third of
    building the rows column by column."""
    values = ", ".join(
        f"keep(r[{i}], r[{i}])" if name in _SHARED else f"r[{i}]"
        for i, name in enumerate(LoadedRow._fields)
    )
    kernel = eval(f"lambda rows, keep, new: [new(({values},)) for r in rows]")
    new = partial(tuple.__new__, LoadedRow)

    def interned(rows: Sequence[tuple[Any, ...]], memo: dict[Any, Any]) -> list[LoadedRow]:
        out: list[LoadedRow] = kernel(rows, memo.setdefault, new)
        return out

    return interned


_interned = _interner()


def arrow_table(
    match: dict[str, list[Any]],
    exact: ExactResult | None = None,
) -> pa.Table:
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
        match = _home_addresses(match, shared_phone)
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


def _home_addresses(match: dict[str, list[Any]], shared: list[str | None]) -> dict[str, list[Any]]:
    """The matcher's columns, where a row without an address that carries a shared phone (a
    family's landline) is given, for comparison only, the one address the rows carrying that
    phone give. A call from the family's landline in
    the daughter's name then meets her CRM record on household evidence, though her record
    holds her mobile and the call no address. A phone rung at two addresses gives none."""
    where: dict[str, set[tuple[Any, Any, Any]]] = {}
    streets, postcodes, cities = match["street"], match["postcode"], match["city"]
    lacking = False
    for phone, street, postcode, city in zip(shared, streets, postcodes, cities, strict=True):
        if phone:
            if street:
                where.setdefault(phone, set()).add((street, postcode, city))
            else:
                lacking = True
    homes = {phone: next(iter(found)) for phone, found in where.items() if len(found) == 1}
    if not lacking or not homes:
        return match
    streets, postcodes, cities = list(streets), list(postcodes), list(cities)
    for i, phone in enumerate(shared):
        if phone and not streets[i] and (home := homes.get(phone)):
            streets[i], postcodes[i], cities[i] = home
    return {**match, "street": streets, "postcode": postcodes, "city": cities}


def match_table(conn: Connection) -> pa.Table:
    """Every record's (and name-carrying interaction's) matching fields as the matcher reads
    them, with the shared identifiers of the whole store counted as household evidence."""
    nodes, _rows, match = load(conn)
    exact = exact_edges(join_phone_forms(nodes), max_persons=3, max_records=200)
    return arrow_table(match, exact)


def golden_documents(
    profile_ids: Sequence[str],
    clusters: Sequence[Sequence[int]],
    rows: dict[int, LoadedRow],
    settings: Settings,
) -> Iterator[tuple[str, str]]:
    """(profile id, golden record document) per profile (:mod:`custos.store.golden`), produced
    one profile at a time from the loaded rows of its members, by the settings' rule."""
    plan = GoldenPlan(settings.golden_rule, settings.source_priority)
    return plan.documents(profile_ids, clusters, rows)
