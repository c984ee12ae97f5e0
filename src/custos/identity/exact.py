"""Exact linking: records that share a normalised strong identifier (an e-mail, a phone, a
customer number, a handle) are one person's, within guard rails: an identifier that persons of
a household share links each person's own records only, and one on too many records or persons
is ignored. It also learns which identifiers and addresses are a household's (several persons
carry them), which the matcher then counts as household evidence.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import replace

from rapidfuzz.distance import DamerauLevenshtein

from custos.core.phones import digits_key, line_kind
from custos.identity.graph import (
    ADDRESS,
    Edge,
    ExactResult,
    IgnoredIdentifier,
    Node,
    conflicts,
    distinct,
    outweighed,
    same_birth_date,
)
from custos.identity.names import gender, genders_differ, known, variants


def compatible(
    a: Node,
    b: Node,
    ident: tuple[str, str] | None = None,
    *,
    household: bool = False,
    reach: bool = True,
    place: bool = False,
) -> bool:
    """False when two nodes show they are different people (see :func:`conflict`): clear
    conflicts, or near first names where each node has its own contacts, none in common.
    ``ident`` is the identifier whose carriers are being grouped: it is what is in question,
    so it counts neither as a contact in common nor as evidence; ``household`` when it rings in
    a household (a landline: near first names count as two persons, see :func:`conflicts`);
    ``place`` when it may (a number of unknown kind whose carriers live in one place: near
    first names of two genders count as two persons); without ``reach``, contacts are not
    looked at (only clear conflicts count)."""
    fa, fb = a.facts, b.facts
    if fa is None or fb is None or fa == fb:
        return True
    if (_vague(a) or _vague(b)) and fa[1] and fb[1] and not _near_surname(fa[1], fb[1]):
        return False  # "A. Cornelisse" is not Adrianus van den Brand: an initial says too little
    if (a.salutation or b.salutation) and other_gender(a.salutation, fa[0], b.salutation, fb[0]):
        return False  # "Mrs R. West" is not Robert West
    found = conflicts(fa, fb, household=household)
    if not found and fa[0] and fb[0] and fa[0] != fb[0] and not household:
        # near first names: two persons when each reaches its own way (looked at only now:
        # most records of one person say the same), or of two genders in one place
        if place and genders_differ(fa[0], fb[0]):
            found = conflicts(fa, fb, distinct=True)
        elif reach:
            common = _contact_of(ident) if ident else frozenset()
            ca, cb = a.contacts - common, b.contacts - common
            if distinct(ca, cb):
                found = conflicts(fa, fb, distinct=True)
    return not found or _outweighed(found, a, b, ident)


def other_gender(
    said: str | None, first: str | None, said_too: str | None, first_too: str | None
) -> bool:
    """Do two records, each with its form of address's gender (``said``) and first-name key,
    state two genders: two forms of address ("Mrs Sanford", "Mr Sanford"; "Mr Julian Horn",
    "Ms Julia Horn"), or a form of address of a record known by no more than an initial
    against a gendered first name of the other ("Mrs R. West" against Robert; a record's own
    first name says who it is better than its form of address, and a typo may make another
    name: "Nicoe" for Nicole reads Nico)?"""
    if said and said_too and said != said_too:
        return True
    for gender_said, own, name in ((said, first, first_too), (said_too, first_too, first)):
        if gender_said and name and len(name) > 1 and not (own and len(own) > 1):
            found = gender(name)
            if found is not None and found != gender_said:
                return True
    return False


def _outweighed(
    found: tuple[str, ...], a: Node, b: Node, ident: tuple[str, str] | None = None
) -> bool:
    """Do the facts two nodes share outweigh their conflict (:func:`~custos.identity.graph.
    outweighed`), counting the identifiers of the person they share other than ``ident`` (the
    one whose carriers are being grouped)? A landline is no identifier of a person: twins
    Reinhild and Roderich share theirs and a birth date, and are two; nor is a number that may
    be one (North American numbers do not say whether they ring in a pocket or a home)."""
    if len(found) != 1:
        return False
    # (not ``ident`` in another form: a landline as dialled and in E.164 is one number)
    same = _contact_of(ident) if ident else frozenset()
    mine = {
        i
        for i in a.identifiers
        if i[0] in ("email", "customer_id", "phone")
        and i != ident
        and not _contact_of(i) & same
        # a landline is the home's, and so may be a number whose plan does not say mobile (a
        # North American one): a father and a son of one name share it
        and not (i[0] == "phone" and line_kind(i[1]) != "mobile")
    }
    shared = len(mine.intersection(b.identifiers))
    if not shared:
        return False
    others = 0
    if found[0] != "dob" and a.date_of_birth and a.date_of_birth == b.date_of_birth:
        others += 1
    if found[0] != "first_name" and a.first_key and a.first_key == b.first_key:
        others += 1
    return outweighed(found, shared, others)


def _contact_of(ident: tuple[str, str]) -> frozenset[str]:
    """The contact key (see :attr:`Node.contacts`) of an identifier, if it is one."""
    kind, value = ident
    if kind == "email":
        return frozenset(("e:" + value.split("@", 1)[0],))
    if kind == "phone":
        return frozenset(("p:" + digits_key(value),))
    if kind == "phone~":
        return frozenset(("p:" + value,))
    return frozenset()


def persons_among(
    nodes: Sequence[Node],
    ident: tuple[str, str] | None = None,
    *,
    household: bool = False,
    reach: bool = True,
    place: bool = False,
    generations: Collection[str] = (),
) -> tuple[list[list[Node]], list[Node]]:
    """Group the nodes that say who they are (first name, birth date, generation) into persons;
    return the rest (nodes that say nothing) apart (``household``, ``reach``, ``place``: as
    :func:`compatible` takes them; ``generations``: the first names that records of the
    household's place state with a Jr or Sr, beside those of ``nodes``).

    Greedy, the nodes that say most first: a node joins the first group whose every member it is
    compatible with. A node that fits two of the persons (a "Peter Brandt" without a birth date
    beside a father and a son of that name) belongs to neither: it is left out of both groups
    and of the rest.
    """
    groups: list[list[Node]] = []
    anonymous: list[Node] = []
    stated = {n.facts for n in nodes}
    stated.discard(None)
    if len(stated) < 2:  # all say the same (most identifiers are one person's records)
        return ([[n for n in nodes if n.facts is not None]] if stated else []), [
            n for n in nodes if n.facts is None
        ]
    ordered = sorted(
        nodes,
        key=lambda n: -(bool(n.first_key) + bool(n.date_of_birth) + bool(n.generation)),
    )
    for node in ordered:
        if node.facts is None:
            anonymous.append(node)
            continue
        for group in groups:
            if all(
                compatible(node, other, ident, household=household, reach=reach, place=place)
                for other in group
            ):
                group.append(node)
                break
        else:
            groups.append([node])
    said = [n.first_key for n in nodes if n.generation and n.first_key] if household else []
    if said := [*said, *generations]:
        # A "Michael Senior" on a landline, or at its address, means a Michael Junior rings
        # there too, whether or not a record of his carries it: a record of the name without a
        # generation could be either.
        either = {id(node) for node in nodes if either_generation(node, said)}
        groups = [[n for n in g if id(n) not in either] for g in groups]
        groups = [g for g in groups if g]
    if len(groups) > 1:
        undecided = {
            id(node)
            for group in groups
            for node in group
            if any(
                other is not group
                and all(
                    compatible(node, o, ident, household=household, reach=reach, place=place)
                    for o in other
                )
                for other in groups
            )
        }
        if undecided:
            groups = [[n for n in g if id(n) not in undecided] for g in groups]
            groups = [g for g in groups if g]
    return groups, anonymous


def _household(persons: list[list[Node]]) -> bool:
    """Do these persons (of one address) look like a household: two or more of them known by
    first names people are really called, and not the same one? One person's records corrupted
    beyond recognition (a name cut to "Ral", another typed "Arlph"; a birth date with a typo in
    one record and day and month swapped in another) make two "persons" too, but not two known
    names."""
    names: set[str] = set()
    for person in persons:
        found = {n.first_key for n in person if n.first_key and known(n.first_key)}
        if found and not found & names:  # a person of another name (not one name, two dates)
            if names:
                return True
            names |= found
    return False


def _two_names(group: Sequence[Node], names: set[str]) -> bool:
    """Do the records of one address state two known first names that are not variants of each
    other, each in two records or more: Andreas and Andrea Hofmann, twins of one birth date,
    each known by their own name in every source? A typo that makes another name ("Andrea"
    for Andreas) is a slip in one record, not the same slip in two. Two names of one known
    gender are left out: one man's name in two transliterations (Mohammed and Muhammad, each
    source spelling it its way) is not two men."""
    twice = {
        name
        for name in names
        if sum(1 for n in group if n.first_key == name) > 1  # (a few records per address)
    }
    return any(
        not variants(x, y) and (gender(x) is None or gender(x) != gender(y))
        for x in twice
        for y in twice
        if x < y
    )


def _namesakes(group: Sequence[Node]) -> bool:
    """Do the records of one address give one first name with birth dates of two persons (a
    father and a son of one name: 1945 and 1975)? Dates that a third one bridges (a typo in
    one record, day and month swapped in another) are one person's."""
    born: dict[str, set[str]] = {}
    for node in group:
        if node.date_of_birth and node.first_key and len(node.first_key) > 1:
            born.setdefault(node.first_key, set()).add(node.date_of_birth)
    for dates in born.values():
        if len(dates) < 2:
            continue
        left = list(dates)
        reached = [left.pop()]
        for date in reached:  # (the dates one person's could be, a typo at a time)
            near = [d for d in left if same_birth_date(date, d)]
            reached += near
            left = [d for d in left if d not in near]
        if left:
            return True
    return False


