"""Categories without an order (sex, blood group): the value or nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from custos.privacy.deid.operators.base import HIDDEN


class Categorical:
    """Exact value, then hidden: the fallback for any column."""

    name: ClassVar[str] = "categorical"
    levels = 1

    @classmethod
    def accepts(cls, column: str, values: Sequence[str]) -> bool:
        """Any column."""
        return True

    @classmethod
    def build(cls, values: Sequence[str]) -> Categorical:
        """One ladder suits every column."""
        return cls()

    def generalise(self, value: str | None, level: int) -> str:
        """The value, or hidden."""
        return HIDDEN if value is None or level >= self.levels else value

    def describe(self, level: int) -> str:
        """``exact`` or ``hidden``."""
        return "exact" if level < self.levels else "hidden"
