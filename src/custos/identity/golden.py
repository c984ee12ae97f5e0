"""The golden record: one value per attribute, chosen by a rule, with its provenance.

The rule, in one place (:class:`GoldenPlan`): members are ranked - a person's own correction
(a data-subject rectification) first, then person records before interactions, then by the
source's priority (rule ``priority``), newest first, lowest raw id - and each attribute takes
the value of the first member that has one (rules ``priority`` and ``recent``) or the most
frequent value, the first in rank order among equals (rule ``frequent``; a rectification still
wins). Address attributes are chosen together, from one member, so two addresses never mix.
Extra attributes of person records (a loyalty tier, a tagged health condition) follow the rule
too (under ``frequent`` by their count alone). The result is stored as one document per profile (:mod:`custos.store.golden`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Protocol

import orjson

from custos.core.fields import GOLDEN_ADDRESS, GOLDEN_SINGLE
from custos.store import golden as golden_store
from custos.store.tables import utc_text

#: The source of corrections a person asked for (GDPR Art. 16): they win every rule.
RECTIFICATION = "rectification"
RULES = ("priority", "recent", "frequent")
#: A chosen value: (attribute, value, the member it came from).
_Pick = tuple[str, Any, "Member"]


class Member(Protocol):
    """A member row of a profile as the golden record reads it (e.g. a loaded row of
    :mod:`custos.identity.loading`): its provenance, and its values of
    :data:`~custos.core.fields.GOLDEN_ATTRIBUTES` as attributes of those names."""

    @property
    def raw_id(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def record_id(self) -> str: ...
    @property
    def is_record(self) -> bool: ...
    @property
    def when(self) -> Any:
        """When its values were true, as stored (text on SQLite, a datetime on PostgreSQL)."""

    @property
    def extra(self) -> str | None:
        """Its extra attributes as JSON (read for person records only)."""


class GoldenPlan:
    """The golden-record rule compiled once per run and applied to the members of each profile
    (:meth:`document`). A full resolution writes millions of golden values: the plan works on
    the loaded rows directly, with no object per member or value."""

    def __init__(self, rule: str = "priority", priority: Sequence[str] = ()) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown golden rule {rule!r}: use one of {', '.join(RULES)}")
        self.rule = rule
        self.frequent = rule == "frequent"
        rank = {name: i for i, name in enumerate(priority)} if rule == "priority" else {}
        unranked = len(rank)
        times = self.times = _Times()

        def order(m: Member) -> tuple[Any, ...]:
            source = m.source
            return (
                source != RECTIFICATION,
                not m.is_record,
                rank.get(source, unranked),
                times[m.when][0],
                m.raw_id,
            )

        self.order = order
        self.single = tuple((name, attrgetter(name)) for name in GOLDEN_SINGLE)
        self.address = tuple((name, attrgetter(name)) for name in GOLDEN_ADDRESS)
        # an address is found by its street, else its city (members may have a city only)
        self.street = attrgetter("street")
        self.city = attrgetter("city")

    def documents(
        self, profile_ids: Sequence[str], clusters: Sequence[Sequence[int]], rows: dict[int, Any]
    ) -> Iterator[tuple[str, str]]:
        """(profile id, golden record document) per profile, from the rows of its members (by
        raw id), one profile at a time."""
        for pid, members in zip(profile_ids, clusters, strict=True):
            yield pid, self.document(list(map(rows.__getitem__, members)))

    def document(self, members: Sequence[Member]) -> str:
        """The golden record document of one profile (:func:`custos.store.golden.document`)."""
        ordered = sorted(members, key=self.order) if len(members) > 1 else members
        return self._encoded(ordered, self._picks(ordered))

    def _picks(self, ordered: Sequence[Member]) -> list[_Pick]:
        """The chosen values among the members (in rank order), with the member of each."""
        picks: list[_Pick] = []
        pick = picks.append
        if self.frequent:
            for attribute, value_of in self.single:
                if (found := self._most_frequent(ordered, value_of)) is not None:
                    pick((attribute, value_of(found), found))
        else:  # the first in rank order that has a value
            for attribute, value_of in self.single:
                for m in ordered:
                    if value := value_of(m):
                        pick((attribute, value, m))
                        break
        street, city = self.street, self.city
        for m in ordered:
            if street(m) or city(m):
                chosen = m
                if self.frequent and m.source != RECTIFICATION:
                    having = [h for h in ordered if street(h) or city(h)]
                    chosen = _counted(having, street if street(m) else city)
                for attribute, value_of in self.address:
                    if value := value_of(chosen):
                        pick((attribute, value, chosen))
                break
        extras: list[tuple[Member, dict[str, Any]]] = []
        for m in ordered:  # (a loop: most have none, and a comprehension costs a call)
            if m.is_record and m.extra:
                extras.append((m, orjson.loads(m.extra)))
        if extras:
            picks.extend(self._extras(extras))
        return picks

    def _most_frequent(
        self, ordered: Sequence[Member], value_of: Callable[[Member], Any]
    ) -> Member | None:
        first = _first(ordered, value_of)
        if first is None or first.source == RECTIFICATION:
            return first
        return _counted(ordered, value_of)

    def _extras(self, extras: list[tuple[Member, dict[str, Any]]]) -> Iterator[_Pick]:
        for name in sorted({name for _, extra in extras for name in extra}):
            having = [(m, str(e[name])) for m, e in extras if e.get(name) not in (None, "")]
            if not having:
                continue
            chosen = having[0]
            if self.frequent:
                counts = Counter(value for _, value in having)
                top = max(counts.values())
                chosen = next(h for h in having if counts[h[1]] == top)
            yield name, chosen[1], chosen[0]

    def _encoded(self, ordered: Sequence[Member], picks: list[_Pick]) -> str:
        """The document of the picks, each member they came from named once (in the order of
        its first value)."""
        times = self.times
        origins: list[golden_store.Origin] = []
        values: dict[str, tuple[Any, int]] = {}
        if len(ordered) == 1:  # (most profiles: every value is the one member's)
            m = ordered[0]
            if picks:
                origins.append((m.source, m.record_id, times[m.when][1]))
            for attribute, value, _ in picks:
                values[attribute] = (value, 0)
            return golden_store.document(self.rule, origins, values)
        at: dict[int, int] = {}  # raw id → index into origins
        for attribute, value, m in picks:
            index = at.get(m.raw_id)
            if index is None:
                index = at[m.raw_id] = len(origins)
                origins.append((m.source, m.record_id, times[m.when][1]))
            values[attribute] = (value, index)
        return golden_store.document(self.rule, origins, values)


def _first(ordered: Sequence[Member], value_of: Callable[[Member], Any]) -> Member | None:
    """The first member in rank order that has a value."""
    for m in ordered:
        if value_of(m):
            return m
    return None


def _counted(having: Sequence[Member], value_of: Callable[[Member], Any]) -> Member:
    """The first member in rank order whose value is the most frequent among ``having``."""
    counts = Counter(v for m in having if (v := value_of(m)))
    top = max(counts.values())
    return next(m for m in having if (v := value_of(m)) and counts[v] == top)


class _Times(dict[Any, tuple[float, str]]):
    """Kernel: stored timestamps → (minus their POSIX time, so the newest sorts first; their
    form in golden documents), each distinct value parsed once (records ingested together
    share one; SQLite hands back text, PostgreSQL datetimes)."""

    def __missing__(self, value: Any) -> tuple[float, str]:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        self[value] = out = (-parsed.timestamp(), utc_text(parsed))
        return out