#: The most persons a household's identifier is carried by: a family of five or six shares one
#: landline or one family e-mail. Such an identifier, beyond ``max_persons`` but carried by
#: people of one place, is the household's (it links each person's own records, and counts as
#: household evidence), not a placeholder to ignore.
HOUSEHOLD_PERSONS = 8


def _may_be(node: Node, person: list[Node]) -> bool:
    """Could a node that says nothing of who it is (no first name, birth date or generation)
    be this person? Not when its form of address states the other gender of every first name
    the person's records give ("Frau Ackermann" on Kasimir Ackermann's landline), nor when its
    surname is far from all of theirs ("Frau Drub" on Achim Dörschner's): a flatmate, a
    spouse, a mother calling from the one phone the data knows. (Fail-closed: a maiden name
    stays apart, a false merge would be a privacy incident.)"""
    if node.salutation:
        genders = {gender(n.first_key) for n in person if n.first_key}
        genders.discard(None)
        if genders and node.salutation not in genders:
            return False
    if node.last_key:
        surnames = {n.last_key for n in person if n.last_key}
        if surnames and not any(_near_surname(node.last_key, s) for s in surnames):
            return False
    return True


def _residents(
    person: list[Node],
    carriers: dict[tuple[str, str], list[Node]],
    known: dict[str, list[list[Node]]],
) -> list[list[Node]]:
    """The persons whose records give the addresses of this person's records (``known``: the
    persons of each address, grouped once): the spouse, the child, the flatmate who may pick
    up the one landline the data knows of this person."""
    out: list[list[Node]] = []
    for address in sorted({n.address for n in person if n.address}):
        out.extend(_persons_at(address, carriers, known))
    return out


