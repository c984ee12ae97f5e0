"""Erasure (GDPR Art. 17): find every row of a person in every table, delete it, purge the bytes.

Every table of the store is listed in :data:`ERASED` or :data:`KEPT`; erasure refuses to run when
a table is in neither (a new table must say what erasure does with it), and a test fails.

What belongs to the person: the records and interactions of their profile (and of the ids merged
into it), rows not linked to a profile yet that carry one of their identifiers, the consent events
recorded against the profile or carrying their identifiers, quarantined rows of their records or
carrying their identifiers, and everything derived from those rows. An identifier another
profile also carries (a family phone) is that person's data too: rows and consent events that
carry it for someone else are kept, and it is neither searched for nor suppressed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Table, delete, func, or_, select, update

from custos.core.errors import StoreError
from custos.core.fields import CLAIMS, STRONG_IDENTIFIERS
from custos.store import Store, meta
from custos.store import tables as t
from custos.store.redirects import merged_into

#: Tables erasure deletes the person's rows from (what it removes there).
ERASED: dict[str, str] = {
    "raw_records": "the person's rows as received",
    "records": "normalised person records",
    "interactions": "calls, posts, orders and events",
    "consent_events": "consent events recorded against the profile or carrying its identifiers",
    "quarantine": "quarantined rows of the person's records or carrying their identifiers",
    "profiles": "the profile and the ids merged into it",
    "profile_members": "which records belong to the profile",
    "profile_golden": "the golden record",
    "profile_identifiers": "the profile's identifiers",
    "merge_evidence": "the links that joined the person's records",
    "profile_events": "merges, splits, unmerges, rectifications and restrictions of the profile",
    "identity_decisions": "decisions people made about the person's records",
    "consent_states": "the derived consent states of the profile",
    "restrictions": "a restriction of processing of the profile",
    "match_models": "term frequencies of the person's names and city that no one else has",
    "interaction_sentiment": "sentiment scores of the person's interactions",
    "collect_aliases": "anonymous ids of collected events tied to the person's user id",
    "collect_pending": "anonymous ids of the person's collected events not yet identified",
    "identity_recheck": "which of the person's rows identity resolution should look at again",
    "identity_candidates": "pairs of the person's rows kept for review as possible matches",
    "record_versions": "earlier versions of the person's records and interactions",
    "interaction_quotes": "the record ids the person's interactions quote",
}
#: Tables erasure leaves as they are, and why that keeps no personal data of the person.
KEPT: dict[str, str] = {
    "sources": "names of silos",
    "source_columns": "data categories of columns",
    "store_meta": "versions and fingerprints",
    "consent_state_marks": "up to which ledger event the consent states were computed",
    "audit_log": "profile ids only; entries are never changed (the hash chain)",
    "dsr_requests": "ids and counts: proof that the request was fulfilled",
    "suppressions": "keyed hashes of the identifiers, never the values",
    "segments": "segment names and rules, no persons",
    "api_keys": "names and hashes of API keys, no persons",
    # What was released stays known: an erased person's id keeps later releases of the purpose
    # from differencing them out (their absence would single them out) or from re-releasing a
    # column that got them suppressed.
    "releases": "profile ids only: which persons each de-identified release held or suppressed",
    "sentiment_heads": "weights of sentiment heads trained on labelled texts; no texts, no ids",
}
#: Tables of :data:`ERASED` that :func:`delete_subject` handles by name; the others are derived
#: from the person's rows or profile and are found by their reference to ``raw_records`` or
#: their ``profile_id`` column.
_BY_NAME = {
    "raw_records",
    "records",
    "interactions",
    "consent_events",
    "quarantine",
    "profiles",
    "profile_members",
    "profile_golden",
    "profile_identifiers",
    "merge_evidence",
    "profile_events",
    "identity_decisions",
    "consent_states",
    "restrictions",
    "match_models",
    "collect_aliases",
}


def _references(table: Table) -> list[Any]:
    """The columns of ``table`` that point at a person's row or profile."""
    return [
        c
        for c in table.c
        if c.name == "profile_id" or any(fk.column.table is t.raw_records for fk in c.foreign_keys)
    ]


