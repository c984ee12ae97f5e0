"""The guard: the one place that decides which profiles and fields a purpose may see.

Every read of personal data — CLI, Python API, exports, the REST API, insight — asks the guard
with a purpose, and shows only what it allows:

* a purpose whose lawful basis is consent sees only persons whose current state is ``granted``
  (no record → no access: fail closed);
* a purpose on legitimate interest sees everyone who has not objected (denied or withdrawn);
  contract, legal obligation, vital interest and public task see everyone;
* fields of a category the purpose may not use are removed; special categories (GDPR Art. 9:
  health, genetic, …) additionally need explicit consent of the person for that purpose;
* a person whose processing is restricted (GDPR Art. 18, table ``restrictions``) is refused to
  every purpose except those on legal obligation;
* where identity is uncertain, consent is conservative: a denial, withdrawal or restriction of
  a *possible match* (a profile scored close to this one but not linked) restricts this person
  too; a grant never carries over;
* no purpose, or an unknown one → refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, select

from custos.consent import cache, ledger
from custos.consent.ledger import ConsentState
from custos.consent.taxonomy import LawfulBasis, Purpose, Taxonomy
from custos.store import tables as t
from custos.store.redirects import active_ids


def permits(purpose: Purpose, state: ConsentState) -> bool:
    """May ``purpose`` read anything of a person in ``state``?"""
    if purpose.basis is LawfulBasis.CONSENT:
        return state.granted
    if purpose.basis is LawfulBasis.LEGITIMATE_INTEREST:
        return not state.objected
    return True


@dataclass
class Access:
    """The guard's answer for one purpose: the profiles allowed, and how to filter their fields."""

    purpose: Purpose
    taxonomy: Taxonomy
    #: person → explicit?, for everyone whose state is granted
    granted: dict[str, bool] = field(default_factory=dict)
    #: persons who denied or withdrew
    objected: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    source_categories: dict[str, dict[str, str]] = field(default_factory=dict)
    rules: dict[tuple[str, str | None], str] = field(default_factory=dict, repr=False)
    #: persons whose processing is restricted (refused unless the basis is legal obligation)
    restricted: set[str] = field(default_factory=set)

    @classmethod
    def of_states(
        cls,
        purpose: Purpose,
        taxonomy: Taxonomy,
        states: Mapping[str, ConsentState],
        source_categories: dict[str, dict[str, str]],
    ) -> Access:
        """The access that follows from per-person states."""
        granted = {pid: s.explicit for pid, s in states.items() if s.granted}
        objected = {pid for pid, s in states.items() if s.objected}
        return cls(purpose, taxonomy, granted, objected, set(), source_categories)

    def restrict(self, profile_ids: set[str]) -> None:
        """Refuse these persons: they count as neither granted nor unobjected, so every read
        path (one profile, exports, bulk reads) leaves them out."""
        self.restricted |= profile_ids
        for pid in profile_ids:
            self.granted.pop(pid, None)
        self.objected |= profile_ids

    def allowed(self, profile_id: str) -> bool:
        """May the purpose see this profile at all?"""
        if profile_id in self.restricted:
            return False
        basis = self.purpose.basis
        if basis is LawfulBasis.CONSENT:
            return profile_id in self.granted
        if basis is LawfulBasis.LEGITIMATE_INTEREST:
            return profile_id not in self.objected
        return True

    def category(self, attribute: str, source: str | None = None) -> str:
        """The data category of a canonical field, or of an extra attribute of ``source``."""
        tagged = self.source_categories.get(source or "", {})
        return self.taxonomy.category(attribute, tagged)

    def rule(self, attribute: str, source: str | None = None) -> str:
        """``yes``, ``no`` or ``explicit`` (special category: only with explicit consent) for an
        attribute of a source, decided once and remembered."""
        key = (attribute, source)
        rule = self.rules.get(key)
        if rule is None:
            category = self.category(attribute, source)
            if category not in self.purpose.categories:
                rule = "no"
            else:
                rule = "explicit" if category in self.taxonomy.special else "yes"
            self.rules[key] = rule
        return rule

    def field_allowed(self, profile_id: str, attribute: str, source: str | None = None) -> bool:
        """May the purpose see this attribute of this (allowed) profile?"""
        rule = self.rules.get((attribute, source)) or self.rule(attribute, source)
        if rule == "explicit":
            return self.granted.get(profile_id, False)
        return rule == "yes"

    def text_shown(
        self, profile_id: str, text: str | None, health_text: str | None, source: str | None
    ) -> tuple[str, str | None]:
        """Which text of an interaction the purpose sees, as ``(field, value)``: the whole text
        of a note that names a health matter (``health_text``) where it may see both free text
        and health data (explicit consent), else ``text`` (health terms replaced) where it may
        see free text, else ``("text", None)``."""
        if not self.field_allowed(profile_id, "text", source):
            return "text", None
        if health_text is not None and self.field_allowed(profile_id, "health_text", source):
            return "health_text", health_text
        return "text", text


