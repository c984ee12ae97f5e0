"""The contract of a generalisation operator: a ladder of ever coarser versions of a value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

#: What every operator shows at its top level: the value is suppressed.
HIDDEN = "*"


class Operator(Protocol):
    """Generalises the values of one column; level 0 is the value itself, ``levels`` hides it."""

    name: ClassVar[str]
    levels: int

    def generalise(self, value: str | None, level: int) -> str:
        """``value`` at ``level`` (0 … ``levels``); a missing value is hidden at every level."""
        ...

    def describe(self, level: int) -> str:
        """What ``level`` does, in a few words (for the release report)."""
        ...


class OperatorType(Protocol):
    """A kind of operator: says whether it suits a column and builds one for its values."""

    name: ClassVar[str]

    @classmethod
    def accepts(cls, column: str, values: Sequence[str]) -> bool:
        """Does this operator suit ``column`` with these (non-empty) values?"""
        ...

    @classmethod
    def build(cls, values: Sequence[str]) -> Operator:
        """An operator for a column with these values."""
        ...