def _persons_at(
    address: str,
    carriers: dict[tuple[str, str], list[Node]],
    known: dict[str, list[list[Node]]],
) -> list[list[Node]]:
    """The persons whose records give ``address``, grouped as a household's once (``known``)."""
    if address not in known:
        found = carriers.get((ADDRESS, address), [])
        known[address] = persons_among(found, household=True)[0]
    return known[address]


def _said_who(person: list[Node], weak: list[Node], residents: list[list[Node]]) -> list[Node]:
    """The carriers of a landline that are this person, where ``residents`` live: a caller who
    does not say who they are (no name, a form of address, an initial) is the person only when
    no more than one resident could be them (:func:`_fits`). Fail-closed: a false merge is a
    privacy incident, a call left unlinked is not."""
    kept = [
        n for n in person if not (_vague(n) or _short_form(n, person)) or _fits(n, residents) < 2
    ]
    return kept + [n for n in weak if _may_be(n, kept) and _fits(n, residents) < 2]


def _short_form(node: Node, person: list[Node]) -> bool:
    """Is the node's first name, given without a birth date, none that the person's other
    records give ("Franzi", "Manu" beside Franz, Emmanuel): a form two persons of a household
    may go by (see :func:`_fits`)?"""
    if node.date_of_birth or node.generation or _vague(node):
        return False
    dated = [o for o in person if o is not node and o.date_of_birth]
    given = {o.first_key for o in (dated or person) if o is not node and o.first_key}
    return bool(given) and node.first_key not in given


