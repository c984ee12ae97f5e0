"""Guarded reads for the REST API: pages of profiles, a profile's interactions, look-ups by any
identifier. Like every read, each goes through the guard and is audited (ids and field names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from custos.consent import cache, ledger
from custos.consent.guard import Access
from custos.core.errors import InputError, NotFoundError
from custos.identity import profiles
from custos.ingest import normalise as n
from custos.ingest.normalise import FieldError
from custos.ingest.pipeline import default_region
from custos.service import insight
from custos.service.reads import GuardSession, guarded_profile, source_shown
from custos.store import audit
from custos.store import golden as golden_store
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

LOOKUP_KINDS = ("profile_id", "email", "phone", "customer_id", "social_handle")


def find_by(app: Custos, kind: str, value: str) -> str:
    """The active profile id for one identifier (``kind`` one of :data:`LOOKUP_KINDS`)."""
    candidates = _candidates(app, kind, value)
    if not candidates:
        raise NotFoundError(_unknown(kind))
    if len(candidates) > 1:
        raise _shared(kind, len(candidates))
    return candidates[0]


def lookup(
    app: Custos, kind: str, value: str, purpose: str | None, *, actor: str
) -> dict[str, Any]:
    """The profile holding one identifier, as ``purpose`` may see it (see :func:`visible`)."""
    found = visible(app, kind, value, purpose, actor=actor, action="profile.lookup")
    return guarded_profile(app, found, purpose, actor=actor)


def visible(
    app: Custos, kind: str, value: str, purpose: str | None, *, actor: str, action: str
) -> str:
    """The active profile holding one identifier, when ``purpose`` may see it.

    A person the purpose may not see answers exactly like an unknown one (``NotFoundError``, the
    same message) after the same work (the guard is asked, the failed read audited as
    ``action``), so a read tells a caller nothing about who is in the store beyond what its
    purpose may see; profile ids derive from record keys, so this holds for ids too. An
    identifier shared by several profiles counts only those the purpose may see."""
    candidates = _candidates(app, kind, value)
    # a check before the read that follows it, which audits: only a refusal is audited here
    with GuardSession(app, purpose, actor=actor, action=action, audit_empty=False) as session:
        with app.store.read() as conn:
            # an unknown identifier asks about an id no profile has: the same queries either way
            access = session.access(conn, candidates or [""])
        shown = [c for c in candidates if access.allowed(c)]
        if len(shown) > 1:
            raise _shared(kind, len(shown))
        if not shown:
            session.refuse(
                _unknown(kind), None, refused=len(candidates), fields=[kind], error=NotFoundError
            )
        return shown[0]


def _unknown(kind: str) -> str:
    """The message for an identifier no profile (the purpose may see) has."""
    return "no profile has that id" if kind == "profile_id" else f"no profile has that {kind}"


def _shared(kind: str, count: int) -> InputError:
    """The error for an identifier several profiles hold (a count, never their ids)."""
    hint = "look up by another identifier (e-mail, external id) that tells them apart"
    if kind == "phone":
        hint = "give the number with its country code (+44 …), or " + hint
    return InputError(f"that {kind} belongs to {count} profiles", hint=hint)


def _candidates(app: Custos, kind: str, value: str) -> list[str]:
    """The active profiles holding one identifier (any purpose; the caller guards)."""
    if kind not in LOOKUP_KINDS:
        raise InputError(f"cannot look up by {kind!r}", hint=f"use {', '.join(LOOKUP_KINDS)}")
    if kind == "profile_id":
        with app.store.read() as conn:
            found = profiles.canonical_profile_id(conn, value)
        return [found] if found else []
    try:
        if kind == "phone":
            normalised = n.phone(value, default_region(app.settings))
        else:
            normalised = {
                "email": n.email,
                "customer_id": n.customer_id,
                "social_handle": n.social_handle,
            }[kind](value)
    except FieldError:
        normalised = None
    if not normalised:
        raise InputError(f"the {kind} given is not a valid {kind}")
    with app.store.read() as conn:
        if kind == "phone":
            return profiles_by_phone(conn, normalised, strict=False)
        held = profiles.profiles_by_identifier(conn, kind, normalised)
        if not held and kind == "customer_id":
            # a customer id is compared exactly; a source whose map asked normalise: upper
            # stored it upper-cased (c-001 as C-001): that form when none holds it as given
            upper = n.customer_id_upper(value)
            if upper and upper != normalised:
                held = profiles.profiles_by_identifier(conn, kind, upper)
        return held


def profiles_by_phone(conn: Connection, phone: str, *, strict: bool = True) -> list[str]:
    """Active profiles holding this phone (in its stored form, see ``normalise.phone``); when
    none holds it as given, those holding it in another form with the same digits
    (``normalise.phone_digits_key``: ``+31598549048`` finds a profile whose only phone was
    stored as national digits, ``0598549048``, and the other way round). That comparison
    ignores the country, so when ``strict`` it answers only for exactly one profile: for more
    it raises (naming no value), and the caller asks with the country code or another
    identifier. Not ``strict``, the caller decides (the API counts only the profiles the
    purpose may see, so the error tells nothing of the others)."""
    found = profiles.profiles_by_identifier(conn, "phone", phone)
    if found:
        return found
    forms = n.phone_digits_forms(phone)
    identifiers = t.profile_identifiers
    found = sorted(
        set(
            conn.execute(
                select(identifiers.c.profile_id).where(
                    identifiers.c.kind == "phone", identifiers.c.value.in_(forms)
                )
            ).scalars()
        )
    )
    if strict and len(found) > 1:
        raise InputError(
            f"that phone, compared without its country, matches {len(found)} profiles",
            hint="give the number with its country code (+44 …), or another identifier",
        )
    return found


#: The most profiles one page of a listing examines, in id order. A filter that few profiles
#: match answers within this bound, with the cursor to go on from, however large the store.
LIST_SCAN = 10_000
#: How many matching profiles are read and guarded at a time while a page fills.
_LIST_BATCH = 500


def profile_page(
    app: Custos,
    purpose: str,
    *,
    actor: str,
    limit: int,
    after: str | None = None,
    where: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the profiles ``purpose`` may see, in id order after ``after``, optionally only
    those whose golden attributes equal ``where``; returns (items, the next cursor or None).

    Keyset paging on the profile id; the filter runs in the database on the golden documents.
    A page examines at most :data:`LIST_SCAN` profiles, so it may hold fewer than ``limit``
    items and still a next cursor. A profile matches only when the purpose may see it and the
    filtered fields of it (a filter is no oracle for hidden values)."""
    with GuardSession(app, purpose, actor=actor, action="profile.list") as session:
        return _page(app, session, limit, after, where or {})


