"""The identity graph: union–find over records, joined by identifier edges.

Nodes (records and interactions), the edges between them (exact identifiers:
:mod:`custos.identity.exact`; scored pairs: :mod:`custos.identity.matcher`) and the facts by
which two sets of records are clearly two persons, for the clustering of
:mod:`custos.identity.plan`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from rapidfuzz.distance import DamerauLevenshtein, Indel

from custos.core.phones import digits_key, line_kind
from custos.identity.names import near, relation


@dataclass(frozen=True, slots=True)
class Node:
    """One record or interaction as identity resolution sees it."""

    raw_id: int
    is_record: bool
    first_key: str | None
    last_key: str | None
    #: ISO birth date; an ambiguous one (``03/04/1982``) as both readings, space-separated
    date_of_birth: str | None
    identifiers: tuple[tuple[str, str], ...]  # (type, normalised value)
    generation: str | None = None  # "jr", "sr", "ii" … written with the name
    address: str | None = None  # street key and postcode (or city): where the person lives
    #: the rows whose record ids its text quotes (a call note naming the order it is about)
    refers: tuple[int, ...] = ()
    #: "f" or "m" when the name is a form of address and a surname ("Frau Ackermann")
    salutation: str | None = None
    #: What this node says about who the person is (None when it says nothing): derived from
    #: the fields above, once (it is asked for millions of times).
    facts: Facts | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        said = self.first_key or self.date_of_birth or self.generation
        facts = (self.first_key, self.last_key, self.date_of_birth, self.generation)
        object.__setattr__(self, "facts", facts if said else None)

    @property
    def contacts(self) -> frozenset[str]:
        """How to reach the person of this node: the user names of its e-mails and the digits
        of its (non-landline) phones."""
        return _contacts_of(self.identifiers)


#: The pseudo-identifier type of an address, looked at only to learn which addresses several
#: persons share (households).
ADDRESS = "address"


@lru_cache(maxsize=1 << 16)
def _contacts_of(identifiers: tuple[tuple[str, str], ...]) -> frozenset[str]:
    return frozenset(
        "e:" + value.split("@", 1)[0] if kind == "email" else "p:" + digits_key(value)
        for kind, value in identifiers
        if kind == "email" or (kind == "phone" and line_kind(value) != "fixed")
    )


#: Person-level facts of a node: (first-name key, surname key, ISO birth date, generation).
Facts = tuple[str | None, str | None, str | None, str | None]


#: The person-level facts a conflict can be about, and how a reason names them (no values).
REASONS = {
    "first_name": "first names differ",
    "dob": "birth dates differ",
    "generation": "generations differ (Jr/Sr)",
    "mobiles": "one household, each with a mobile of its own",
    "salutation": "the form of address states the other gender",
}


def conflicts(
    a: Facts, b: Facts, *, household: bool = False, distinct: bool = False
) -> tuple[str, ...]:
    """The facts on which two nodes show they are two persons (see :func:`conflict`).

    First names that are not variants of each other conflict when they are far apart (Max and
    Moritz); a *near* name (Paul and Paula, Linda and Lina: a typo's distance, a prefix) only
    ``household`` (where records of two persons share the address or a contact, a near name is
    as likely the other person's as a typo; elsewhere it is a typo far more often) or when the
    two records reach ``distinct`` persons (each its own e-mail or mobile, none in common:
    twins Patrick and Patricia, not one person with a typo in one record)."""
    first_a, last_a, dob_a, gen_a = a
    first_b, last_b, dob_b, gen_b = b
    out: tuple[str, ...] = ()
    if (
        first_a
        and first_b
        and _names_conflict((first_a, last_a), (first_b, last_b))
        and (household or distinct or not near(first_a, first_b))
    ):
        out += ("first_name",)
    if dob_a and dob_b and not same_birth_date(dob_a, dob_b):
        out += ("dob",)
    if gen_a and gen_b and gen_a != gen_b:
        out += ("generation",)
    return out


def outweighed(found: tuple[str, ...], identifiers: int, others: int) -> bool:
    """The one rule by which agreement outweighs a conflict (both stages apply it, each counting
    what it sees: exact linking the identifiers two records share, the probabilistic stage the
    comparisons that agree): a conflict in one fact only, against at least two other agreeing
    person-level facts, at least one of them an identifier of the person (an e-mail, a mobile,
    a customer number). The records of one customer number and birth date are one person,
    whatever the first names; one identifier alone outweighs nothing."""
    return len(found) == 1 and identifiers >= 1 and identifiers + others >= 2


def conflict(a: Facts, b: Facts, *, household: bool = False, distinct: bool = False) -> str | None:
    """Why two nodes are clearly two persons, or None when they could be one.

    A clear conflict refuses a link at any weight (a false merge is a privacy incident): first
    names that are not variants of each other (nicknames, initials, typos and middle names are
    variants; Max and Moritz, Paul and Paula are not), birth dates that differ in two of year,
    month and day, or different generations (Jr and Sr). The reason names no values.
    """
    found = conflicts(a, b, household=household, distinct=distinct)
    return REASONS[found[0]] if found else None


def _swapped(first_a: str, last_a: str | None, first_b: str, last_b: str | None) -> bool:
    """Is one name the other with first and last name swapped (typos allowed)?"""
    return bool(
        last_a
        and last_b
        and relation(first_a, last_b) != "conflict"
        and relation(last_a, first_b) != "conflict"
    )


class Scores(Protocol):
    """Where the per-field weights of scored pairs are kept (see ``matcher``)."""

    def detail(self, row: int) -> str:
        """The JSON object of one pair's match weight per compared field."""
        ...


@dataclass(frozen=True, slots=True)
class Edge:
    """Evidence that two nodes are one person: the rule and, for scores, its weight."""

    left: int
    right: int
    rule: str
    weight: float | None = None
    #: Probabilistic links: the comparisons that agreed, as bits (matcher.EVIDENCE_BITS).
    evidence: int = 0
    #: Probabilistic links: where their per-field weights are, and which row is theirs (the
    #: JSON of a million links is made only for the few that are kept: see :attr:`detail`).
    scores: Scores | None = None
    row: int = -1

    @property
    def detail(self) -> str | None:
        """JSON: the match weight per compared field of a probabilistic link, else None."""
        return None if self.scores is None else self.scores.detail(self.row)


@dataclass
class IgnoredIdentifier:
    """An identifier left out of linking by a guard rail (reported without its value)."""

    kind: str
    records: int
    persons: int
    reason: str


@dataclass
class ExactResult:
    """Edges from exact identifiers and what the guard rails withheld."""

    edges: list[Edge] = field(default_factory=list)
    ignored: list[IgnoredIdentifier] = field(default_factory=list)
    withheld_links: int = 0
    #: Identifiers (type, value) carried by records of two or more persons, or ignored for
    #: being on too many: a family's landline, a couple's e-mail. They describe a household,
    #: not a person, and the matcher counts them as household evidence.
    shared: set[tuple[str, str]] = field(default_factory=set)
    #: Phones that are landlines (:func:`~custos.core.phones.line_kind`): they ring in a
    #: household, so the matcher counts them as household evidence, whoever else carries them
    #: (exact linking still joins a landline's records of one person).
    landlines: set[tuple[str, str]] = field(default_factory=set)
    #: Addresses (:attr:`Node.address`) of records of two or more persons: households.
    households: set[str] = field(default_factory=set)
    #: The households each record lives in (raw id → the shared identifiers and household
    #: addresses it carries), for the records that live in one.
    homes: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    #: Records that do not say who they are (no first name, or only its initial) in a household
    #: where two or more persons could be them ("S. Belpere" where Senna and Sienna live):
    #: they link to nobody on names and household facts alone.
    undecided: set[int] = field(default_factory=set)
    #: Records without a Jr or Sr whose address holds a record of their first name with one
    #: (a plain "Stefan Lübs" beside "Stefan Lübs junior"): either person, so none of their
    #: links on names and household facts alone is made.
    either: set[int] = field(default_factory=set)
    #: Identifiers left out by the guard rails (a shop's placeholder e-mail, a call centre's own
    #: number): evidence of nothing, for the matcher too.
    noise: set[tuple[str, str]] = field(default_factory=set)


class UnionFind:
    """Disjoint sets over integer keys, with path halving and union by size."""

    def __init__(self, keys: Iterable[int]) -> None:
        self.parent: dict[int, int] = {k: k for k in keys}
        self.size: dict[int, int] = dict.fromkeys(self.parent, 1)

    def find(self, key: int) -> int:
        """The representative of ``key``'s set."""
        parent = self.parent
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(self, a: int, b: int) -> bool:
        """Join the sets of ``a`` and ``b``; False when they were one already."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True

    def groups(self) -> list[list[int]]:
        """All sets, each sorted, ordered by their smallest key."""
        # Visiting the keys in order fills each set in order, and a set first appears at its
        # smallest key: one sort of the keys instead of one per set and one of the sets.
        out: dict[int, list[int]] = {}
        find = self.find
        for key in sorted(self.parent):
            root = find(key)
            group = out.get(root)
            if group is None:
                out[root] = [key]
            else:
                group.append(key)
        return list(out.values())


class CoherentUnionFind(UnionFind):
    """Union–find for links between records: it refuses to join two sets holding a pair marked
    *apart* (an unmerge), and two sets that are clearly two persons, whatever the weight of the
    link: no chain of links can put two people in one cluster. A forced merge (``check=False``)
    overrides the facts.

    Two sets are two persons when, for one kind of fact (first name, birth date, generation),
    both sets state some and *none* of one set's could be the other's (see :func:`conflicts`):
    every first name of one is far from every first name of the other, say. A person's records
    disagree among themselves (a typo here, a shortened name there) without making two persons
    of one; twins (Max and Moritz, one birth date) share no first name that could be the
    other's. Where two persons are likely, the bar is lower: two sets each with its own e-mail
    or mobile and none in common are two when no first name of one could be the other's, near
    names included (Patrick and Patricia); records of a household when any first name of one
    cannot be the other's. Initials and two-letter names say too little to count here. Inside
    a household, two sets that each reach their person by a mobile of their own (a number whose
    plan says mobile), none in common, are two whatever their names and whatever else they
    share: a father and a son of one name, the son's records without a birth date; the son's
    order under his father's e-mail.
    """

    def __init__(
        self,
        keys: Iterable[int],
        facts: dict[int, Facts],
        contacts: Mapping[int, frozenset[str]] | None = None,
        genders: Mapping[int, str] | None = None,
    ) -> None:
        super().__init__(keys)
        self.blocked: dict[int, set[int]] = {}  # root → keys its set may never join
        self.refused = 0
        self.facts = facts
        #: The gender each key's form of address states (Mr, Frau), for the keys that have one.
        self.genders = genders or {}
        # (not ``contacts or {}``: a lazy mapping is empty until its first look-up)
        self.contacts = contacts
        # What the members of each joined set state, by root; a key never joined has only its
        # own facts (kept in ``facts``: nothing per key for the million that stay alone).
        self.known: dict[int, _Stated] = {}
        self.conflicts = 0
        #: Why the last refused union was refused (None after a union that went through).
        self.why: str | None = None

    def reset(self, keys: set[int]) -> None:
        """Make each of ``keys`` a set of its own again (``keys`` must be whole sets: the
        members of some sets, no more and no fewer); their decisions to keep apart go too, and
        are declared again by the caller."""
        parent, size, known, blocked = self.parent, self.size, self.known, self.blocked
        for key in keys:
            parent[key] = key
            size[key] = 1
            known.pop(key, None)
            blocked.pop(key, None)

    def keep_apart(self, a: int, b: int) -> None:
        """Never put ``a`` and ``b`` in one set (declare before any union)."""
        if a in self.parent and b in self.parent:
            self.blocked.setdefault(self.find(a), set()).add(b)
            self.blocked.setdefault(self.find(b), set()).add(a)

    def _known(self, root: int) -> _Stated | None:
        joined = self.known.get(root)
        if joined is not None:
            return joined
        if self.size[root] != 1:
            return None
        return _stated(root, self.facts.get(root), self.genders.get(root))

    def members(self, root: int) -> list[int]:
        """The keys of ``root``'s set (a set's members are kept with what they state)."""
        stated = self._known(root)
        if stated is not None:
            return list(stated[4])
        return [key for key in self.parent if self.find(key) == root]  # (after a forced merge)

    def conflict(self, a: int, b: int, skip: tuple[str, ...] = ()) -> str | None:
        """Why the sets of ``a`` and ``b`` are two persons, or None."""
        mine, theirs = self._known(self.find(a)), self._known(self.find(b))
        return self._two_persons(mine, theirs, skip) if mine and theirs else None

    def _reach(self, members: tuple[int, ...]) -> frozenset[str]:
        contacts = self.contacts
        if contacts is None:
            return frozenset()
        return frozenset().union(*(contacts[m] for m in members))

    def _two_persons(
        self, mine: _Stated, theirs: _Stated, skip: tuple[str, ...], household: bool = False
    ) -> str | None:
        """Why two sets are two persons (see the class), or None."""
        if mine[:4] == theirs[:4]:
            return None  # they say the same (most links join records of one person)
        # Records of a household, or two sets each with its own contacts and none in common,
        # are likely two persons: then any first name that cannot be the other's is one too
        # many (a nickname both names share, Andi of Andrea and of Andreas, bridges nothing).
        if mine[0] and theirs[0] and "first_name" not in skip:
            pairs = [(x, y) for x in mine[0] for y in theirs[0]]
            if household:
                if any(_names_conflict(x, y) for x, y in pairs):
                    return REASONS["first_name"]
            elif all(_names_conflict(x, y) for x, y in pairs):
                if all(not near(x[0], y[0]) for x, y in pairs):
                    return REASONS["first_name"]
                # near names only: two persons if each reaches its own way (looked at only
                # now: rare, and a set's contacts are costly to keep)
                ours, yours = self._reach(mine[4]), self._reach(theirs[4])
                if distinct(ours, yours):
                    return REASONS["first_name"]
        if (
            mine[1]
            and theirs[1]
            and "dob" not in skip
            and not any(same_birth_date(x, y) for x in mine[1] for y in theirs[1])
        ):
            return REASONS["dob"]
        if mine[2] and theirs[2] and "generation" not in skip and not set(mine[2]) & set(theirs[2]):
            return REASONS["generation"]
        if mine[3] and theirs[3] and not set(mine[3]) & set(theirs[3]):
            return REASONS["salutation"]  # "Mr Julian Horn" and "Ms Julia Horn", typos aside
        if (
            household
            and "first_name" not in skip
            and _own_mobiles(self._reach(mine[4]), self._reach(theirs[4]))
        ):
            return REASONS["mobiles"]
        return None

    def union(
        self,
        a: int,
        b: int,
        *,
        check: bool = True,
        skip: tuple[str, ...] = (),
        household: bool = False,
    ) -> bool:
        """Join the sets of ``a`` and ``b`` unless kept apart or (with ``check``) two persons;
        ``skip`` names facts whose conflict this link's identifiers outweigh (see
        :mod:`custos.identity.plan`), ``household`` says the link joins records of a household
        (near first names count as two, see :func:`conflicts`); a forced merge passes
        ``check=False``. The weight of a link does not matter: a conflict refuses it at any
        weight."""
        parent = self.parent
        # (a million links: the usual endpoint is a record of its own, found without a call)
        ra = a if parent[a] == a else self.find(a)
        rb = b if parent[b] == b else self.find(b)
        self.why = None
        if ra == rb:
            return False
        known, size = self.known, self.size
        mine = known.get(ra)
        if mine is None and size[ra] == 1:
            mine = _stated(ra, self.facts.get(ra), self.genders.get(ra))
        theirs = known.get(rb)
        if theirs is None and size[rb] == 1:
            theirs = _stated(rb, self.facts.get(rb), self.genders.get(rb))
        if (
            check
            and mine is not None
            and theirs is not None
            and mine[:4] != theirs[:4]
            and (why := self._two_persons(mine, theirs, skip, household)) is not None
        ):
            self.conflicts += 1
            self.why = why
            return False
        blocked = self.blocked
        if blocked:
            find = self.find
            for root, other in ((ra, rb), (rb, ra)):
                if any(find(x) == other for x in blocked.get(root, ())):
                    self.refused += 1
                    self.why = "kept apart by a decision"
                    return False
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        if blocked:
            kept_apart = blocked.pop(ra, set()) | blocked.pop(rb, set())
            if kept_apart:
                blocked[ra] = kept_apart
        known.pop(rb, None)
        if mine is not None and theirs is not None:
            known[ra] = _joined(mine, theirs)
        return True


#: What the members of a set state: first names (with the surname, for swapped names), birth
#: dates, generations and the genders of forms of address, each distinct one once, and the
#: members (whose contacts are looked up when needed).
_Stated = tuple[
    tuple[tuple[str, str | None], ...],
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
    tuple[int, ...],
]


def _stated(key: int, facts: Facts | None, gender: str | None = None) -> _Stated:
    first, last, dob, generation = facts or (None, None, None, None)
    names = ((first, last),) if first and len(first) > 2 else ()
    return (
        names,
        (dob,) if dob else (),
        (generation,) if generation else (),
        (gender,) if gender else (),
        (key,),
    )


def _joined(a: _Stated, b: _Stated) -> _Stated:
    return (
        a[0] if a[0] == b[0] else a[0] + tuple(x for x in b[0] if x not in a[0]),
        a[1] if a[1] == b[1] else a[1] + tuple(x for x in b[1] if x not in a[1]),
        a[2] if a[2] == b[2] else a[2] + tuple(x for x in b[2] if x not in a[2]),
        a[3] if a[3] == b[3] else a[3] + tuple(x for x in b[3] if x not in a[3]),
        a[4] + b[4],
    )


def _names_conflict(x: tuple[str, str | None], y: tuple[str, str | None]) -> bool:
    first_a, last_a = x
    first_b, last_b = y
    return (
        first_a != first_b
        and relation(first_a, first_b) == "conflict"
        and not _swapped(first_a, last_a, first_b, last_b)
    )


def same_birth_date(a: str, b: str) -> bool:
    """Could two ISO birth dates be one person's?

    Yes when equal, when day and month are swapped, or when only one of year, month and day
    differs by a slip of the hand: a day or month with one digit wrong or two swapped; a year
    with one digit wrong or two swapped (1964 typed 1946, 1994; another century, 1864), or one
    dropped and another added so that the others shift (1941). No when two parts differ, or one
    by more: 1965 and 2007 are a mother and a daughter, 1953 and 1989 a father and his son of
    one name and birthday, the 16th and the 4th two namesakes, not a typo.
    """
    if a == b:
        return True
    if " " in a or " " in b:  # an ambiguous date: either of its readings
        return any(same_birth_date(x, y) for x in a.split() for y in b.split())
    if a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]:
        return True
    year, month, day = a[:4] != b[:4], a[5:7] != b[5:7], a[8:] != b[8:]
    if year + month + day != 1:
        return False
    if year:
        x, y = a[:4], b[:4]
        return (
            DamerauLevenshtein.distance(x, y, score_cutoff=1) <= 1
            or Indel.distance(x, y, score_cutoff=2) <= 2
        )
    x, y = (a[5:7], b[5:7]) if month else (a[8:], b[8:])
    return DamerauLevenshtein.distance(x, y, score_cutoff=1) <= 1


def _own_mobiles(mine: frozenset[str], theirs: frozenset[str]) -> bool:
    """Do two sets of one household reach a person each by a mobile of their own, none in
    common (nor one digit apart): José Vega with his mobile and e-mail, José Vega his son with
    his (the same name, one address, no birth date to tell them apart); the son's shop order
    under his father's e-mail, with his own mobile? A shared e-mail does not make one person of
    them: children order under a parent's."""
    # (as phone contacts, so that a number one digit from the other counts as mistyped)
    mobiles = frozenset("p:" + c[2:] for c in mine if c.startswith("m:"))
    others = frozenset("p:" + c[2:] for c in theirs if c.startswith("m:"))
    return bool(mobiles and others) and distinct(mobiles, others)


def distinct(mine: frozenset[str], theirs: frozenset[str]) -> bool:
    """Do two sets of contacts (:attr:`Node.contacts`) reach two persons: both say how to reach
    someone, and no contact of one could be the other's (a phone number one digit apart is one
    number mistyped; e-mail user names must differ outright, since twins' are often built from
    their near names: karl.lindau, karla.lindau)?"""
    if not mine or not theirs or mine & theirs:
        return False
    for x in mine:
        if x.startswith("p:"):
            for y in theirs:
                if y.startswith("p:") and DamerauLevenshtein.distance(x, y, score_cutoff=1) <= 1:
                    return False
    return True