def _vague(node: Node) -> bool:
    """Does the node not say who it is: no first name, or only its initial?"""
    return not node.first_key or len(node.first_key) == 1


def _fits(node: Node, persons: list[list[Node]]) -> int:
    """How many of ``persons`` (of one household) the node could be: "S. Belpere" could be
    Senna or Sienna; a call with no name, anyone its form of address allows (:func:`_may_be`)."""
    if node.facts is None:
        return sum(1 for p in persons if _may_be(node, p))
    return sum(
        1 for p in persons if all(compatible(node, o, household=True, reach=False) for o in p)
    )


def _near_surname(a: str, b: str) -> bool:
    """One surname with a typo or two, or one part of a double name (Müller-Lüdenscheidt)."""
    return DamerauLevenshtein.distance(a, b, score_cutoff=2) <= 2 or bool(
        set(a.split()) & set(b.split())
    )


#: Words by which an e-mail address says it is a family's ("familie.hein@", "fam.otto@",
#: "smithfamily@", "gezin.jansen@").
FAMILY_WORDS = ("familie", "family", "famille", "familia", "famiglia", "gezin")


def _family_mailbox(ident: tuple[str, str]) -> bool:
    """Does an e-mail address say it is a family's: a family word in its user name, or "fam"
    as a word of it, or "the" before a plural ("the.claytons@")? Near first names of two
    genders on it are two persons, as on a number that rings in one place (twins Jan and Jana
    order under "familie.hein@"), not one person's typo."""
    if ident[0] != "email":
        return False
    user = ident[1].partition("@")[0]
    words = [w for w in re.split(r"[^a-z]+", user) if w]
    return (
        any(word in user for word in FAMILY_WORDS)
        or "fam" in words
        or (len(words) == 2 and words[0] == "the" and words[1].endswith("s"))
    )


def _one_place(group: Sequence[Node]) -> bool:
    """Do two or more of the carriers give an address, and all of those one street, or all one
    place (postcode, else city)? A family's records share both, give or take a typo in one or a
    missing postcode in another; those without an address (a call) say nothing either way; a
    shop's number typed in for customers all over the country fails, as does a number that
    only calls and one record carry."""
    addresses = [node.address.split("|", 1) for node in group if node.address]
    return len(addresses) >= 2 and (
        len({street for street, _ in addresses}) == 1 or len({p for _, p in addresses}) == 1
    )


