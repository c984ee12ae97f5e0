"""The one linking path: records, edges and decisions in; clusters, used links and the pairs
left for review out.

Full and incremental resolution both call :func:`plan_links`; only what they load differs (the
whole store, or the new rows and the profiles they may touch). The order, and the rules:

1. people's decisions: a forced merge links, an unmerge keeps apart, whatever the evidence;
2. exact identifiers (:func:`~custos.identity.exact.exact_edges`, with its guard rails);
3. probabilistic links, strongest first — only those at ``match_threshold`` or above that rest
   on person-level evidence and on more than names (a name alone never links; inside a
   household — an address or contact that records of two
   persons carry — evidence that tells its persons apart: an identifier of the person, or the
   same first name or a nickname of it), that show no clear person-level conflict
   (:func:`~custos.identity.graph.conflict`), and whose record does not fit two persons
   equally well (nor, without an identifier of the person, is a record that does not say who
   it is where two persons of its household could be it:
   :attr:`~custos.identity.graph.ExactResult.undecided`);

a conflict in a single fact is outweighed when at least two other person-level comparisons
agree and one of them is an identifier of the person (customer number, personal e-mail or
mobile): a record whose first name was replaced by mistake, but whose customer number and birth
date match, is the person; twins (one birth date, the other first name, nothing else of their
own in common) are not;

and no link joins two clusters that are clearly two persons. What was scored but not linked is
kept as a :class:`ReviewPair`: ``possible`` (below the threshold but at ``possible_match`` or
above, without person-level evidence, or fitting two persons) and ``conflict`` (a link the
weights wanted, refused because the records are two persons).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from custos.core.phones import digits_key, line_kind
from custos.identity import names
from custos.identity.exact import other_gender
from custos.identity.graph import (
    REASONS,
    CoherentUnionFind,
    Edge,
    ExactResult,
    Facts,
    Node,
    UnionFind,
    conflicts,
    distinct,
    outweighed,
)
from custos.identity.matcher import BEYOND_NAMES, EVIDENCE_BITS, PERSON_EVIDENCE

POSSIBLE, CONFLICT = "possible", "conflict"


@dataclass(frozen=True, slots=True)
class ReviewPair:
    """A scored pair that was not linked, for people to review and consent to act on."""

    left: int
    right: int
    status: str  # POSSIBLE or CONFLICT
    weight: float
    reason: str  # names no values
    edge: Edge  # the scored pair

    @property
    def detail(self) -> str | None:
        """JSON: match weight per compared field."""
        return self.edge.detail


@dataclass
class Plan:
    """What :func:`plan_links` decided."""

    clusters: list[list[int]]
    used: list[Edge]
    review: list[ReviewPair] = field(default_factory=list)
    conflicts: int = 0  # links refused because the clusters are two persons
    kept_apart: int = 0  # links refused by people's decisions
    ambiguous: int = 0  # records that fit two persons equally well


def plan_links(
    nodes: Sequence[Node],
    exact: ExactResult,
    probable: Sequence[Edge],
    together: Sequence[Edge],
    apart: Sequence[tuple[int, int]],
    *,
    match_threshold: float,
    possible_match: float,
    extra: Sequence[Edge] = (),
) -> Plan:
    """Cluster ``nodes`` by the rules above. ``probable`` holds the scored pairs at
    ``min(possible_match, match_threshold)`` or above, strongest first; ``extra`` are more
    edges of the exact kind (tests plug matchers in here)."""
    facts: dict[int, Facts] = {}
    for node in nodes:
        if (said := node.facts) is not None:
            facts[node.raw_id] = said
    review: list[ReviewPair] = []
    # pairs whose conflict (in these facts) the person's identifiers outweigh
    exempt: dict[tuple[int, int], tuple[str, ...]] = {}
    decided = {(min(a, b), max(a, b)) for a, b in apart}
    decided.update((min(e.left, e.right), max(e.left, e.right)) for e in together)

    def keep(edge: Edge, status: str, reason: str) -> None:
        if (min(edge.left, edge.right), max(edge.left, edge.right)) not in decided:
            review.append(
                ReviewPair(edge.left, edge.right, status, edge.weight or 0.0, reason, edge)
            )

    homes = exact.homes
    residents: dict[tuple[str, str], list[int]] = {}  # household key → its records
    for raw_id, where in homes.items():
        for home in where:
            residents.setdefault(home, []).append(raw_id)
    reach = _Contacts(nodes, exact)
    kin = _Kin(exact, homes, facts)
    undecided = exact.undecided  # records two persons of their household could be

    # The rules, per scored pair, as arrays: most pairs are two records of one person that say
    # the same, and only the pairs whose first name, birth date or generation differ (a surname
    # alone never shows two persons), or whose records live in one household, are looked at
    # one by one (a million-record run scores a million pairs).
    count = len(probable)
    weight = np.fromiter((e.weight or 0.0 for e in probable), float, count)
    evidence = np.fromiter((e.evidence for e in probable), np.int64, count)
    look: list[int] = []
    stated = facts.get
    # a record known by a form of address and a surname or an initial ("Mrs Sanford", "Mrs R.
    # West"): its gender
    addressed = {n.raw_id: n.salutation for n in nodes if n.salutation}
    for i, edge in enumerate(probable):
        a, b = edge.left, edge.right
        if (
            (a in homes and b in homes)
            or a in undecided
            or b in undecided
            or a in addressed
            or b in addressed
            or (
                (ff := stated(a)) is not None
                and (fg := stated(b)) is not None
                and (ff[0] != fg[0] or ff[2] != fg[2] or ff[3] != fg[3])
            )
        ):
            look.append(i)
    found = np.zeros(count, bool)  # a clear conflict
    reasons: dict[int, str] = {}
    ambiguous_home = np.zeros(count, bool)  # another resident fits as well
    either_generation = np.zeros(count, bool)  # a Jr/Sr on one record only, first names alone
    for i in look:
        edge = probable[i]
        a, b = edge.left, edge.right
        ff, fg = facts.get(a), facts.get(b)
        household = a in homes and b in homes and bool(homes[a] & homes[b])
        clash: tuple[str, ...] = ()
        if ff and fg and ff != fg:
            clash = conflicts(ff, fg, household=household)
            if (
                not clash
                and ff[0]
                and fg[0]
                and ff[0] != fg[0]
                and not household
                and distinct(reach[a], reach[b])  # near first names, each reaching its own
            ):
                clash = conflicts(ff, fg, distinct=True)
            if clash and _outweighed(clash, edge.evidence):
                exempt[(min(a, b), max(a, b))] = clash
                clash = ()
        if not clash and addressed and _other_gender(a, b, facts, addressed):
            clash = ("salutation",)
        if clash:
            found[i] = True
            reasons[i] = REASONS[clash[0]]
        elif _either_generation(ff, fg, edge.evidence):
            either_generation[i] = True
        elif not edge.evidence & _IDENTIFIERS and (
            a in undecided
            or b in undecided
            or (
                household
                and not _same_first_name(ff, fg)
                and _another_fits(a, b, facts, homes, residents, addressed, kin)
            )
        ):
            ambiguous_home[i] = True
    weak = (evidence & (_IDENTIFIERS | EVIDENCE_BITS["dob"])) == 0  # a birth date or identifier
    # the record without a generation could be either person of the name (beside a Jr in a
    # pair, or at the address of one): none of its links on names and household facts alone
    # is made (not only the one to the Jr)
    either = {
        edge.left if facts[edge.left][3] is None else edge.right
        for edge in (probable[i] for i in np.flatnonzero(either_generation).tolist())
    }
    either |= exact.either
    if either:
        for i in np.flatnonzero(weak).tolist():
            if probable[i].left in either or probable[i].right in either:
                either_generation[i] = True
    strong = weight >= match_threshold
    person = (evidence & PERSON_EVIDENCE) != 0
    beyond = (evidence & BEYOND_NAMES) != 0
    verdicts = (
        (~strong & ~found & (weight >= possible_match), POSSIBLE, "below the match threshold"),
        (strong & found, CONFLICT, None),
        (strong & ~found & ~person, POSSIBLE, "no person-level evidence (household facts only)"),
        (strong & ~found & person & ~beyond, POSSIBLE, "names only: a name alone never links"),
        (
            strong & ~found & person & beyond & ambiguous_home,
            POSSIBLE,
            "one household; another of its persons fits as well",
        ),
        (
            strong & ~found & person & beyond & ~ambiguous_home & either_generation,
            POSSIBLE,
            "a Jr or Sr of this name exists: the record without one could be either",
        ),
    )
    for mask, status, reason in verdicts:
        for i in np.flatnonzero(mask).tolist():
            keep(probable[i], status, reason or reasons[i])
    linkable = strong & ~found & person & beyond & ~ambiguous_home & ~either_generation
    eligible = [probable[i] for i in np.flatnonzero(linkable).tolist()]
    stages = ((together, False), ((*exact.edges, *extra), True), (eligible, True))
    clustering = _Clustering(nodes, facts, exempt, reach, homes, apart, stages, addressed)
    dropped, affected, ambiguous = _ambiguous(
        clustering.forest, exempt, eligible, clustering.refused, keep
    )
    if dropped:  # again, without the links of records that fit two persons
        clustering.again(affected, dropped)
    forest, used, refused = clustering.forest, clustering.used, clustering.refused
    for edge, why in refused:
        keep(edge, CONFLICT, f"its profile holds another person ({why})")
    clusters = forest.groups()
    find = forest.find
    best: dict[tuple[int, int], ReviewPair] = {}
    for pair in review:
        a, b = pair.left, pair.right
        if find(a) == find(b):
            continue  # linked after all, through other records
        key = (min(a, b), max(a, b))
        if key not in best or pair.weight > best[key].weight:
            best[key] = pair
    return Plan(
        clusters=clusters,
        used=used,
        review=sorted(best.values(), key=lambda p: -p.weight),
        conflicts=forest.conflicts,
        kept_apart=forest.refused,
        ambiguous=ambiguous,
    )


class _Kin(dict[int, list[Facts]]):
    """Kernel: for each record of a household, the facts of the records its exact links join
    it to (an e-mail, a mobile: one person's), itself among them; built on first use."""

    def __init__(
        self, exact: ExactResult, homes: Mapping[int, set[tuple[str, str]]], facts: dict[int, Facts]
    ) -> None:
        super().__init__()
        self._exact, self._homes, self._facts = exact, homes, facts
        self._groups: dict[int, list[Facts]] | None = None
        self._find: Callable[[int], int] | None = None

    def __missing__(self, raw_id: int) -> list[Facts]:
        if self._groups is None:
            homes, facts = self._homes, self._facts
            linked = UnionFind(homes)
            for edge in self._exact.edges:
                if edge.left in homes and edge.right in homes:
                    linked.union(edge.left, edge.right)
            groups: dict[int, list[Facts]] = {}
            for key in homes:
                if (said := facts.get(key)) is not None:
                    groups.setdefault(linked.find(key), []).append(said)
            self._groups, self._find = groups, linked.find
        assert self._find is not None
        found = self._groups.get(self._find(raw_id), []) if raw_id in self._homes else []
        self[raw_id] = found
        return found


class _Contacts(dict[int, frozenset[str]]):
    """Kernel: each node's own ways to reach its person. ``contacts[raw_id]`` is a frozenset
    of ``e:``-prefixed user names of its personal e-mails (a person who moved to another mail
    provider keeps the name) and ``p:``-prefixed digits of its personal phones, and again as
    ``m:`` those whose numbering plan says mobile (one pocket's: see
    :class:`~custos.identity.graph.CoherentUnionFind`); not household contacts (a landline, a
    family e-mail) or placeholders.

    Fast because lazy: a set is worked out on first use (``__missing__``), and the index of
    identifiers by raw id only when the first is asked for; most of a million nodes never
    are, and a set asked for again is a plain dict lookup."""

    def __init__(self, nodes: Sequence[Node], exact: ExactResult) -> None:
        super().__init__()
        self.nodes = nodes
        self.identifiers: dict[int, tuple[tuple[str, str], ...]] | None = None
        self.skip = exact.shared | exact.noise | exact.landlines

    def __missing__(self, raw_id: int) -> frozenset[str]:
        if self.identifiers is None:  # (built when first needed: a million nodes)
            self.identifiers = {n.raw_id: n.identifiers for n in self.nodes if n.identifiers}
        skip = self.skip
        mine = [
            (kind, value)
            for kind, value in self.identifiers.get(raw_id, ())
            if kind in ("email", "phone") and (kind, value) not in skip
        ]
        found = frozenset(
            (
                *(
                    "e:" + v.split("@", 1)[0] if k == "email" else "p:" + digits_key(v)
                    for k, v in mine
                ),
                *(
                    "m:" + digits_key(v)
                    for k, v in mine
                    if k == "phone" and line_kind(v) == "mobile"
                ),
            )
        )
        self[raw_id] = found
        return found


def _another_fits(
    left: int,
    right: int,
    facts: Mapping[int, Facts],
    homes: Mapping[int, set[tuple[str, str]]],
    residents: Mapping[tuple[str, str], list[int]],
    addressed: Mapping[int, str],
    kin: Mapping[int, list[Facts]],
) -> bool:
    """Does another person of the pair's household fit one of its records as well? A record of
    "J. Ortiz" at Jill Ortiz's address is hers when nobody else there could be a J.; with a
    Jack in the household it could be either (and so could "M. Lehmann" beside twins Max and
    Moritz); "Herr R. Schulz" could not be Rose-Marie, nor could a record born 1945 be a
    resident whose e-mail gives a birth date of 1968 on another record."""
    mine = [(left, right), (right, left)]
    for key in homes[left] & homes[right]:
        for other in residents[key]:
            if other in (left, right) or (said := facts.get(other)) is None:
                continue
            for record, partner in mine:
                fr, fp = facts.get(record), facts.get(partner)
                if fp is None:
                    continue
                # another person than the partner's, who could be the record's
                if (
                    conflicts(said, fp, household=True)
                    and (
                        fr is None or not any(conflicts(f, fr, household=True) for f in kin[other])
                    )
                    and not (addressed and _other_gender(record, other, facts, addressed))
                ):
                    return True
    return False


def _other_gender(a: int, b: int, facts: Mapping[int, Facts], addressed: Mapping[int, str]) -> bool:
    """Does one record's form of address state the other gender than the other record's first
    name or form of address: "Mrs Sanford" on Philip Sanford's number is his wife, not him,
    nor the "Mr Sanford" who called from it (as the exact stage judges them)?"""
    fa, fb = facts.get(a), facts.get(b)
    return other_gender(
        addressed.get(a), fa[0] if fa else None, addressed.get(b), fb[0] if fb else None
    )


def _either_generation(a: Facts | None, b: Facts | None, evidence: int) -> bool:
    """One record states a generation (Jr, Sr, II) and the other none, and only the names say
    they are one person: a "Richard Carr Junior" means a Richard Carr senior exists, so a plain
    "Richard Carr" could be either of them unless a birth date or an identifier of the person
    agrees."""
    if not a or not b or (a[3] is None) == (b[3] is None):
        return False
    return not evidence & (_IDENTIFIERS | EVIDENCE_BITS["dob"])


def _same_first_name(a: Facts | None, b: Facts | None) -> bool:
    """The same first name, or a nickname of it (not a typo or an initial: inside a household
    a near name is often another person's, Paul and Paula, Andrea and Andreas)."""
    if not a or not b or not a[0] or not b[0]:
        return False
    return a[0] == b[0] or names.nicknames_related(a[0], b[0])


#: Person-level comparisons that are identifiers of one person.
_IDENTIFIERS = EVIDENCE_BITS["email"] | EVIDENCE_BITS["phone"] | EVIDENCE_BITS["customer_id"]


def _outweighed(found: tuple[str, ...], evidence: int) -> bool:
    """Do the comparisons that agree outweigh a scored pair's conflict (:func:`~custos.identity.
    graph.outweighed`), counting the person-level ones: identifiers and the rest?"""
    agreeing = evidence & PERSON_EVIDENCE
    identifiers = (agreeing & _IDENTIFIERS).bit_count()
    return outweighed(found, identifiers, agreeing.bit_count() - identifiers)


class _Clustering:
    """The clustering passes of :func:`plan_links`: links in the order of the rules into a
    :class:`CoherentUnionFind`, and, after the links of records that fit two persons are
    dropped, the same again for just the clusters those records touched (a million-record run
    has a few thousand such clusters, and replaying them costs a fraction of a second)."""

    def __init__(
        self,
        nodes: Sequence[Node],
        facts: dict[int, Facts],
        exempt: dict[tuple[int, int], tuple[str, ...]],
        reach: Mapping[int, frozenset[str]],
        homes: Mapping[int, set[tuple[str, str]]],
        apart: Sequence[tuple[int, int]],
        stages: tuple[tuple[Sequence[Edge], bool], ...],
        genders: Mapping[int, str],
    ) -> None:
        self.exempt, self.homes, self.apart = exempt, homes, apart
        self.stages = stages
        self.forest = CoherentUnionFind((n.raw_id for n in nodes), facts, reach, genders)
        self.used: list[Edge] = []
        #: probabilistic links refused because they would join two persons, with the reason
        self.refused: list[tuple[Edge, str]] = []
        self._run(None)

    def _run(self, only: set[int] | None) -> None:
        """Apply the rules to every node, or (``only``) to these nodes' links."""
        forest = self.forest
        for left, right in self.apart:
            if only is None or left in only or right in only:
                forest.keep_apart(left, right)
        known, exempt, homes = forest.parent, self.exempt, self.homes
        special = {k for pair in exempt for k in pair}  # nodes with an exempt pair
        union, used, refused = forest.union, self.used, self.refused
        for edges, check in self.stages:
            for edge in edges:
                left, right = edge.left, edge.right
                if only is not None and left not in only and right not in only:
                    continue
                if left not in known or right not in known:
                    continue
                skip: tuple[str, ...] = ()
                if left in special:
                    skip = exempt.get((min(left, right), max(left, right)), ())
                household = left in homes and right in homes and bool(homes[left] & homes[right])
                if union(left, right, check=check, skip=skip, household=household):
                    used.append(edge)
                elif (
                    edge.rule == "match"
                    and forest.why is not None
                    and not forest.why.startswith("kept apart")
                ):
                    refused.append((edge, forest.why))

    def again(self, affected: set[int], dropped: set[int]) -> None:
        """Cluster the ``affected`` nodes (whole clusters) again without the ``dropped`` links
        (their ids)."""
        self.forest.reset(affected)
        self.used = [e for e in self.used if e.left not in affected and e.right not in affected]
        self.refused = [
            (e, why)
            for e, why in self.refused
            if e.left not in affected and e.right not in affected
        ]
        self.stages = tuple(
            (
                [
                    e
                    for e in edges
                    if (e.left in affected or e.right in affected) and id(e) not in dropped
                ],
                check,
            )
            for edges, check in self.stages
        )
        self._run(affected)


def _ambiguous(
    forest: CoherentUnionFind,
    exempt: Mapping[tuple[int, int], tuple[str, ...]],
    eligible: Sequence[Edge],
    refused: Sequence[tuple[Edge, str]],
    keep: Callable[[Edge, str, str], None],
) -> tuple[set[int], set[int], int]:
    """The links to drop for records that fit two persons (ids of the edges), the members of
    the clusters that the dropping touches, and how many such records there are.

    A link refused because it would join two clusters that are two persons shows where the
    line between them runs. Each cluster has a *core*, the records whose facts clash with the
    other's (the father's record with his birth date, the son's with his), and records that
    say nothing either way (an order of "Andreas Berger" without a birth date). Such a record
    stays with the person whose core gives it more person-level evidence (all that the other
    gives and more: a matching e-mail or mobile); when neither does, it fits both equally well
    and links to neither: its links wait for review.
    """
    # (a link whose records share an identifier of the person says one person, not two: the
    # line between two persons is not drawn there)
    refused = [(edge, why) for edge, why in refused if not edge.evidence & _IDENTIFIERS]
    if not refused:
        return set(), set(), 0
    find, facts = forest.find, forest.facts
    roots = {find(x) for edge, _ in refused for x in (edge.left, edge.right)}
    members = {r: forest.members(r) for r in roots}
    links: dict[int, list[Edge]] = {k: [] for ms in members.values() for k in ms}
    for edge in eligible:
        for x in (edge.left, edge.right):
            if x in links:
                links[x].append(edge)
    dropped: set[int] = set()
    undecided: set[int] = set()
    for out, _ in refused:
        one, other = find(out.left), find(out.right)
        cores = {
            one: _core(members[one], members[other], facts, exempt),
            other: _core(members[other], members[one], facts, exempt),
        }
        for home, away in ((one, other), (other, one)):
            for x in members[home]:
                if x in cores[home] or x in undecided:
                    continue
                mine = _evidence(x, links[x], cores[home])
                theirs = _evidence(x, links[x], cores[away])
                if not theirs or (mine != theirs and mine & theirs == theirs):
                    continue  # nothing for the other person, or its own fits better
                if mine != theirs and mine & theirs == mine:
                    reason, losing = "another person fits this record better", cores[home]
                else:
                    reason, losing = "the record fits two persons equally well", None
                    undecided.add(x)
                for edge in links[x]:
                    end = edge.right if edge.left == x else edge.left
                    if (losing is None or end in losing) and id(edge) not in dropped:
                        dropped.add(id(edge))
                        keep(edge, POSSIBLE, reason)
    affected = {k for ms in members.values() for k in ms} if dropped else set()
    return dropped, affected, len(undecided)


def _core(
    mine: list[int],
    theirs: list[int],
    facts: Mapping[int, Facts],
    exempt: Mapping[tuple[int, int], tuple[str, ...]],
) -> set[int]:
    """The members of one cluster whose facts clash with a member of the other (a clash that
    the person's identifiers outweigh does not count)."""
    stated = [(y, facts[y]) for y in theirs if y in facts]
    return {
        x
        for x in mine
        if x in facts
        and any(
            conflicts(facts[x], fy, household=True) and (min(x, y), max(x, y)) not in exempt
            for y, fy in stated
        )
    }


def _evidence(x: int, edges: list[Edge], core: set[int]) -> int:
    """The person-level comparisons that agree between ``x`` and the records of ``core``."""
    out = 0
    for edge in edges:
        if (edge.right if edge.left == x else edge.left) in core:
            out |= edge.evidence & PERSON_EVIDENCE
    return out
