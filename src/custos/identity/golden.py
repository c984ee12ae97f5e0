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
        chosen, encoded, order = self._chosen, self._encoded, self.order
        for pid, members in zip(profile_ids, clusters, strict=True):
            if len(members) == 1:
                ordered: Sequence[Member] = (rows[members[0]],)
            else:
                ordered = sorted(map(rows.__getitem__, members), key=order)
            yield pid, encoded(ordered, chosen(ordered))

    def document(self, members: Sequence[Member]) -> str:
        """The golden record document of one profile (:func:`custos.store.golden.document`)."""
        ordered = sorted(members, key=self.order) if len(members) > 1 else members
        return self._encoded(ordered, self._chosen(ordered))

    def _chosen(self, ordered: Sequence[Member]) -> dict[str, tuple[Any, int]]:
        """attribute → (the chosen value, the rank of the member it came from)."""
        chosen: dict[str, tuple[Any, int]] = {}
        ranked = [(0, ordered[0])] if len(ordered) == 1 else list(enumerate(ordered))
        if self.frequent:
            for attribute, value_of in self.single:
                if (found := _most_frequent(ranked, value_of)) is not None:
                    chosen[attribute] = (value_of(ordered[found]), found)
        else:  # the first in rank order that has a value
            for attribute, value_of in self.single:
                for rank, m in ranked:
                    if value := value_of(m):
                        chosen[attribute] = (value, rank)
                        break
        street, city = self.street, self.city
        for rank, m in ranked:
            if street(m) or city(m):
                if self.frequent and m.source != RECTIFICATION:
                    having = [(i, h) for i, h in ranked if street(h) or city(h)]
                    rank = _counted(having, street if street(m) else city)
                for attribute, value_of in self.address:
                    if value := value_of(ordered[rank]):
                        chosen[attribute] = (value, rank)
                break
        extras: list[tuple[int, dict[str, Any]]] = []
        for rank, m in ranked:  # (a loop: most have none, and a comprehension costs a call)
            if m.is_record and m.extra:
                extras.append((rank, orjson.loads(m.extra)))
        if extras:
            chosen.update(self._extras(extras))
        return chosen

    def _extras(self, extras: list[tuple[int, dict[str, Any]]]) -> Iterator[tuple[str, Any]]:
        for name in sorted({name for _, extra in extras for name in extra}):
            having = [(str(e[name]), rank) for rank, e in extras if e.get(name) not in (None, "")]
            if not having:
                continue
            chosen = having[0]
            if self.frequent:
                counts = Counter(value for value, _ in having)
                top = max(counts.values())
                chosen = next(h for h in having if counts[h[0]] == top)
            yield name, chosen

    def _encoded(self, ordered: Sequence[Member], chosen: dict[str, tuple[Any, int]]) -> str:
        """The document of the chosen values, each member they came from named once (in the
        order of its first value)."""
        used: Sequence[Member] = ordered if chosen else ()
        if len(ordered) > 1:  # ranks → indexes into the document's "from"
            index: dict[int, int] = {}
            for attribute, (value, rank) in chosen.items():
                chosen[attribute] = (value, index.setdefault(rank, len(index)))
            used = [ordered[rank] for rank in index]
        # (else the ranks are the indexes already: most profiles are one record)
        times = self.times
        origins: list[golden_store.Origin] = []
        for m in used:
            origins.append((m.source, m.record_id, times[m.when][1]))
        return golden_store.document(self.rule, origins, chosen)


def _most_frequent(
    ranked: Sequence[tuple[int, Member]], value_of: Callable[[Member], Any]
) -> int | None:
    """The rank of the member whose value is chosen under rule ``frequent`` (None: no value)."""
    having = [(rank, m) for rank, m in ranked if value_of(m)]
    if not having or having[0][1].source == RECTIFICATION:
        return having[0][0] if having else None
    return _counted(having, value_of)


def _counted(having: Sequence[tuple[int, Member]], value_of: Callable[[Member], Any]) -> int:
    """The rank of the first of ``having`` (ranked members) whose value is the most frequent
    among them."""
    counts = Counter(v for _, m in having if (v := value_of(m)))
    top = max(counts.values())
    return next(rank for rank, m in having if (v := value_of(m)) and counts[v] == top)


class _Times(dict[Any, tuple[float, str]]):
    """Kernel: stored timestamps → (minus their POSIX time, so the newest sorts first; their
    form in golden documents), each distinct value parsed once (records ingested together
    share one; SQLite hands back text, PostgreSQL datetimes)."""

    def __missing__(self, value: Any) -> tuple[float, str]:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        self[value] = out = (-parsed.timestamp(), utc_text(parsed))
        return out