def exact_edges(nodes: Sequence[Node], *, max_persons: int, max_records: int) -> ExactResult:
    """Edges between nodes that share a normalised strong identifier, with guard rails.

    * an identifier on more than ``max_records`` nodes is ignored (placeholders, shop numbers);
    * the carriers of one identifier are grouped into persons by first name and birth date; an
      identifier of more than ``max_persons`` persons is ignored unless they live in one place
      (a family of :data:`HOUSEHOLD_PERSONS` at most), and a shared one (a family phone) links
      each person's own records only, never two people;
    * nodes with no name or birth date join through it only when it belongs to one person.
    """
    result = ExactResult()
    carriers: dict[tuple[str, str], list[Node]] = defaultdict(list)
    landlines = result.landlines
    for node in nodes:
        for ident in node.identifiers:
            carriers[ident].append(node)
            if ident[0] == "phone" and ident[1][:2] != "+1" and line_kind(ident[1]) == "fixed":
                landlines.add(ident)
        if node.address:
            carriers[(ADDRESS, node.address)].append(node)
    _complete_postcodes(carriers)
    named = _generations(nodes, carriers, result)
    edges = result.edges
    # A national number that meets E.164 forms of its digits is decided by the group of all
    # its forms (phone~), not by the group of its national form alone.
    joined = {value for kind, value in carriers if kind == "phone~"}
    landline_digits = {digits_key(value) for _, value in result.landlines} if joined else set()
    homes: dict[str, list[list[Node]]] = {}  # address → its persons (see _residents)
    family_lines: list[list[Node]] = []  # the carriers of each landline of several persons
    late: list[Edge] = []  # the links through an identifier of several persons
    for ident, group in carriers.items():
        if len(group) < 2:
            continue
        if (
            joined
            and ident[0] == "phone"
            and not ident[1].startswith("+")
            and digits_key(ident[1]) in joined
        ):
            continue
        # The usual case first: every carrier says the same about who they are (one person's
        # records), so it is one person and the rest (carriers that say nothing).
        landline = ident in landlines or (ident[0] == "phone~" and ident[1] in landline_digits)
        first = group[0].facts
        if len(group) <= max_records and ident[0] != ADDRESS and not landline:
            said = [n for n in group if n.facts is not None]
            if all(n.facts == first for n in said) if first is not None else not said:
                rule = "exact:" + ident[0].rstrip("~")
                anchor = group[0].raw_id
                callers = first is None or not (
                    first[3] and ident[0].startswith("phone") and _rings_at_home(ident, group)
                )
                if not callers and len(said) < len(group):
                    _at_home(ident, group, result)
                residents: list[list[Node]] = []
                if (
                    callers
                    and first is not None
                    and len(said) < len(group)
                    and ident[0].startswith("phone")
                    and _untyped(ident, group)
                ):
                    # A number whose kind is unknown may ring at home: a caller who does not
                    # say who they are joins its person only when no one else who lives there
                    # could be them (a call with no name on Lisa's North American number may be
                    # her mother's, as on a landline).
                    residents = _residents(said, carriers, homes)
                edges.extend(
                    Edge(anchor, m.raw_id, rule)
                    for m in group[1:]
                    if m.facts is not None
                    or first is None
                    or (
                        callers
                        and _may_be(m, said)
                        and (len(residents) < 2 or _fits(m, residents) < 2)
                    )
                )
                continue
        kind = ident[0].rstrip("~")  # phone~: national digits meeting E.164 (see loading)
        if kind == ADDRESS:  # a household's fact: who shares it, never a link
            # (two known first names, clearly two or near ones each with its own e-mail or
            # mobile: twins Patrick and Patricia; near ones of two genders, an address being
            # one place: twins Joseph and Josephine, whose records give no contact of his; one
            # person's records with a typo'd name and another e-mail here and there are not a
            # household)
            # (two known first names at least, or it cannot be one: most addresses are one
            # person's, and grouping their records into persons is the costly part)
            names = {n.first_key for n in group if n.first_key and known(n.first_key)}
            if (
                len(names) > 1
                and (_household(persons_among(group, place=True)[0]) or _two_names(group, names))
            ) or _namesakes(group):
                result.households.add(ident[1])
                for node in group:
                    result.homes.setdefault(node.raw_id, set()).add(ident)
            continue
        if len(group) > max_records:
            result.ignored.append(
                IgnoredIdentifier(kind, len(group), 0, "seen on too many records")
            )
            result.noise.add(ident)
            continue
        # A number whose plan does not say landline or mobile (North America, national digits)
        # may be a household's when its carriers live in one place: near first names of two
        # genders on it are two persons (twins Paul and Paula; a cut-off "Theres" beside
        # "Theresa" is one), and once it is seen to be two persons', it rings at home like a
        # landline (a number of one person's records is taken for that person's mobile, as
        # most such numbers are).
        place = not landline and kind == "phone" and _untyped(ident, group) and _one_place(group)
        generations = (
            {name for n in group if n.address for name in named.get(n.address, ())}
            if named and (landline or place)
            else set()
        )
        if place and _plain_beside(group, generations):
            # A number of "William Walls Sr" that a plain "Billy Walls" of his address gives too
            # may ring at home for the son as well: the household's, as a landline is.
            landline = True
            _at_home(ident, group, result)
        persons, anonymous = persons_among(
            group,
            ident,
            household=landline,
            place=place or _family_mailbox(ident),
            generations=generations,
        )
        at_home = landline or (place and len(persons) > 1)
        if len(persons) > max_persons and not (
            len(persons) <= HOUSEHOLD_PERSONS and _one_place(group)
        ):
            result.ignored.append(
                IgnoredIdentifier(kind, len(group), len(persons), "shared by too many persons")
            )
            result.noise.add(ident)
            continue
        if len(persons) > 1:
            result.withheld_links += 1
            result.shared.add(ident)
            for node in group:
                result.homes.setdefault(node.raw_id, set()).add(ident)
            if at_home:
                family_lines.append(group)
        rule = f"exact:{kind}"
        for person in persons:
            weak = anonymous if len(persons) == 1 else []  # (a shared one: whose call is it?)
            if weak and (at_home or place) and any(n.generation for n in person):
                weak = []  # a Jr's number at home: his father may be the one who calls
                _at_home(ident, group, result)
            if at_home and len(residents := _residents(person, carriers, homes)) > 1:
                members = _said_who(person, weak, residents)
            else:
                members = person + [n for n in weak if _may_be(n, person)]
            if members:  # (none: a person of one initial, where two live)
                anchor = members[0].raw_id
                (late if len(persons) > 1 else edges).extend(
                    Edge(anchor, m.raw_id, rule) for m in members[1:]
                )
        if not persons and len(anonymous) > 1:
            anchor = anonymous[0].raw_id
            result.edges.extend(Edge(anchor, m.raw_id, rule) for m in anonymous[1:])
    _ring_at_home(family_lines, result)
    _undecided(nodes, carriers, homes, result)
    edges.extend(_quoted(nodes))
    # An identifier that several persons share links each person's records by their names
    # alone: weaker than one person's own e-mail or number, so its links come last, where a
    # record that both reach joins the person its own identifier names (the coherent
    # clustering refuses the rest: a father's order on the family's number beside his son's).
    edges.extend(late)
    return result


