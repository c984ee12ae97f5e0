"""The least generalisation that makes a table k-anonymous, l-diverse and t-close per person.

Every combination of generalisation levels (the lattice) is tried, or, past
:data:`MAX_NODES` combinations, a greedy climb raises one quasi-identifier at a time. At each
combination the persons of failing groups would be suppressed (all of their rows); combinations
that suppress more than ``max_suppression`` of the persons are out. Of the rest the one that
loses least wins: mean generalisation height plus the share of suppressed persons.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from custos.core.errors import CustosError
from custos.privacy.deid.checks import (
    Generaliser,
    Group,
    Row,
    distribution,
    groups,
    held_values,
    t_distance,
)
from custos.privacy.deid.operators import Operator

MAX_NODES = 20_000


@dataclass
class Plan:
    """A way to release the table: levels per quasi-identifier and who is suppressed."""

    levels: tuple[int, ...]
    kept: list[Group]
    failing: list[Group]
    persons: int
    loss: float = 0.0
    suppressed: set[str] = field(default_factory=set)

    @property
    def k(self) -> int:
        """The smallest number of persons in a released group (the k achieved)."""
        return min((len(g.persons) for g in self.kept), default=0)

    @property
    def l(self) -> int:  # noqa: E743 - the name of the measure
        """The smallest per-person diversity of a released group (the l achieved)."""
        return min((min(g.diversity(), default=0) for g in self.kept), default=0)


class Refused(CustosError):
    """No generalisation within the suppression limit makes the table safe to release."""

    def __init__(
        self,
        message: str,
        failing: list[str],
        *,
        counts: Mapping[str, float] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.failing = failing  # counts and levels only, never a failing group's values
        self.counts = dict(counts or {})


def _evaluate(
    rows: Sequence[Row],
    generaliser: Generaliser,
    levels: tuple[int, ...],
    k: int,
    l_div: int,
    sensitive: Sequence[str],
    t: float,
    overall: Sequence[dict[str, float]],
) -> Plan:
    found = groups(rows, generaliser, levels, len(sensitive))
    kept: list[Group] = []
    failing: list[Group] = []
    for group in found:
        (failing if group.failures(k, l_div, sensitive, t, overall) else kept).append(group)
    persons = sum(len(g.persons) for g in found)
    suppressed = {p for g in failing for p in g.persons}
    heights = [
        level / op.levels for level, op in zip(levels, generaliser.operators, strict=True)
    ] or [0.0]
    share = len(suppressed) / persons if persons else 1.0
    loss = sum(heights) / len(heights) + share
    return Plan(levels, kept, failing, persons, loss, suppressed)


def _better(plan: Plan, best: Plan | None) -> bool:
    if best is None:
        return True
    return (plan.loss, len(plan.suppressed), plan.levels) < (
        best.loss,
        len(best.suppressed),
        best.levels,
    )


def deidentify(
    rows: Sequence[Row],
    operators: Sequence[Operator],
    *,
    columns: Sequence[str],
    sensitive: Sequence[str],
    k: int,
    l_div: int,
    max_suppression: float,
    floors: Sequence[int] | None = None,
    fixed: Sequence[bool] | None = None,
    t: float = 1.0,
) -> Plan:
    """The plan that releases ``rows`` k-anonymous, l-diverse and t-close (each group's
    distribution of a sensitive column within variational distance ``t`` of the whole table's)
    per person with the least loss, suppressing at most ``max_suppression`` of the persons;
    :class:`Refused` when none does.

    ``floors`` are the finest level each quasi-identifier may take (a column released before is
    released at that level or coarser); a ``fixed`` column stays at its floor (a column an
    earlier, joinable release let out, checked in the combined view but not searched)."""
    if k < 1 or l_div < 1:
        raise CustosError("k and l must be at least 1")
    generaliser = Generaliser(operators)
    overall = [distribution(held_values(rows, i)) for i in range(len(sensitive))]
    low = [
        min(f, op.levels) for f, op in zip(floors or [0] * len(operators), operators, strict=True)
    ]
    pinned = fixed or [False] * len(operators)
    ladders = [
        range(lo, lo + 1 if pin else op.levels + 1)
        for lo, pin, op in zip(low, pinned, operators, strict=True)
    ]
    size = math.prod(len(r) for r in ladders)
    limit = max_suppression

    def allowed(plan: Plan) -> bool:
        return bool(plan.kept) and len(plan.suppressed) <= limit * plan.persons

    best: Plan | None = None
    # Fewest failing persons, then the most generalised, to explain a refusal: "even with age
    # hidden, 1 group of 81 < k" says more than the same count at exact values.
    closest: Plan | None = None
    if size <= MAX_NODES:
        candidates = (
            _evaluate(rows, generaliser, tuple(levels), k, l_div, sensitive, t, overall)
            for levels in itertools.product(*ladders)
        )
        for plan in candidates:
            if allowed(plan) and _better(plan, best):
                best = plan
            if closest is None or (len(plan.suppressed), -plan.loss) < (
                len(closest.suppressed),
                -closest.loss,
            ):
                closest = plan
    else:
        best, closest = _climb(
            rows, generaliser, ladders, (k, l_div, t), sensitive, overall, allowed
        )
    if best is not None:
        return best
    assert closest is not None
    raise _refusal(
        closest, generaliser, columns, (k, l_div, t), sensitive, overall, max_suppression
    )


def _climb(
    rows: Sequence[Row],
    generaliser: Generaliser,
    ladders: Sequence[range],
    limits: tuple[int, int, float],
    sensitive: Sequence[str],
    overall: Sequence[dict[str, float]],
    allowed: Callable[[Plan], bool],
) -> tuple[Plan | None, Plan]:
    """Greedy: raise the quasi-identifier whose next level leaves the fewest persons failing."""
    k, l_div, t = limits
    tops = [ladder[-1] for ladder in ladders]
    levels = tuple(ladder[0] for ladder in ladders)
    plan = _evaluate(rows, generaliser, levels, k, l_div, sensitive, t, overall)
    closest = plan
    while not allowed(plan):
        steps = [
            _evaluate(
                rows,
                generaliser,
                tuple(v + (j == i) for j, v in enumerate(levels)),
                k,
                l_div,
                sensitive,
                t,
                overall,
            )
            for i, v in enumerate(levels)
            if v < tops[i]
        ]
        if not steps:
            return None, closest
        plan = min(steps, key=lambda p: (len(p.suppressed), p.loss))
        levels = plan.levels
        if len(plan.suppressed) <= len(closest.suppressed):
            closest = plan
    return plan, closest


def _refusal(
    plan: Plan,
    generaliser: Generaliser,
    columns: Sequence[str],
    limits: tuple[int, int, float],
    sensitive: Sequence[str],
    overall: Sequence[dict[str, float]],
    max_suppression: float,
) -> Refused:
    """Counts only: a group that fails is small or uniform, so its values would single out the
    persons in it (an exact age and postcode of one person is what an attacker links on)."""
    k, l_div, t = limits
    small = [g for g in plan.failing if len(g.persons) < k]
    described = []
    if small:
        held = sum(len(g.persons) for g in small)
        described.append(f"{len(small)} group(s) with < k={k} persons, holding {held} person(s)")
    counts: dict[str, int] = {
        "persons": plan.persons,
        "failing_groups": len(plan.failing),
        "failing_persons": len(plan.suppressed),
        "groups_below_k": len(small),
        "persons_below_k": sum(len(g.persons) for g in small),
    }
    for i, name in enumerate(sensitive):
        uniform = [(g, g.diversity()[i]) for g in plan.failing if g.diversity()[i] < l_div]
        if uniform:
            lowest = min(achieved for _, achieved in uniform)
            held = sum(len(g.persons) for g, _ in uniform)
            described.append(
                f"{len(uniform)} group(s) with {name}: l={lowest} < {l_div}, "
                f"holding {held} person(s)"
            )
            counts[f"groups_below_l:{name}"] = len(uniform)
        skewed = [g for g in plan.failing if t_distance(g.values[i], overall[i]) > t]
        if skewed:
            held = sum(len(g.persons) for g in skewed)
            described.append(
                f"{len(skewed)} group(s) with {name}: t > {t}, holding {held} person(s)"
            )
            counts[f"groups_above_t:{name}"] = len(skewed)
    # (the columns of earlier releases, fixed in the combined view, follow ``columns``: not named)
    levels = ", ".join(
        f"{c} {op.describe(level)}"
        for c, op, level in zip(columns, generaliser.operators, plan.levels, strict=False)
    )
    described.append(f"the closest generalisation tried: {levels or 'as is'}")
    share = len(plan.suppressed) / plan.persons if plan.persons else 1.0
    return Refused(
        f"no release of {plan.persons} person(s) is {k}-anonymous, {l_div}-diverse and {t}-close "
        "per person "
        f"with at most {max_suppression:.0%} of them suppressed; the closest ({levels or 'as is'}) "
        f"would suppress {share:.0%}, in {len(plan.failing)} failing group(s)",
        described,
        counts=counts,
        hint="lower --k or --l, raise --t, allow more suppression (--max-suppression), release fewer "
        "quasi-identifiers, or add more persons",
    )