def unclassified_tables() -> list[str]:
    """Tables of the store that erasure does not know what to do with (should be none): in
    neither list, or erased but with nothing that leads to the person."""
    tables = t.metadata.tables
    derived = [n for n in set(ERASED) - _BY_NAME if n in tables and not _references(tables[n])]
    return sorted(set(tables) - set(ERASED) - set(KEPT) | set(derived))


def check_coverage() -> None:
    """Refuse to erase while a table is neither erased nor deliberately kept."""
    missing = unclassified_tables()
    if missing:
        raise StoreError(
            f"erasure does not know the tables {', '.join(missing)}",
            hint="add them to ERASED or KEPT in custos/privacy/dsr/erasure.py",
        )


@dataclass
class Subject:
    """Where one person's data is (ids; the values are kept in memory only)."""

    profile_ids: list[str]
    raw_ids: set[int] = field(default_factory=set)
    #: (source id, record id) of the person's records and interactions
    record_keys: set[tuple[int, str]] = field(default_factory=set)
    #: identifier kind → normalised values only this person carries
    identifiers: dict[str, set[str]] = field(default_factory=dict)
    #: identifier kind → values another profile carries too (kept, never searched or suppressed)
    shared: dict[str, set[str]] = field(default_factory=dict)
    #: (first name key, last name key, date of birth) of the person's records
    persons: set[tuple[str, str, str]] = field(default_factory=set)
    first_keys: set[str] = field(default_factory=set)
    last_keys: set[str] = field(default_factory=set)
    #: term-frequency column of the matcher → values of the person (first name key, …)
    names: dict[str, set[str]] = field(default_factory=dict)
    cities: set[str] = field(default_factory=set)
    consent_event_ids: set[int] = field(default_factory=set)
    #: every string in the person's rows as received (to find their quarantined rows)
    texts: set[str] = field(default_factory=set)


def _chunks(values: Iterable[Any], *, lists: int = 1) -> Iterator[Sequence[Any]]:
    return Store.chunks(sorted(values), lists=lists)


def profile_family(conn: Connection, profile_id: str) -> list[str]:
    """The profile id and every id merged into it (directly or through other merged ids)."""
    return [profile_id, *merged_into(conn, [profile_id])]


def locate(conn: Connection, profile_id: str) -> Subject:
    """Where the person behind the active ``profile_id`` is in the store."""
    subject = Subject(profile_family(conn, profile_id))
    ids = subject.profile_ids
    subject.raw_ids = set(
        conn.execute(
            select(t.profile_members.c.raw_id).where(t.profile_members.c.profile_id.in_(ids))
        ).scalars()
    )
    seen: dict[str, set[str]] = {k: set() for k in STRONG_IDENTIFIERS}
    _read_rows(conn, subject, subject.raw_ids, seen)
    # Identifiers another profile carries too belong to that person as well.
    for kind, values in seen.items():
        shared: set[str] = set()
        for chunk in _chunks(values):
            shared.update(
                conn.execute(
                    select(t.profile_identifiers.c.value).where(
                        t.profile_identifiers.c.kind == kind,
                        t.profile_identifiers.c.value.in_(chunk),
                        t.profile_identifiers.c.profile_id.not_in(ids),
                    )
                ).scalars()
            )
        subject.shared[kind] = shared
        subject.identifiers[kind] = values - shared
    # Rows in no profile yet (ingested after the last resolve) that carry their identifiers are
    # theirs unless they name someone else; then the identifier is that person's too.
    unlinked: set[int] = set()
    for table in (t.records, t.interactions):
        columns = [table.c.raw_id, table.c.first_name_key, table.c.last_name_key]
        carried = [table.c[k] for k in STRONG_IDENTIFIERS]
        for kind, values in subject.identifiers.items():
            for chunk in _chunks(values):
                query = (
                    select(*columns, *carried)
                    .outerjoin(t.profile_members, t.profile_members.c.raw_id == table.c.raw_id)
                    .where(table.c[kind].in_(chunk), t.profile_members.c.raw_id.is_(None))
                )
                for raw_id, first, last, *identifiers in conn.execute(query):
                    if _same_person(subject, first, last):
                        unlinked.add(raw_id)
                        continue
                    for k, value in zip(STRONG_IDENTIFIERS, identifiers, strict=True):
                        if value in subject.identifiers[k]:
                            subject.shared[k].add(value)
    for kind in STRONG_IDENTIFIERS:
        subject.identifiers[kind] -= subject.shared[kind]
    unlinked -= subject.raw_ids
    if unlinked:
        subject.raw_ids |= unlinked
        _read_rows(conn, subject, unlinked, seen)
        for kind, values in seen.items():
            subject.identifiers[kind] = values - subject.shared[kind]
    _consent_events(conn, subject)
    return subject


