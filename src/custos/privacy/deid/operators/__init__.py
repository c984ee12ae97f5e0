"""Generalisation operators, one per module; this registry is the one place that lists them.

A column gets the operator named for it (``--generalise postcode=prefix``), else the first in
:data:`OPERATORS` that accepts it: numbers → bands, postcodes → prefix, dates → dates, anything
else → categorical.
"""

from __future__ import annotations

from collections.abc import Sequence

from custos.core.errors import ConfigError
from custos.privacy.deid.operators.bands import Bands
from custos.privacy.deid.operators.base import HIDDEN, Operator, OperatorType
from custos.privacy.deid.operators.categorical import Categorical
from custos.privacy.deid.operators.dates import Dates
from custos.privacy.deid.operators.prefix import Prefix

#: In the order the automatic choice tries them (the last accepts every column).
OPERATORS: dict[str, type[OperatorType]] = {
    "prefix": Prefix,
    "bands": Bands,
    "dates": Dates,
    "categorical": Categorical,
}


def operator_for(column: str, values: Sequence[str], name: str | None = None) -> Operator:
    """The operator for ``column`` with these non-empty values (named, or chosen by them)."""
    if name is not None:
        chosen = OPERATORS.get(name)
        if chosen is None:
            raise ConfigError(
                f"unknown generalisation operator {name!r} for column {column}",
                hint=f"use one of: {', '.join(OPERATORS)}",
            )
        return chosen.build(values)
    for kind in OPERATORS.values():
        if kind.accepts(column, values):
            return kind.build(values)
    return Categorical()  # pragma: no cover - categorical accepts everything


__all__ = ["HIDDEN", "OPERATORS", "Operator", "operator_for"]
