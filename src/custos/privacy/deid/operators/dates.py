"""Dates (ISO 8601) to month, quarter, year and decade: 1985-06-14 → 1985-06 → 1985-Q2 → 1985 →
198* → *."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from custos.privacy.deid.operators.base import HIDDEN

_ISO = re.compile(r"^\d{4}-\d{2}(-\d{2})?([T ].*)?$")
STEPS = ("exact", "month", "quarter", "year", "decade")


class Dates:
    """Exact date, month, quarter, year, decade, hidden."""

    name: ClassVar[str] = "dates"
    levels = len(STEPS)

    @classmethod
    def accepts(cls, column: str, values: Sequence[str]) -> bool:
        """Columns whose every value is an ISO date or time."""
        return bool(values) and all(_ISO.match(v) for v in values)

    @classmethod
    def build(cls, values: Sequence[str]) -> Dates:
        """One ladder suits every date column."""
        return cls()

    def generalise(self, value: str | None, level: int) -> str:
        """``value`` cut to the precision of ``level``."""
        if value is None or level >= self.levels or not _ISO.match(value):
            return HIDDEN
        if level == 0:
            return value[:10]
        if level == 1:
            return value[:7]
        if level == 2:
            return f"{value[:4]}-Q{(int(value[5:7]) + 2) // 3}"
        if level == 3:
            return value[:4]
        return value[:3] + HIDDEN

    def describe(self, level: int) -> str:
        """E.g. ``year``."""
        return STEPS[level] if level < self.levels else "hidden"