def _generations(
    nodes: Sequence[Node], carriers: dict[tuple[str, str], list[Node]], result: ExactResult
) -> dict[str, set[str]]:
    """The first names that records at each address state with a Jr or Sr (address → names;
    only addresses that have one), and into ``result.either`` the records of such a name
    there without one: "Stefan Vogel sen." on the CRM with his mobile means a Stefan Vogel
    junior may answer the landline his loyalty card gives, or be the plain "Stefan Vogel" of
    a shop account (an address without its postcode counts as the one it was joined to)."""
    named: dict[str, set[str]] = {}
    for node in nodes:
        if node.generation and node.first_key and node.address:
            for other in carriers[(ADDRESS, node.address)]:
                if other.address:
                    named.setdefault(other.address, set()).add(node.first_key)
    for address, names in named.items():
        result.either.update(
            n.raw_id for n in carriers[(ADDRESS, address)] if either_generation(n, names)
        )
    return named


def _complete_postcodes(carriers: dict[tuple[str, str], list[Node]]) -> None:
    """Join the carriers of an address given without its postcode (a shop order's
    ``glorieta adela borras 561|salamanca``) to those of the one address of that street and
    house number that gives one, when the store knows exactly one: the Lamas twins' order is
    at their CRM address. (An address key's place is the postcode, upper-cased, or else the
    city, lower-cased.) A street of several postcodes (a Hauptstraße 5 in many towns) stays
    apart."""
    loose = [
        value
        for kind, value in carriers
        if kind == ADDRESS and ((place := value.rpartition("|")[2]).islower() or not place)
    ]
    if not loose:
        return
    wanted = {value.partition("|")[0] for value in loose}
    found: dict[str, list[str]] = defaultdict(list)
    for kind, value in carriers:
        if kind == ADDRESS:
            street, _, place = value.partition("|")
            if street in wanted and place and not place.islower():
                found[street].append(value)
    for value in loose:
        known = found.get(value.partition("|")[0], ())
        if len(known) == 1:
            target = carriers[(ADDRESS, known[0])]
            target.extend(carriers[(ADDRESS, value)])
            carriers[(ADDRESS, value)] = target


def _at_home(ident: tuple[str, str], group: Sequence[Node], result: ExactResult) -> None:
    """Take ``ident`` for a household's (as a landline is): the matcher then counts it as
    household evidence, not as the person's, and what it withheld here it does not link there."""
    result.shared.add(ident)
    for node in group:
        result.homes.setdefault(node.raw_id, set()).add(ident)


def _rings_at_home(ident: tuple[str, str], group: Sequence[Node]) -> bool:
    """Is this a number that may ring at home: its kind unknown (North American, national
    digits) and its records of one place? A caller on it who does not say who they are ("Mr
    Lee") could be a Jr's father as well as the Jr."""
    return _untyped(ident, group) and _one_place(group)


def _plain_beside(group: Sequence[Node], generations: set[str]) -> bool:
    """Does a carrier without a generation give a first name that ``generations`` states with
    one (a plain "Billy Walls" beside "William Walls Sr")?"""
    return any(either_generation(node, generations) for node in group)


