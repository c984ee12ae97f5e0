"""Files custos writes for people: private to their owner, and safe to open in a spreadsheet.

Every export, report, release, checkpoint and key is created with mode 0600 whatever the umask
(they hold personal data or secrets), and written atomically (a reader never sees half a
file). Every CSV custos writes goes through :func:`csv_writer`, which neutralises cells that a
spreadsheet would run as a formula (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

PRIVATE = 0o600
#: First characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@contextmanager
def _private_descriptor(path: Path) -> Iterator[int]:
    """A file descriptor, mode 0600, of a temporary file beside ``path`` that is renamed into
    place when the block ends without error and removed when it fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, PRIVATE)  # mkstemp's 0600 already; said here so it never depends on it
        yield fd
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@contextmanager
def private_file(path: Path) -> Iterator[TextIO]:
    """A text file to write at ``path``, mode 0600, that appears whole on success or not at all
    (written beside it under a temporary name, renamed into place at the end)."""
    with (
        _private_descriptor(path) as fd,
        os.fdopen(fd, "w", encoding="utf-8", newline="") as handle,
    ):
        yield handle


def write_private(path: Path, content: str) -> Path:
    """Write ``content`` to ``path``, readable and writable by its owner only (atomically)."""
    with private_file(path) as handle:
        handle.write(content)
    return path


def write_private_bytes(path: Path, content: bytes) -> Path:
    """Write the bytes ``content`` to ``path`` as :func:`write_private` writes text."""
    with _private_descriptor(path) as fd, os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return path


def csv_cell(value: Any) -> Any:
    """A cell as written to CSV: text that a spreadsheet would run as a formula (it begins
    with ``= + - @``, a tab or a carriage return) gets a leading single quote, so it is shown
    as text. Phone numbers in E.164 (``+49…``) get it too: a spreadsheet would otherwise read
    them as formulas. Numbers custos computes are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_value(cell: str) -> str:
    """The value :func:`csv_cell` wrote as ``cell`` (its leading quote taken off again): for
    files custos wrote to be read back (``custos quarantine export``)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


class _SafeWriter:
    """A :func:`csv.writer` whose every cell passes through :func:`csv_cell`."""

    def __init__(self, handle: TextIO) -> None:
        self._writer = csv.writer(handle, lineterminator="\n")

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row."""
        self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write many rows."""
        for row in rows:
            self.writerow(row)


def csv_writer(handle: TextIO) -> _SafeWriter:
    """The CSV writer for every CSV custos writes for people (cells neutralised, ``\\n`` ends)."""
    return _SafeWriter(handle)
