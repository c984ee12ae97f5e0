"""The identity graph: union–find over records, joined by identifier edges.

Exact identifiers come first (this module's :func:`exact_edges`); probabilistic matching plugs
in later as one more producer of :class:`Edge` objects fed to the same :class:`UnionFind`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import JaroWinkler


@dataclass(frozen=True, slots=True)
class Node:
    """One record or interaction as identity resolution sees it."""

    raw_id: int
    is_record: bool
    first_key: str | None
    last_key: str | None
    date_of_birth: str | None
    identifiers: tuple[tuple[str, str], ...]  # (type, normalised value)


@dataclass(frozen=True, slots=True)
class Edge:
    """Evidence that two nodes are one person: the rule and, for scores, its weight."""

    left: int
    right: int
    rule: str
    weight: float | None = None
    detail: str | None = None  # JSON: match weight per compared field (probabilistic links)


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
    """Union–find for probabilistic links: it refuses to join two sets holding a pair marked
    *apart* (an unmerge), and two sets whose members contradict each other on strong evidence,
    so weak links cannot chain different people into one cluster.

    Two members with different dates of birth (see :func:`same_birth_date`) contradict each
    other unless the pair itself is a strong match (``pair_weight`` at least ``strong``), and a
    link that is itself strong is not checked: a record whose birth date was mistyped beyond
    recognition still joins when everything else agrees, but a chain of weak links cannot join
    two people born on different days.
    """

    def __init__(
        self,
        keys: Iterable[int],
        birth_dates: dict[int, str],
        pair_weight: Callable[[int, int], float | None] | None = None,
        strong: float = 12.0,
    ) -> None:
        super().__init__(keys)
        self.blocked: dict[int, set[int]] = {}  # root → keys its set may never join
        self.refused = 0
        self.pair_weight = pair_weight
        self.strong = strong
        self.birth_dates = birth_dates
        # The dated members of each joined set, by root; a key never joined has only its own
        # date (kept in birth_dates: no list per key for the million that stay alone).
        self.dated: dict[int, list[tuple[int, str]]] = {}
        self.conflicts = 0

    def keep_apart(self, a: int, b: int) -> None:
        """Never put ``a`` and ``b`` in one set (declare before any union)."""
        if a in self.parent and b in self.parent:
            self.blocked.setdefault(self.find(a), set()).add(b)
            self.blocked.setdefault(self.find(b), set()).add(a)

    def _dated(self, root: int) -> list[tuple[int, str]]:
        joined = self.dated.get(root)
        if joined is not None:
            return joined
        date = self.birth_dates.get(root) if self.size[root] == 1 else None
        return [(root, date)] if date else []

    def _contradict(self, x: int, dx: str, y: int, dy: str) -> bool:
        if same_birth_date(dx, dy):
            return False
        weight = self.pair_weight(x, y) if self.pair_weight else None
        return weight is None or weight < self.strong

    def coherent(self, a: int, b: int) -> bool:
        """Could the sets of ``a`` and ``b`` be one person?"""
        return self._coherent(self._dated(self.find(a)), self._dated(self.find(b)))

    def _coherent(self, mine: list[tuple[int, str]], theirs: list[tuple[int, str]]) -> bool:
        return not any(self._contradict(x, dx, y, dy) for x, dx in mine for y, dy in theirs)

    def union(self, a: int, b: int, *, check: bool = True, weight: float | None = None) -> bool:
        """Join the sets of ``a`` and ``b`` unless kept apart or (with ``check``, for a link
        weaker than ``strong``) contradicting each other; a forced merge passes ``check=False``.

        (One pass, without the base class's union: a million-record resolution makes more
        than a million calls, and each find and list saved counts.)"""
        find = self.find
        ra, rb = find(a), find(b)
        if ra == rb:
            return False
        mine, theirs = self._dated(ra), self._dated(rb)
        weak = weight is None or weight < self.strong
        if check and weak and mine and theirs and not self._coherent(mine, theirs):
            self.conflicts += 1
            return False
        blocked = self.blocked
        if blocked:
            for root, other in ((ra, rb), (rb, ra)):
                if any(find(x) == other for x in blocked.get(root, ())):
                    self.refused += 1
                    return False
        size = self.size
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        size[ra] += size[rb]
        if blocked:
            kept_apart = blocked.pop(ra, set()) | blocked.pop(rb, set())
            if kept_apart:
                blocked[ra] = kept_apart
        self.dated.pop(rb, None)
        self.dated[ra] = mine + theirs
        return True


def same_first_name(a: str, b: str) -> bool:
    """Could two first-name keys be one person's (typo, initial, short form)?"""
    if a == b or a.startswith(b) or b.startswith(a):
        return True
    return JaroWinkler.similarity(a, b) >= 0.88


