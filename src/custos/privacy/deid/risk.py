"""The re-identification risk of a release, as ARX reports it, counted per person.

A pure function of the released rows (person, generalised quasi-identifiers, sensitive values)
and of the population they were drawn from (the same persons before suppression, generalised
alike). Persons are grouped by signature as in :mod:`custos.privacy.deid.checks`.

* **prosecutor** risk: the attacker knows the target is in the release; a person's risk is
  1 / the size of their group (max and mean over released persons);
* **journalist** risk: the attacker only knows the target is in the population; 1 / the size
  of the matching population group (max and mean over released persons);
* **marketer** risk: the expected share re-identified when matching everyone, groups / persons;
* **unique share**: the share of released persons alone in their group;
* **t-closeness** per sensitive column: the largest variational distance (earth mover's distance
    with equal ground distances) between a group's value distribution and the whole release's
  (:func:`custos.privacy.deid.checks.t_distance`, which the search holds to its limit against
  the whole extract);
* **suppressed**: the persons of the population left out, and their share.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from custos.privacy.deid.checks import Row, Signature, distribution, held_values, t_distance


@dataclass(frozen=True)
class Risk:
    """The risk figures of one release (shares and probabilities between 0 and 1)."""

    persons: int
    groups: int
    prosecutor_max: float
    prosecutor_mean: float
    journalist_max: float
    journalist_mean: float
    marketer: float
    unique_share: float
    t_closeness: dict[str, float]
    suppressed_persons: int
    suppressed_share: float

    def as_dict(self) -> dict[str, object]:
        """The figures as a JSON-ready mapping."""
        return asdict(self)


def signatures(rows: Sequence[Row]) -> dict[str, Signature]:
    """person → their signature: the sorted set of their rows' quasi-identifier combinations."""
    combos: dict[str, set[tuple[str, ...]]] = {}
    for row in rows:
        combos.setdefault(row.person, set()).add(tuple(str(v) for v in row.qi))
    return {p: tuple(sorted(found)) for p, found in combos.items()}


def assess(
    released: Sequence[Row],
    sensitive: Sequence[str],
    population: Sequence[Row] | None = None,
) -> Risk:
    """The risk of releasing ``released``; ``population`` (default: the release itself) holds the
    persons before suppression with their quasi-identifiers generalised as released."""
    signature = signatures(released)
    sizes = Counter(signature.values())
    universe = signatures(population) if population is not None else signature
    population_sizes = Counter(universe.values())
    persons = len(signature)
    prosecutor = [1 / sizes[s] for s in signature.values()]
    journalist = [1 / max(population_sizes[s], sizes[s]) for s in signature.values()]
    suppressed = len(set(universe) - set(signature))
    return Risk(
        persons=persons,
        groups=len(sizes),
        prosecutor_max=max(prosecutor, default=0.0),
        prosecutor_mean=_mean(prosecutor),
        journalist_max=max(journalist, default=0.0),
        journalist_mean=_mean(journalist),
        marketer=len(sizes) / persons if persons else 0.0,
        unique_share=sum(1 for s in signature.values() if sizes[s] == 1) / persons
        if persons
        else 0.0,
        t_closeness={
            name: _t_closeness(released, signature, i) for i, name in enumerate(sensitive)
        },
        suppressed_persons=suppressed,
        suppressed_share=suppressed / len(universe) if universe else 0.0,
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _t_closeness(rows: Sequence[Row], signature: dict[str, Signature], column: int) -> float:
    """The largest variational distance of a group's distribution of column from the whole's."""
    held = held_values(rows, column)
    overall = distribution(held)
    by_group: dict[Signature, dict[str, set[str]]] = {}
    for person, values in held.items():
        by_group.setdefault(signature[person], {})[person] = values
    worst = max((t_distance(group, overall) for group in by_group.values()), default=0.0)
    return round(worst, 6)