def possible_partners(conn: Connection, subject: Subject) -> set[int]:
    """The rows (raw ids) identity resolution scored as possible matches of the person's rows
    without linking them (``identity_candidates``)."""
    raw = subject.raw_ids
    found: set[int] = set()
    for chunk in _chunks(raw, lists=2):
        for left, right in conn.execute(
            select(t.identity_candidates.c.left_raw_id, t.identity_candidates.c.right_raw_id).where(
                t.identity_candidates.c.status == "possible",
                t.identity_candidates.c.left_raw_id.in_(chunk)
                | t.identity_candidates.c.right_raw_id.in_(chunk),
            )
        ):
            found.update(x for x in (left, right) if x not in raw)
    return found


def possible_interactions(conn: Connection, subject: Subject) -> dict[int, tuple[int, str]]:
    """Interactions in no profile that may be the person's though no link says so: those
    identity resolution scored as possible matches of the person's rows, and those that carry
    no identifier but the first and last name of one of the person's records (a call note
    that knows only the caller's name), and collected calls whose unverified claims carry one of
    the person's identifiers (a device that said it was them: the claim would keep the
    identifier in clear). Erasure takes them too (it is conservative where identity is
    uncertain); an access report does not (they may be someone else's). Raw id → (source id,
    record id)."""
    raw = subject.raw_ids
    candidates = possible_partners(conn, subject)
    unowned = t.interactions.c.raw_id.not_in(select(t.profile_members.c.raw_id))
    found: set[int] = set()
    for chunk in _chunks(candidates):
        found.update(
            conn.execute(
                select(t.interactions.c.raw_id).where(t.interactions.c.raw_id.in_(chunk), unowned)
            ).scalars()
        )
    names: set[tuple[str, str]] = set()
    for chunk in _chunks(raw):
        names.update(
            (first, last)
            for first, last in conn.execute(
                select(t.records.c.first_name_key, t.records.c.last_name_key).where(
                    t.records.c.raw_id.in_(chunk),
                    t.records.c.first_name_key.is_not(None),
                    t.records.c.last_name_key.is_not(None),
                )
            ).all()
        )
    nameless = [t.interactions.c[k].is_(None) for k in STRONG_IDENTIFIERS]
    for first, last in sorted(names):
        query = select(t.interactions.c.raw_id).where(
            t.interactions.c.first_name_key == first,
            t.interactions.c.last_name_key == last,
            unowned,
            *nameless,
        )
        found.update(conn.execute(query).scalars())
    found |= _claiming(conn, subject, unowned)
    found -= raw
    keys: dict[int, tuple[int, str]] = {}
    for chunk in _chunks(found):
        for raw_id, source_id, record_id in conn.execute(
            select(t.raw_records.c.id, t.raw_records.c.source_id, t.raw_records.c.record_id).where(
                t.raw_records.c.id.in_(chunk)
            )
        ):
            keys[int(raw_id)] = (int(source_id), record_id)
    return keys


