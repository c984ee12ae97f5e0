"""Finding people: a search by name (fuzzy), e-mail, phone or profile id, guarded and audited
like every read of personal data, and the catalogue of sources and purposes.

A name search never reads every golden record: its candidates come from the name keys of the
records (``records.first_name_key`` / ``last_name_key``, the blocking keys identity resolution
indexes, see ``custos.identity.writer.MATCH_INDEXES``), each query word by its key and by its
first letters, at most
:data:`MAX_CANDIDATES` records; of their profiles, the :data:`MAX_SCORED` closest by those
record names are read (golden records, consent) and scored with rapidfuzz.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz
from sqlalchemy import Connection, and_, func, or_, select

from custos.consent.guard import Access
from custos.core.errors import InputError
from custos.identity import profiles
from custos.identity.ids import PREFIX
from custos.ingest import normalise as n
from custos.ingest.normalise import FieldError
from custos.ingest.pipeline import default_region
from custos.service.admin_reads import is_open
from custos.service.api_reads import profiles_by_phone
from custos.service.reads import GuardSession
from custos.store import golden as golden_store
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

#: What a search may look in, and the golden attributes each kind reads.
SEARCH_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("first_name", "last_name"),
    "email": ("email",),
    "phone": ("phone",),
    "id": (),
}
#: At most this many candidate records are looked at per name search, and of their profiles
#: the ones whose record names come closest are scored on their golden names.
MAX_CANDIDATES = 2000
MAX_SCORED = 200
#: Name matches scoring below this (0–1) are not answered.
MIN_SCORE = 0.6
#: A query word at least this long also finds names that start with its first letters (a
#: typo after them still matches).
PREFIX_LETTERS = 4


def search_kind(query: str) -> str:
    """What a query looks for: a profile id, an e-mail, a phone number or a name."""
    text = query.strip()
    if text.startswith(PREFIX):
        return "id"
    if "@" in text:
        return "email"
    if sum(c.isdigit() for c in text) >= 3 and not any(c.isalpha() for c in text):
        return "phone"
    return "name"


def search(
    app: Custos,
    query: str,
    purpose: str | None,
    *,
    actor: str,
    by: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """The profiles ``purpose`` may see that match ``query`` (by name, e-mail, phone or id;
    ``by`` names which, else the query's form decides), best first, a page at a time; returns
    (items, the next cursor or None). Each item has ``profile_id``, the ``name``, ``email`` and
    ``phone`` the purpose may see (None otherwise) and a ``score`` (0–1).

    A search by a field the purpose may not see is refused; a profile matches only by values
    the purpose may see. Audited as ``profile.search`` (the ids answered and field names, never
    the query)."""
    kind = by or search_kind(query)
    if kind not in SEARCH_FIELDS:
        raise InputError(f"cannot search by {kind!r}", hint=f"use {', '.join(SEARCH_FIELDS)}")
    text = query.strip()
    if not text:
        raise InputError("the search is empty", hint="give a name, e-mail, phone or profile id")
    start = _offset(cursor)
    with GuardSession(app, purpose, actor=actor, action="profile.search") as session:
        return _found(app, session, kind, text, start, limit)


def _found(
    app: Custos, session: GuardSession, kind: str, text: str, start: int, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The page of :func:`search`, recorded in ``session``."""
    searched = SEARCH_FIELDS[kind]
    if searched and all(session.rules.rule(a) == "no" for a in searched):
        # audited like a refused read of one profile: no subjects, no fields
        session.refuse(
            f"purpose {session.purpose} may not see {' or '.join(searched)}, so it cannot "
            f"search by {kind}",
            "search by a field the purpose may see, or under another purpose",
        )
    with app.store.read() as conn:
        found = _candidates(app, conn, kind, text)
        access = session.access(conn, sorted(found))
        golden = golden_store.read(conn, [pid for pid in found if access.allowed(pid)])
    scored: list[dict[str, Any]] = []
    for pid, exact in found.items():
        if not access.allowed(pid):
            continue
        shown = _shown(access, pid, golden.get(pid, []))
        score = exact if kind != "name" else _name_score(text, shown["name"])
        if kind in ("email", "phone") and not access.field_allowed(pid, kind):
            continue  # (a special category's rule: this person gave no explicit consent)
        if score is None or score < MIN_SCORE:
            continue
        scored.append({"profile_id": pid, **shown, "score": round(score, 3)})
    # Ties by the name shown, then the id: profile ids are keyed, so their order is no order.
    scored.sort(key=lambda item: (-item["score"], str(item["name"] or ""), item["profile_id"]))
    page = scored[start : start + limit]
    fields = {  # the attributes shown (a name is the first and last name)
        a
        for item in page
        for k in ("name", "email", "phone")
        if item[k] is not None
        for a in SEARCH_FIELDS[k]
    }
    for item in page:
        session.handed(item["profile_id"])
    session.fields.update(searched, fields)
    session.refused = len(access.refused)
    more = start + limit < len(scored)
    return page, str(start + limit) if more else None


def _offset(cursor: str | None) -> int:
    """The position a search cursor names (the ``next_cursor`` of the page before)."""
    if not cursor:
        return 0
    if not cursor.isdigit() or len(cursor) > 7:
        raise InputError("the cursor is not one this search gave", hint="pass next_cursor back")
    return int(cursor)


def _candidates(app: Custos, conn: Connection, kind: str, text: str) -> dict[str, float | None]:
    """Profile id → its score when the look-up decides it (id, phone, e-mail), else None."""
    if kind == "id":
        found = profiles.canonical_profile_id(conn, text)
        return {found: 1.0} if found else {}
    if kind == "phone":
        try:
            phone = n.phone(text, default_region(app.settings))
        except FieldError:
            phone = None
        if not phone:
            raise InputError("the phone given is not a valid phone number")
        return dict.fromkeys(profiles_by_phone(conn, phone, strict=False), 1.0)
    if kind == "email":
        return _by_email(conn, text)
    return dict.fromkeys(_by_name_key(conn, text))


def _by_email(conn: Connection, text: str) -> dict[str, float | None]:
    """Profiles with an e-mail starting with the query (a whole address: that address)."""
    try:
        start = n.email(text) or text.lower()
    except FieldError:
        start = text.lower()
    rows = conn.execute(
        select(t.profile_identifiers.c.profile_id, t.profile_identifiers.c.value)
        .where(
            t.profile_identifiers.c.kind == "email",
            t.profile_identifiers.c.value >= start,
            t.profile_identifiers.c.value < start + "\U0010ffff",
        )
        .limit(MAX_CANDIDATES)
    )
    out: dict[str, float | None] = {}
    for pid, value in rows:
        score = 1.0 if value == start else 0.6 + 0.4 * len(start) / max(len(value), 1)
        out[pid] = max(out.get(pid) or 0.0, score)
    return out


def _by_name_key(conn: Connection, text: str) -> list[str]:
    """Active profiles with a record whose first or last name key is one of the query's words,
    or starts with a long word's first letters (records matching on both names first, up to
    :data:`MAX_CANDIDATES` records): index look-ups, not a scan. Only the :data:`MAX_SCORED`
    whose record names come closest to the query are returned (their golden names decide the
    score)."""
    words = sorted({w for w in n.name_key(text).split() if len(w) >= 2})
    if not words:
        raise InputError("a name search needs a word of two letters or more")
    prefixes = sorted({w[:PREFIX_LETTERS] for w in words if len(w) >= PREFIX_LETTERS})

    def starts(column: Any) -> list[Any]:
        # keys are lower-case letters and spaces, so every key that starts with p lies between
        # p and p followed by z's, in byte order and in a linguistic collation (PostgreSQL's
        # en_US) alike, where a bound of a punctuation or control character would not hold
        return [and_(column >= p, column <= p + "z" * 40) for p in prefixes]

    first, last = t.records.c.first_name_key, t.records.c.last_name_key
    # first the records that match on both names (a common first name alone can fill the
    # budget), then either name by a whole word, then by the beginning of a word
    passes = [or_(first.in_(words), last.in_(words))]
    if len(words) > 1:
        passes.insert(
            0, and_(or_(first.in_(words), *starts(first)), or_(last.in_(words), *starts(last)))
        )
    if prefixes:
        passes.append(or_(*starts(first), *starts(last)))
    wanted = " ".join(words)
    best: dict[str, float] = {}
    rows = 0
    for where in passes:
        if rows >= MAX_CANDIDATES:
            break
        query = (
            select(
                t.profile_members.c.profile_id,
                t.records.c.first_name_key,
                t.records.c.last_name_key,
            )
            .select_from(
                t.records.join(t.profile_members, t.profile_members.c.raw_id == t.records.c.raw_id)
            )
            .where(where)
            .limit(MAX_CANDIDATES - rows)
        )
        for pid, first, last in conn.execute(query):
            rows += 1
            close = fuzz.token_set_ratio(wanted, f"{first or ''} {last or ''}")
            if close > best.get(pid, -1.0):
                best[pid] = close
    return sorted(best, key=lambda pid: (-best[pid], pid))[:MAX_SCORED]


def _shown(access: Access, pid: str, golden: list[golden_store.GoldenValue]) -> dict[str, Any]:
    """The name, e-mail and phone of a golden record that the purpose may see (else None)."""
    values = {
        g.attribute: g.value for g in golden if access.field_allowed(pid, g.attribute, g.source)
    }
    name = " ".join(v for v in (values.get("first_name"), values.get("last_name")) if v)
    return {"name": name or None, "email": values.get("email"), "phone": values.get("phone")}


def _name_score(query: str, name: str | None) -> float | None:
    """How well a visible name matches the query, 0–1 (None without a visible name): every
    query word found counts most, the whole name alike a little."""
    if not name:
        return None
    a, b = n.name_key(query), n.name_key(name)
    return (2 * fuzz.token_set_ratio(a, b) + fuzz.token_sort_ratio(a, b)) / 300


def sources(app: Custos) -> list[dict[str, Any]]:
    """Every source: its kind, rows stored (records, interactions, consent events), when it
    last ingested, and its open quarantine entries (rows not landed since)."""

    def per_source(table: Any, *columns: Any, where: Any = None) -> Any:
        query = select(table.c.source_id.label("source_id"), *columns)
        if where is not None:
            query = query.where(where)
        return query.group_by(table.c.source_id).subquery()

    raws = per_source(
        t.raw_records,
        func.count().label("rows"),
        func.max(t.raw_records.c.ingested_at).label("last"),
    )
    events = per_source(
        t.consent_events,
        func.count().label("rows"),
        func.max(t.consent_events.c.ingested_at).label("last"),
    )
    quarantined = per_source(t.quarantine, func.count().label("rows"), where=is_open())
    query = (
        select(
            t.sources.c.name,
            t.sources.c.kind,
            raws.c.rows,
            raws.c.last,
            events.c.rows.label("events"),
            events.c.last.label("events_last"),
            quarantined.c.rows.label("quarantined"),
        )
        .outerjoin(raws, raws.c.source_id == t.sources.c.id)
        .outerjoin(events, events.c.source_id == t.sources.c.id)
        .outerjoin(quarantined, quarantined.c.source_id == t.sources.c.id)
        .order_by(t.sources.c.name)
    )
    with app.store.read() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        last = max((w for w in (row.last, row.events_last) if w is not None), default=None)
        out.append(
            {
                "name": row.name,
                "kind": row.kind,
                "rows": int(row.rows or 0) + int(row.events or 0),
                "last_ingested_at": last.isoformat() if last else None,
                "quarantine_open": int(row.quarantined or 0),
            }
        )
    return out


def purposes(app: Custos) -> list[dict[str, Any]]:
    """The taxonomy's purposes: name, lawful basis, description and the data categories each
    may use."""
    return [
        {
            "name": p.name,
            "basis": p.basis.value,
            "description": p.description,
            "categories": sorted(p.categories),
        }
        for _, p in sorted(app.taxonomy.purposes.items())
    ]