def either_generation(node: Node, generations: Collection[str]) -> bool:
    """Could the node be either of two persons of its name: it states no generation, and its
    first name (or a variant of it) is one that ``generations`` states with a Jr or Sr?"""
    first = node.first_key
    if not first or node.generation:
        return False
    return any(variants(first, name) for name in generations)


def _untyped(ident: tuple[str, str], group: Sequence[Node]) -> bool:
    """Does nothing say whether this number rings on a landline or a mobile: a North American
    number, national digits (``phone~``: none of its carriers' E.164 forms tells either)?"""
    if ident[0] == "phone":
        return line_kind(ident[1]) is None
    return all(
        line_kind(value) is None
        for node in group
        for kind, value in node.identifiers
        if kind == "phone" and value.startswith("+") and digits_key(value) == ident[1]
    )


def _undecided(
    nodes: Sequence[Node],
    carriers: dict[tuple[str, str], list[Node]],
    known: dict[str, list[list[Node]]],
    result: ExactResult,
) -> None:
    """The records of each household that do not say who they are and that two or more of its
    persons could be (:attr:`ExactResult.undecided`), among them calls that rang there."""
    homes = result.homes
    for node in nodes:
        if node.raw_id not in homes or node.date_of_birth or node.generation:
            continue
        for kind, place in homes[node.raw_id]:
            if kind != ADDRESS:
                continue
            persons = _persons_at(place, carriers, known)
            probe = node
            if not _vague(node):
                # a first name without a birth date: undecided where two persons go by it (a
                # father and a son Timothy), not where one goes by a variant (Ann and Annett)
                probe = _typo_read(node, persons)
                persons = [p for p in persons if any(o.first_key == probe.first_key for o in p)]
            if _fits(probe, persons) > 1:
                result.undecided.add(node.raw_id)
                break


def _typo_read(node: Node, persons: list[list[Node]]) -> Node:
    """The node with its first name read as the one known name of the household's records that
    it is a typo of ("Timohy" for Timothy, where a father and a son go by it), else as it is."""
    key = node.first_key
    if not key or len(key) < 3 or known(key):
        return node
    names = {
        o.first_key
        for person in persons
        for o in person
        if o.first_key
        and known(o.first_key)
        and DamerauLevenshtein.distance(key, o.first_key, score_cutoff=1) <= 1
    }
    return replace(node, first_key=names.pop()) if len(names) == 1 else node


def _ring_at_home(family_lines: list[list[Node]], result: ExactResult) -> None:
    """A call from a family's landline gives no address, but it rang in the family's home: the
    carriers without an address join the household of the one household address the others
    give (:attr:`ExactResult.homes`), so a scored pair of the caller and a resident is judged
    as inside that household ("K. Beier" where Karl-Dieter and Kriemhild live fits both)."""
    for group in family_lines:
        places = {n.address for n in group if n.address} & result.households
        if len(places) == 1:
            home = (ADDRESS, places.pop())
            for node in group:
                if not node.address:
                    result.homes.setdefault(node.raw_id, set()).add(home)


def _quoted(nodes: Sequence[Node]) -> list[Edge]:
    """Edges from an interaction to the rows whose ids its text quotes (:attr:`Node.refers`),
    when the two could be one person and the caller said who they are: a first name (or its
    initial) and a surname near the quoted row's, with no clear conflict, counted as strictly
    as inside a household (a wife calling about her husband's order is not her husband). A
    quoted id is a customer's own number, but the note is only as sure as whoever wrote it."""
    quoting = [n for n in nodes if n.refers]
    if not quoting:
        return []
    by_id = {n.raw_id: n for n in nodes}
    out = []
    for node in quoting:
        for target in node.refers:
            other = by_id.get(target)
            if other is not None and _could_be(node, other):
                out.append(Edge(other.raw_id, node.raw_id, "exact:reference"))
    return out


def _could_be(caller: Node, row: Node) -> bool:
    """Could the person who quoted ``row``'s id be ``row``'s person (see :func:`_quoted`)?"""
    fa, fb = caller.facts, row.facts
    if fa is None or fb is None or not caller.first_key or not caller.last_key:
        return False
    if not row.last_key or DamerauLevenshtein.distance(caller.last_key, row.last_key) > 1:
        return False
    return not conflicts(fa, fb, household=True)