def _claiming(conn: Connection, subject: Subject, unowned: Any) -> set[int]:
    """Interactions in no profile whose claims (see :data:`CLAIMS`) name one of the person's
    identifiers: one pass over the calls that claim anything."""
    wanted = {(kind, value) for kind, values in subject.identifiers.items() for value in values}
    if not wanted:
        return set()
    query = select(t.interactions.c.raw_id, t.interactions.c.extra).where(
        t.interactions.c.extra.like(f'%"{CLAIMS}"%'), unowned
    )
    found: set[int] = set()
    for raw_id, extra in conn.execute(query):
        claims = orjson.loads(extra).get(CLAIMS) or {}
        if any((kind, value) in wanted for kind, value in claims.items()):
            found.add(int(raw_id))
    return found


def _same_person(subject: Subject, first: str | None, last: str | None) -> bool:
    """May a row with these name keys be the person's? (Yes when it names no one.)"""
    if not first and not last:
        return True
    if last:
        return last in subject.last_keys
    return first in subject.first_keys


def _read_rows(
    conn: Connection, subject: Subject, raw_ids: set[int], seen: dict[str, set[str]]
) -> None:
    names = subject.names
    for table in (t.records, t.interactions):
        columns = [
            table.c.raw_id,
            table.c.first_name_key,
            table.c.last_name_key,
            table.c.date_of_birth,
            table.c.city,
            *(table.c[k] for k in STRONG_IDENTIFIERS),
        ]
        for chunk in _chunks(raw_ids):
            for row in conn.execute(select(*columns).where(table.c.raw_id.in_(chunk))):
                _, first, last, born, city, *identifiers = row
                for kind, value in zip(STRONG_IDENTIFIERS, identifiers, strict=True):
                    if value:
                        seen[kind].add(value)
                if table is t.records:
                    for column, value in (("first_name", first), ("surname", last)):
                        if value:
                            names.setdefault(column, set()).add(value)
                    if city:
                        subject.cities.add(city)
                if first:
                    subject.first_keys.add(first)
                if last:
                    subject.last_keys.add(last)
                if first and last and born:
                    subject.persons.add((first, last, born))
    for chunk in _chunks(raw_ids):
        for source_id, record_id, payload in conn.execute(
            select(
                t.raw_records.c.source_id, t.raw_records.c.record_id, t.raw_records.c.payload
            ).where(t.raw_records.c.id.in_(chunk))
        ):
            subject.record_keys.add((int(source_id), record_id))
            subject.texts.update(_strings(payload))
    # Earlier versions of the rows: their identifiers are the person's too (suppressed with the
    # current ones, so an old export cannot bring them back).
    for chunk in _chunks(raw_ids):
        query = select(t.record_versions.c.fields, t.record_versions.c.payload).where(
            t.record_versions.c.raw_id.in_(chunk)
        )
        for fields, payload in conn.execute(query):
            earlier = orjson.loads(fields)
            for kind in STRONG_IDENTIFIERS:
                if earlier.get(kind):
                    seen[kind].add(earlier[kind])
            subject.texts.update(_strings(payload))


def _consent_events(conn: Connection, subject: Subject) -> None:
    columns = [
        t.consent_events.c.id,
        t.consent_events.c.profile_id,
        t.consent_events.c.payload,
        *(t.consent_events.c[k] for k in STRONG_IDENTIFIERS),
    ]
    conditions = [t.consent_events.c.profile_id.in_(subject.profile_ids)]
    for kind, values in subject.identifiers.items():
        conditions.extend(t.consent_events.c[kind].in_(chunk) for chunk in _chunks(values))
    for condition in conditions:
        for row in conn.execute(select(*columns).where(condition)):
            event_id, profile_id, payload, *identifiers = row
            carried = dict(zip(STRONG_IDENTIFIERS, identifiers, strict=True))
            if profile_id not in subject.profile_ids and any(
                value and value in subject.shared[kind] for kind, value in carried.items()
            ):
                continue  # the event is someone else's as much as theirs: keep it
            if event_id in subject.consent_event_ids:
                continue
            subject.consent_event_ids.add(int(event_id))
            subject.texts.update(_strings(payload))
            for kind, value in carried.items():
                if value:
                    subject.identifiers[kind].add(value)