def _page(
    app: Custos, session: GuardSession, limit: int, after: str | None, where: dict[str, str]
) -> tuple[list[dict[str, Any]], str | None]:
    """The page of :func:`profile_page`, each profile recorded in ``session`` as it is added."""
    with app.store.read() as conn:
        probe = session.access(conn, [])
    for attribute in where:
        tagging = [s for s, columns in probe.source_categories.items() if attribute in columns]
        if all(probe.rule(attribute, source) == "no" for source in [None, *tagging]):
            session.refuse(
                f"purpose {session.purpose} may not use the field {attribute!r}, so it cannot "
                "filter by it",
                "filter by a field the purpose may see",
                refused=0,
            )
    golden, profile_table, identifiers = t.profile_golden, t.profiles, t.profile_identifiers
    items: list[dict[str, Any]] = []
    cursor = after or ""
    matching = (
        select(profile_table.c.id, profile_table.c.updated_at, golden.c.document)
        .outerjoin(golden, golden.c.profile_id == profile_table.c.id)
        .where(profile_table.c.status == "active")
        .order_by(profile_table.c.id)
    )
    for name, value in where.items():
        matching = matching.where(golden_store.value_in_document(app.store, name) == value)
    window_end: str | None = None  # where a filtered scan stops (None: the end of the store)
    examined = 0  # profiles the guard looked at
    size = limit + 1  # the first batch: a page and a little, as most profiles are shown
    with app.store.read() as conn:
        if where:
            # the database evaluates the filter; this bounds how far it looks
            window = (
                select(profile_table.c.id)
                .where(profile_table.c.status == "active", profile_table.c.id > cursor)
                .order_by(profile_table.c.id)
                .limit(LIST_SCAN)
                .subquery()
            )
            last, count = conn.execute(select(func.max(window.c.id), func.count())).one()
            matching = matching.where(profile_table.c.id <= (last or ""))
            window_end = last if count >= LIST_SCAN else None
        while len(items) < limit:
            batch = conn.execute(matching.where(profile_table.c.id > cursor).limit(size)).all()
            if not batch:
                break
            examined += len(batch)
            ids = [r.id for r in batch]
            access = session.access(conn, ids)
            idents: dict[str, dict[str, list[str]]] = {}
            for pid, kind, value in conn.execute(
                select(identifiers.c.profile_id, identifiers.c.kind, identifiers.c.value)
                .where(identifiers.c.profile_id.in_(ids))
                .order_by(identifiers.c.kind, identifiers.c.value)
            ):
                idents.setdefault(pid, {}).setdefault(kind, []).append(value)
            for row in batch:
                cursor = row.id
                values = golden_store.values_with_source(row.document) if row.document else {}
                if not access.allowed(row.id) or not all(
                    access.field_allowed(row.id, a, values[a][1]) for a in where
                ):
                    session.refused += 1
                    continue
                attributes = {
                    name: value
                    for name, (value, source) in sorted(values.items())
                    if access.field_allowed(row.id, name, source)
                }
                shown = {
                    k: v
                    for k, v in idents.get(row.id, {}).items()
                    if access.field_allowed(row.id, k)
                }
                session.handed(row.id, [*attributes, *shown])
                items.append(
                    {
                        "profile_id": row.id,
                        **attributes,
                        "identifiers": shown,
                        "updated_at": row.updated_at.isoformat(),
                    }
                )
                if len(items) >= limit:
                    break
            if len(batch) < size:
                break  # the scan (the window, or the store) is done
            if examined >= LIST_SCAN and len(items) < limit:
                window_end = cursor  # the guard refused many: go on from here next page
                break
            size = min(size * 2, _LIST_BATCH)
    if len(items) >= limit:
        return items, cursor
    return items, window_end