def same_birth_date(a: str, b: str) -> bool:
    """Could two ISO birth dates be one person's?

    Yes when equal, when day and month are swapped, or when only one of year, month and day
    differs (a typo, however many digits it spoils); no when two of them differ.
    """
    if a == b:
        return True
    if a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]:
        return True
    return (a[:4] != b[:4]) + (a[5:7] != b[5:7]) + (a[8:] != b[8:]) <= 1


def compatible(a: Node, b: Node) -> bool:
    """False when two nodes show they are different people (first name or birth date)."""
    if a.first_key and b.first_key and not same_first_name(a.first_key, b.first_key):
        swapped = a.first_key == b.last_key and a.last_key == b.first_key
        if not swapped:
            return False
    return not (
        a.date_of_birth
        and b.date_of_birth
        and not same_birth_date(a.date_of_birth, b.date_of_birth)
    )


def persons_among(nodes: Sequence[Node]) -> tuple[list[list[Node]], list[Node]]:
    """Group the nodes that carry a name or birth date into persons; return the rest apart.

    Greedy: a node joins the first group whose every member it is compatible with.
    """
    groups: list[list[Node]] = []
    anonymous: list[Node] = []
    for node in nodes:
        if not (node.first_key or node.date_of_birth):
            anonymous.append(node)
            continue
        for group in groups:
            if all(compatible(node, other) for other in group):
                group.append(node)
                break
        else:
            groups.append([node])
    return groups, anonymous


def exact_edges(nodes: Sequence[Node], *, max_persons: int, max_records: int) -> ExactResult:
    """Edges between nodes that share a normalised strong identifier, with guard rails.

    * an identifier on more than ``max_records`` nodes is ignored (placeholders, shop numbers);
    * the carriers of one identifier are grouped into persons by first name and birth date; an
      identifier of more than ``max_persons`` persons is ignored, and a shared one (a family
      phone) links each person's own records only, never two people;
    * nodes with no name or birth date join through it only when it belongs to one person.
    """
    carriers: dict[tuple[str, str], list[Node]] = defaultdict(list)
    for node in nodes:
        for ident in node.identifiers:
            carriers[ident].append(node)
    result = ExactResult()
    for (kind, _value), group in carriers.items():
        if len(group) < 2:
            continue
        if len(group) > max_records:
            result.ignored.append(
                IgnoredIdentifier(kind, len(group), 0, "seen on too many records")
            )
            continue
        persons, anonymous = persons_among(group)
        if len(persons) > max_persons:
            result.ignored.append(
                IgnoredIdentifier(kind, len(group), len(persons), "shared by too many persons")
            )
            continue
        if len(persons) > 1:
            result.withheld_links += 1
        rule = f"exact:{kind}"
        for person in persons:
            members = person + anonymous if len(persons) == 1 else person
            anchor = members[0].raw_id
            result.edges.extend(Edge(anchor, m.raw_id, rule) for m in members[1:])
        if not persons and len(anonymous) > 1:
            anchor = anonymous[0].raw_id
            result.edges.extend(Edge(anchor, m.raw_id, rule) for m in anonymous[1:])
    return result
