"""Codes read from the left (postcodes): 10115 → 1011* → 101** → … → *."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from custos.privacy.deid.operators.base import HIDDEN

NAMES = ("postcode", "postal_code", "zip", "zipcode", "zip_code", "plz")


class Prefix:
    """Keep the first characters and mask the rest, one more at each level."""

    name: ClassVar[str] = "prefix"

    def __init__(self, length: int) -> None:
        self.levels = max(length, 1)

    @classmethod
    def accepts(cls, column: str, values: Sequence[str]) -> bool:
        """Columns named like a postcode."""
        return column.lower() in NAMES

    @classmethod
    def build(cls, values: Sequence[str]) -> Prefix:
        """A ladder as long as the longest code."""
        return cls(max((len(v) for v in values), default=1))

    def generalise(self, value: str | None, level: int) -> str:
        """The first ``len - level`` characters, the rest masked."""
        if value is None or level >= self.levels:
            return HIDDEN
        keep = max(len(value) - level, 0)
        return value[:keep] + HIDDEN * (len(value) - keep) if keep else HIDDEN

    def describe(self, level: int) -> str:
        """E.g. ``last 2 characters masked``."""
        if level >= self.levels:
            return "hidden"
        return "exact" if level == 0 else f"last {level} characters masked"