def interactions(
    app: Custos,
    profile_id: str,
    purpose: str,
    *,
    actor: str,
    limit: int,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of a profile's interactions (newest first) with the fields ``purpose`` may see;
    returns (items, total). Refused when the purpose may not see the person."""
    with GuardSession(app, purpose, actor=actor, action="profile.interactions") as session:
        with app.store.read() as conn:
            access = session.access(conn, [profile_id])
            if access.refused:
                session.refuse_person()
            items, total = _interaction_page(
                conn, access, profile_id, limit, offset, session.fields
            )
        session.handed(profile_id)
        return items, total


def _interaction_page(
    conn: Connection,
    access: Access,
    profile_id: str,
    limit: int,
    offset: int,
    fields: set[str],
) -> tuple[list[dict[str, Any]], int]:
    """The page of :func:`interactions`; the names of the fields shown are added to ``fields``."""
    interaction = t.interactions
    base = (
        select(
            interaction.c.timestamp,
            interaction.c.channel,
            interaction.c.text,
            interaction.c.health_text,
            interaction.c.language,
            interaction.c.email,
            interaction.c.phone,
            interaction.c.customer_id,
            t.raw_records.c.record_id,
            t.sources.c.name.label("source"),
        )
        .join(t.profile_members, t.profile_members.c.raw_id == interaction.c.raw_id)
        .join(t.raw_records, t.raw_records.c.id == interaction.c.raw_id)
        .join(t.sources, t.sources.c.id == interaction.c.source_id)
        .where(t.profile_members.c.profile_id == profile_id)
    )
    hidden = [s for s in access.source_categories if not source_shown(access, profile_id, s)]
    if hidden:
        base = base.where(t.sources.c.name.not_in(hidden))
    total = int(conn.execute(select(func.count()).select_from(base.subquery())).scalar_one())
    rows = conn.execute(
        base.order_by(interaction.c.timestamp.desc(), interaction.c.raw_id.desc())
        .limit(limit)
        .offset(offset)
    ).mappings()
    items = []
    for row in rows:
        item: dict[str, Any] = {"source": row["source"], "record_id": row["record_id"]}
        for name in ("timestamp", "channel", "language", "email", "phone", "customer_id"):
            value = row[name]
            if value is None or not access.field_allowed(profile_id, name, row["source"]):
                continue
            item[name] = value.isoformat() if name == "timestamp" else value
            fields.add(name)
        read, text = access.text_shown(profile_id, row["text"], row["health_text"], row["source"])
        if text is not None:
            item["text"] = text
            fields.add(read)
        items.append(item)
    return items, total


def sentiment(app: Custos, profile_id: str, purpose: str, *, actor: str) -> dict[str, Any]:
    """A profile's mood and sentiment timeline, when ``purpose`` may see the person and their
    sentiment (see :func:`custos.service.insight.mood`: a refusal scores nothing and is
    audited)."""
    return insight.mood(app, profile_id, purpose=purpose, actor=actor)


def consent_overview(app: Custos, *, actor: str) -> list[dict[str, Any]]:
    """Per purpose of the taxonomy: its lawful basis and how many active profiles granted,
    denied or withdrew, or have no record (counts only; audited under consent_management)."""
    out: list[dict[str, Any]] = []
    with app.store.read() as conn:
        active = set(
            conn.execute(select(t.profiles.c.id).where(t.profiles.c.status == "active")).scalars()
        )
        for name, purpose in sorted(app.taxonomy.purposes.items()):
            decided = cache.cached_decisions(conn, name)
            if decided is not None:
                granted = set(decided[0]) & active
                objected = decided[1] & active
            else:
                found = ledger.bulk_states(conn, name, active)
                granted = {p for p, (s, _) in found.items() if s.granted}
                objected = {p for p, (s, _) in found.items() if s.objected}
            objected -= granted
            out.append(
                {
                    "purpose": name,
                    "basis": purpose.basis.value,
                    "description": purpose.description,
                    "granted": len(granted),
                    "denied_or_withdrawn": len(objected),
                    "no_record": len(active) - len(granted) - len(objected),
                    "profiles": len(active),
                }
            )
    audit.record(
        app.store,
        actor,
        "consent.overview",
        purpose="consent_management",
        detail={"purposes": len(out)},
    )
    return out
