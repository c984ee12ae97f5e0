"""Errors custos raises on purpose; each carries a hint that tells the user the fix.

Messages never contain personal data: name the row, the field and the record id, not the value.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CustosError(Exception):
    """Base class of the errors custos raises on purpose, with an optional fix hint."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(CustosError):
    """A setting, map file or command-line option is wrong."""


class StoreError(CustosError):
    """The store cannot be opened, migrated or written."""


class InputError(CustosError):
    """An input file cannot be read at all (as opposed to single bad rows, which are quarantined)."""


class NotFoundError(CustosError):
    """A profile, source or record that was asked for does not exist."""


class AccessDenied(CustosError):
    """The guard refused: the purpose has no lawful basis for this person or data."""


def unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    """``unknown WHAT 'NAME'``, and ``; did you mean 'X'?`` when a known name is close (a typo)."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
    return f"unknown {what} {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