class Guard:
    """Answers, for a purpose, which profiles and which fields may be read."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy

    def field_rules(self, purpose: str | None) -> Access:
        """The purpose's rules for fields (``rule``, ``category``) without deciding any person:
        what a caller needs to know which attributes it may use, at no cost in consent reads."""
        return Access(self.taxonomy.purpose(purpose), self.taxonomy)

    def access(
        self,
        conn: Connection,
        purpose: str | None,
        profile_ids: Sequence[str] | None = None,
        *,
        as_of: datetime | None = None,
    ) -> Access:
        """The access ``purpose`` has to ``profile_ids`` (all profiles when None)."""
        chosen = self.taxonomy.purpose(purpose)
        categories = source_categories(conn)
        decided = None
        if as_of is None and (profile_ids is None or len(profile_ids) > 500):
            decided = cache.cached_decisions(
                conn,
                chosen.name,
                all_grants=chosen.basis is LawfulBasis.CONSENT,
                objections=chosen.basis is LawfulBasis.LEGITIMATE_INTEREST,
            )
        if decided is not None:
            granted, objected = decided
            answer = Access(chosen, self.taxonomy, granted, objected, set(), categories)
        else:
            states = ledger.states(conn, chosen.name, profile_ids, as_of)
            answer = Access.of_states(chosen, self.taxonomy, states, categories)
        if chosen.basis is not LawfulBasis.LEGAL_OBLIGATION:
            restricted = restricted_profiles(conn)
            if restricted:
                answer.restrict(restricted)
        if profile_ids is not None:
            answer.refused = {pid for pid in profile_ids if not answer.allowed(pid)}
        return answer


def restricted_profiles(conn: Connection) -> set[str]:
    """The active profiles whose processing is restricted: a restriction follows merges, and
    where identity is uncertain it reaches the profile's possible matches too."""
    restricted = set(conn.execute(select(t.restrictions.c.profile_id)).scalars())
    out = {active or pid for pid, active in active_ids(conn, restricted).items()}
    if out:
        for partners in ledger.possible_partners(conn, sorted(out)).values():
            out |= partners
    return out


def source_categories(conn: Connection) -> dict[str, dict[str, str]]:
    """Source name → {extra column → category}, from the map files' ``categories``."""
    out: dict[str, dict[str, str]] = {}
    query = select(t.sources.c.name, t.source_columns.c.column, t.source_columns.c.category).join(
        t.sources, t.sources.c.id == t.source_columns.c.source_id
    )
    for source, column, category in conn.execute(query):
        out.setdefault(source, {})[column] = category
    return out


def filter_attributes(
    access: Access, profile_id: str, attributes: Iterable[Mapping[str, object]]
) -> list[dict[str, object]]:
    """The golden attributes (dicts with ``attribute`` and ``source``) the purpose may see."""
    return [
        dict(a)
        for a in attributes
        if access.field_allowed(profile_id, str(a["attribute"]), str(a.get("source") or ""))
    ]
