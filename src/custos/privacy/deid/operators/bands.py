"""Numbers (ages, counts) into ever wider bands: 34 → 30-34 → 30-39 → 20-39 → *. A top-coded
value (``90+``) is already a band of its own: it stays as it is until hidden."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from custos.privacy.deid.operators.base import HIDDEN

WIDTHS = (1, 5, 10, 20)


def _number(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.removesuffix("+")))
    except ValueError:
        return None


class Bands:
    """Integer bands of width 5, 10 and 20, then hidden."""

    name: ClassVar[str] = "bands"
    levels = len(WIDTHS)

    @classmethod
    def accepts(cls, column: str, values: Sequence[str]) -> bool:
        """Columns whose every value is a number."""
        return bool(values) and all(_number(v) is not None for v in values)

    @classmethod
    def build(cls, values: Sequence[str]) -> Bands:
        """One ladder suits every numeric column."""
        return cls()

    def generalise(self, value: str | None, level: int) -> str:
        """The band of ``value`` at ``level``."""
        number = _number(value)
        if number is None or level >= self.levels:
            return HIDDEN
        if value is not None and value.endswith("+"):
            return value
        width = WIDTHS[level]
        if width == 1:
            return str(number)
        low = number // width * width
        return f"{low}-{low + width - 1}"

    def describe(self, level: int) -> str:
        """E.g. ``bands of 10``."""
        if level >= self.levels:
            return "hidden"
        return "exact" if WIDTHS[level] == 1 else f"bands of {WIDTHS[level]}"
