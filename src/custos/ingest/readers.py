"""Source readers: stream a file as batches of rows, one module-level class per format.

Every reader yields :class:`RawRow` batches with the physical line number (CSV, JSON Lines) or
row number (Parquet), so a bad row can be quarantined and found again. A row that cannot be
parsed at all comes through with ``error`` set and its raw text, never dropped.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import orjson

from custos.core.errors import InputError


@dataclass(slots=True)
class RawRow:
    """One row as read: its values, or the raw text and why it could not be parsed."""

    line_no: int
    values: dict[str, Any] | None
    raw: str | None = None
    error: str | None = None


class Reader:
    """A source reader: ``columns`` (when the format has a header) and batches of rows."""

    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: Path, batch_size: int) -> None:
        self.path = path
        self.batch_size = batch_size
        self.columns: list[str] | None = None
        self.size = path.stat().st_size
        self._position = 0

    def batches(self) -> Iterator[list[RawRow]]:
        """Yield the file's rows in batches of at most ``batch_size``."""
        raise NotImplementedError

    @property
    def position(self) -> int:
        """Bytes (or rows, for Parquet) consumed so far, for progress bars."""
        return self._position

    @property
    def total(self) -> int:
        """Total of :attr:`position` at the end of the file."""
        return self.size


def _track(handle: BinaryIO, reader: Reader) -> None:
    reader._position = handle.tell()


class CsvReader(Reader):
    """Comma-separated (or ``;``/tab, sniffed) files with a header line; UTF-8, BOM allowed."""

    extensions = (".csv", ".tsv")

    def batches(self) -> Iterator[list[RawRow]]:
        """Yield rows as dicts keyed by the header; malformed lines come back with an error."""
        csv.field_size_limit(sys.maxsize)
        with self.path.open("rb") as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
            sample = text.read(64 * 1024)
            text.seek(0)
            dialect: Any = csv.excel_tab if self.path.suffix == ".tsv" else csv.excel
            if self.path.suffix != ".tsv" and sample:
                first = sample.splitlines()[0] if sample.splitlines() else ""
                if first.count(";") > first.count(","):
                    dialect = _Semicolon
            rows = csv.reader(text, dialect)
            try:
                header = next(rows)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise InputError(f"{self.path.name}: cannot read the header line: {exc}") from exc
            self.columns = [h.strip() for h in header]
            if len(set(self.columns)) != len(self.columns):
                raise InputError(f"{self.path.name}: the header repeats a column name")
            width = len(self.columns)
            batch: list[RawRow] = []
            line_no = rows.line_num
            while True:
                try:
                    fields = next(rows)
                except StopIteration:
                    break
                except (csv.Error, UnicodeDecodeError) as exc:
                    batch.append(RawRow(rows.line_num, None, None, f"unreadable line: {exc}"))
                    line_no = rows.line_num
                    continue
                line_no += 1
                start = line_no
                line_no = rows.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if len(fields) != width:
                    raw = _join(fields)
                    reason = f"has {len(fields)} fields where the header has {width}"
                    batch.append(RawRow(start, None, raw, reason))
                else:
                    batch.append(RawRow(start, dict(zip(self.columns, fields, strict=True))))
                if len(batch) >= self.batch_size:
                    _track(handle, self)
                    yield batch
                    batch = []
            _track(handle, self)
            if batch:
                yield batch


class _Semicolon(csv.excel):
    delimiter = ";"


def _join(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    return out.getvalue().rstrip("\r\n")


class JsonLinesReader(Reader):
    """One JSON object per line (``.jsonl``, ``.ndjson``); blank lines are skipped."""

    extensions = (".jsonl", ".ndjson")

    def batches(self) -> Iterator[list[RawRow]]:
        """Yield each line's object; a line that is not a JSON object comes back with an error."""
        batch: list[RawRow] = []
        with self.path.open("rb") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raw = line.decode("utf-8", "replace").rstrip("\r\n")
                    batch.append(RawRow(line_no, None, raw, f"not valid JSON: {exc.msg}"))
                else:
                    if isinstance(value, dict):
                        batch.append(RawRow(line_no, value))
                    else:
                        raw = line.decode("utf-8", "replace").rstrip("\r\n")
                        batch.append(RawRow(line_no, None, raw, "not a JSON object"))
                if len(batch) >= self.batch_size:
                    _track(handle, self)
                    yield batch
                    batch = []
            _track(handle, self)
        if batch:
            yield batch


class ParquetReader(Reader):
    """Apache Parquet files, read in record batches (never the whole file at once)."""

    extensions = (".parquet", ".pq")

    def __init__(self, path: Path, batch_size: int) -> None:
        super().__init__(path, batch_size)
        import pyarrow.parquet as pq

        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for broken files
            raise InputError(f"{path.name}: not a readable Parquet file: {exc}") from exc
        self.columns = list(self._file.schema_arrow.names)
        self.size = self._file.metadata.num_rows

    def batches(self) -> Iterator[list[RawRow]]:
        """Yield rows as dicts; the row number (1-based) stands in for the line number."""
        row_no = 0
        for record_batch in self._file.iter_batches(batch_size=self.batch_size):
            batch = []
            for values in record_batch.to_pylist():
                row_no += 1
                batch.append(RawRow(row_no, values))
            self._position = row_no
            yield batch


#: Registry of readers: adding a format is one class above and one entry here.
READERS: tuple[type[Reader], ...] = (CsvReader, JsonLinesReader, ParquetReader)


def reader_for(path: Path, batch_size: int) -> Reader:
    """The reader for ``path``, chosen by its extension."""
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    for reader in READERS:
        if suffix in reader.extensions:
            return reader(path, batch_size)
    known = ", ".join(ext for r in READERS for ext in r.extensions)
    raise InputError(f"cannot read {path.name}: unknown extension", hint=f"use one of {known}")