def _strings(payload: str | None) -> Iterator[str]:
    """The string values of a row as received (JSON), nested ones included."""
    if not payload:
        return
    try:
        stack: list[Any] = [orjson.loads(payload)]
    except orjson.JSONDecodeError:
        return
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str | int) and not isinstance(item, bool):
            value = str(item).strip()
            if len(value) >= 3:
                yield value


def quarantined(
    conn: Connection, subject: Subject, terms: Iterable[str], *, min_length: int = 5
) -> set[int]:
    """Quarantine rows of the person: of their records (source and record id), or whose raw
    line contains one of ``terms`` (their identifiers, normalised and as received)."""
    found: set[int] = set()
    by_source: dict[int, set[str]] = {}
    for source_id, record_id in subject.record_keys:
        by_source.setdefault(source_id, set()).add(record_id)
    for source_id, record_ids in by_source.items():
        for chunk in _chunks(record_ids):
            found.update(
                conn.execute(
                    select(t.quarantine.c.id).where(
                        t.quarantine.c.source_id == source_id, t.quarantine.c.record_id.in_(chunk)
                    )
                ).scalars()
            )
    wanted = sorted({term.lower() for term in terms if len(term) >= min_length})
    for i in range(0, len(wanted), 50):
        part = wanted[i : i + 50]
        query = select(t.quarantine.c.id).where(
            or_(*(func.lower(t.quarantine.c.raw).contains(term, autoescape=True) for term in part))
        )
        found.update(conn.execute(query).scalars())
    return found


def delete_subject(conn: Connection, subject: Subject, quarantine_ids: set[int]) -> dict[str, int]:
    """Delete the person's rows in every table of :data:`ERASED` (inside the caller's write
    transaction); returns the number of rows removed per table. Where the backend can, the
    freed space is overwritten (:meth:`Store.secure_delete`)."""
    check_coverage()
    with Store.of(conn).secure_delete(conn):
        return _delete_rows(conn, subject, quarantine_ids)


def _delete_rows(conn: Connection, subject: Subject, quarantine_ids: set[int]) -> dict[str, int]:
    ids, raw = subject.profile_ids, subject.raw_ids
    removed: dict[str, int] = {}

    def run(table: Table, *conditions: Any) -> None:
        count = 0
        for condition in conditions:
            count += conn.execute(delete(table).where(condition)).rowcount or 0
        removed[str(table.name)] = removed.get(str(table.name), 0) + count

    def by_raw(*columns: Any) -> list[Any]:
        return [column.in_(chunk) for chunk in _chunks(raw) for column in columns]

    for name in sorted(set(ERASED) - _BY_NAME):
        if name in t.metadata.tables:  # data derived from their rows, e.g. sentiment scores
            table = t.metadata.tables[name]
            for column in _references(table):
                chunks = [ids] if column.name == "profile_id" else list(_chunks(raw))
                run(table, *(column.in_(chunk) for chunk in chunks))
    run(t.merge_evidence, t.merge_evidence.c.profile_id.in_(ids))
    run(t.merge_evidence, *by_raw(t.merge_evidence.c.left_raw_id, t.merge_evidence.c.right_raw_id))
    run(
        t.identity_decisions,
        *by_raw(t.identity_decisions.c.left_raw_id, t.identity_decisions.c.right_raw_id),
    )
    run(t.profile_members, t.profile_members.c.profile_id.in_(ids))
    run(t.profile_members, *by_raw(t.profile_members.c.raw_id))
    run(t.profile_golden, t.profile_golden.c.profile_id.in_(ids))
    run(t.profile_identifiers, t.profile_identifiers.c.profile_id.in_(ids))
    run(t.consent_states, t.consent_states.c.profile_id.in_(ids))
    run(t.restrictions, t.restrictions.c.profile_id.in_(ids))
    run(
        t.profile_events,
        t.profile_events.c.profile_id.in_(ids),
        t.profile_events.c.other_profile_id.in_(ids),
    )
    run(t.profiles, t.profiles.c.id.in_(ids))
    # A resolution computing from a snapshot taken before this must compute again.
    meta.bump(conn, meta.ERASURES)
    run(t.records, *by_raw(t.records.c.raw_id))
    run(t.interactions, *by_raw(t.interactions.c.raw_id))
    run(t.raw_records, *by_raw(t.raw_records.c.id))
    run(
        t.consent_events,
        *(t.consent_events.c.id.in_(c) for c in _chunks(subject.consent_event_ids)),
    )
    run(t.quarantine, *(t.quarantine.c.id.in_(c) for c in _chunks(quarantine_ids)))
    if subject.consent_event_ids:
        _rewind_consent_marks(conn)
    aliases = t.metadata.tables.get("collect_aliases")
    if aliases is not None:  # a user id is the person's customer id in collected events
        # User ids are compared exactly elsewhere; here also ignoring case (fail closed: a
        # device tied to an id that may be the person's, ``seg-Case`` for ``SEG-CASE`` stored
        # with normalise: upper, forgets that tie too).
        user_ids = {v.upper() for v in subject.identifiers.get("customer_id", set())}
        run(
            aliases,
            *(func.upper(aliases.c.user_id).in_(c) for c in _chunks(user_ids)),
            *(aliases.c.anonymous_id.in_(c) for c in _chunks(subject.texts)),
        )
    removed["match_models"] = _scrub_term_frequencies(conn, subject)
    return {name: count for name, count in removed.items() if count}


