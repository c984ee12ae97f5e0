"""k-anonymity and l-diversity, counted per person.

A person's rows are linked in a release (by their pseudonym), so what an attacker can match is
the person's *signature*: the set of generalised quasi-identifier combinations over all of their
rows. Persons with the same signature form a group; a group is

* **k-anonymous** when it holds at least k distinct persons (rows do not count: three visits of
  one patient are one patient);
* **l-diverse** (per person) when, for every sensitive value v in it, the persons who do *not*
  hold v hold at least l-1 other distinct values. With one value per person this is distinct
  l-diversity; with several it stops one person's rows from posing as diversity, and it refuses a
  group in which every person holds the same value (certain disclosure);
* **t-close** when the distribution of each sensitive column in it is within variational
  distance t of the whole table's (each person weighs one, shared among their distinct values):
  a group of five in which three hold a condition one in fifty hold overall tells an attacker
  more than k and l admit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from custos.privacy.deid.operators import Operator

Signature = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of an extract: the person it belongs to, quasi-identifiers, sensitive values."""

    person: str
    qi: tuple[str | None, ...]
    sensitive: tuple[str, ...]


@dataclass
class Group:
    """Persons who share a signature, and the sensitive values each of them holds."""

    signature: Signature
    persons: set[str] = field(default_factory=set)
    #: per sensitive column: person → the values of their rows
    values: list[dict[str, set[str]]] = field(default_factory=list)

    def diversity(self) -> list[int]:
        """Per sensitive column, the largest l for which the group is l-diverse per person."""
        return [per_person_l(held) for held in self.values]

    def failures(
        self,
        k: int,
        l_div: int,
        sensitive: Sequence[str],
        t: float = 1.0,
        overall: Sequence[dict[str, float]] = (),
    ) -> list[str]:
        """Why the group fails (empty when it passes); ``overall`` is the whole table's
        distribution of each sensitive column (:func:`distribution`), checked against ``t``."""
        out = []
        if len(self.persons) < k:
            out.append(f"{len(self.persons)} person(s) < k={k}")
        for name, achieved in zip(sensitive, self.diversity(), strict=True):
            if achieved < l_div:
                out.append(f"{name}: l={achieved} < {l_div}")
        for name, held, whole in zip(sensitive, self.values, overall, strict=False):
            if t_distance(held, whole) > t:
                out.append(f"{name}: t > {t}")
        return out


def distribution(held: dict[str, set[str]]) -> dict[str, float]:
    """The share of each value among persons (person → their values), each person weighing one,
    shared among their distinct values."""
    out: dict[str, float] = {}
    for values in held.values():
        for value in values:
            out[value] = out.get(value, 0.0) + 1 / len(values)
    total = sum(out.values())
    return {v: share / total for v, share in out.items()} if total else {}


def held_values(rows: Sequence[Row], column: int) -> dict[str, set[str]]:
    """person → the values of sensitive ``column`` over their rows."""
    held: dict[str, set[str]] = {}
    for row in rows:
        held.setdefault(row.person, set()).add(row.sensitive[column])
    return held


def t_distance(held: dict[str, set[str]], overall: dict[str, float]) -> float:
    """The variational distance (earth mover's distance with equal ground distances) between the
    distribution of ``held`` and ``overall``."""
    mine = distribution(held)
    return sum(abs(mine.get(v, 0.0) - overall.get(v, 0.0)) for v in {*mine, *overall}) / 2


def per_person_l(held: dict[str, set[str]]) -> int:
    """min over values v of (1 + distinct values held by the persons without v); 0 if empty."""
    every = set().union(*held.values()) if held else set()
    if not every:
        return 0
    best = len(every)
    for value in every:
        others: set[str] = set()
        for values in held.values():
            if value not in values:
                others |= values
        best = min(best, 1 + len(others))
        if best == 1:
            break
    return best


class Generaliser:
    """Generalised values per column and level, computed once per distinct value."""

    def __init__(self, operators: Sequence[Operator]) -> None:
        self.operators = list(operators)
        self._memo: list[dict[tuple[str | None, int], str]] = [{} for _ in operators]

    def value(self, column: int, value: str | None, level: int) -> str:
        """``value`` of quasi-identifier ``column`` at ``level``."""
        memo = self._memo[column]
        key = (value, level)
        found = memo.get(key)
        if found is None:
            found = memo[key] = self.operators[column].generalise(value, level)
        return found

    def row(self, row: Row, levels: Sequence[int]) -> tuple[str, ...]:
        """The row's quasi-identifiers at ``levels``."""
        return tuple(self.value(i, v, levels[i]) for i, v in enumerate(row.qi))


def groups(
    rows: Sequence[Row], generaliser: Generaliser, levels: Sequence[int], sensitive: int
) -> list[Group]:
    """The persons of ``rows`` grouped by signature at ``levels`` (``sensitive`` columns)."""
    combos: dict[str, set[tuple[str, ...]]] = {}
    for row in rows:
        combos.setdefault(row.person, set()).add(generaliser.row(row, levels))
    by_signature: dict[Signature, Group] = {}
    signature_of: dict[str, Signature] = {}
    for person, found in combos.items():
        signature = tuple(sorted(found))
        signature_of[person] = signature
        group = by_signature.get(signature)
        if group is None:
            group = by_signature[signature] = Group(
                signature, values=[{} for _ in range(sensitive)]
            )
        group.persons.add(person)
    for row in rows:
        group = by_signature[signature_of[row.person]]
        for i, value in enumerate(row.sensitive):
            group.values[i].setdefault(row.person, set()).add(value)
    return list(by_signature.values())