def _rewind_consent_marks(conn: Connection) -> None:
    """Keep the consent-state copies from missing the next event: SQLite hands a deleted
    highest id out again, and a copy marked as computed up to that id would take the new event
    for one it had seen. Each mark is lowered to the highest event of its purpose that is left."""
    for purpose, last in conn.execute(
        select(t.consent_state_marks.c.purpose, t.consent_state_marks.c.last_event_id)
    ).all():
        left = conn.execute(
            select(func.coalesce(func.max(t.consent_events.c.id), 0)).where(
                t.consent_events.c.purpose == purpose
            )
        ).scalar_one()
        if int(left) < int(last):
            conn.execute(
                update(t.consent_state_marks)
                .where(t.consent_state_marks.c.purpose == purpose)
                .values(last_event_id=left)
            )


def _scrub_term_frequencies(conn: Connection, subject: Subject) -> int:
    """Remove the person's values from the matcher's saved term frequencies, unless a remaining
    record still has them (then they are someone else's too). Returns the models changed."""
    remaining: dict[str, set[str]] = {}
    for column, key in (
        ("first_name", t.records.c.first_name_key),
        ("surname", t.records.c.last_name_key),
    ):
        values = subject.names.get(column, set())
        remaining[column] = {
            v
            for chunk in _chunks(values)
            for v in conn.execute(select(key).where(key.in_(chunk)).distinct()).scalars()
        }
    still = {
        c.lower()
        for chunk in _chunks(subject.cities)
        for c in conn.execute(
            select(t.records.c.city).where(t.records.c.city.in_(chunk)).distinct()
        ).scalars()
    }
    gone = {
        "first_name": subject.names.get("first_name", set()) - remaining["first_name"],
        "surname": subject.names.get("surname", set()) - remaining["surname"],
        "city": {c.lower() for c in subject.cities} - still,
    }
    if not any(gone.values()):
        return 0
    changed = 0
    for version, frequencies in conn.execute(
        select(t.match_models.c.version, t.match_models.c.term_frequencies)
    ).all():
        table = orjson.loads(frequencies)
        hit = False
        for column, values in gone.items():
            column_values = table.get(column, {})
            for value in values & set(column_values):
                del column_values[value]
                hit = True
        if hit:
            conn.execute(
                update(t.match_models)
                .where(t.match_models.c.version == version)
                .values(term_frequencies=orjson.dumps(table).decode())
            )
            changed += 1
    return changed


def purge(store: Store, tables: Sequence[str]) -> dict[str, Any]:
    """Make the deleted bytes unrecoverable from the store's files where the backend allows
    (:meth:`Store.purge`: SQLite rebuilds its file and empties its write-ahead log; PostgreSQL
    vacuums and re-analyses the touched tables)."""
    return store.purge(tables)
