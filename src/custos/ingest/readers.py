"""Source readers: split a file into units of work, and parse a unit into rows.

Splitting is cheap and happens in the main process (raw bytes cut at line ends, or Parquet record
batches); parsing and everything after it can run in worker processes. Every row keeps its
physical line number (CSV, JSON Lines) or row number (Parquet), so a bad row can be quarantined
and found again. A row that cannot be parsed comes through with ``error`` set and its raw text,
never dropped. Adding a format is one class here and one entry in :data:`READERS`.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import orjson

from custos.core.errors import InputError

CHUNK_BYTES = 1 << 20
#: The fix of a row with bytes its file's encoding does not know.
NOT_UTF8_FIX = (
    "re-save the file as UTF-8, or pass --encoding (e.g. cp1252) when the whole file is in "
    "another encoding"
)


@dataclass(slots=True)
class RawRow:
    """One row as read: its values, or the raw text and why it could not be parsed (neither:
    a blank line, skipped and counted as such)."""

    line_no: int
    values: dict[str, Any] | None
    raw: str | None = None
    error: str | None = None
    fix: str | None = None  # how to repair the row, when the reader knows better than "repair"


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of work: rows starting at ``first`` (line or row number), ``size`` bytes or rows."""

    first: int
    data: Any
    rows: int
    size: int


class Reader:
    """A source reader: ``columns`` (when the format has a header), units, and their parser."""

    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: Path, batch_size: int) -> None:
        self.path = path
        self.batch_size = batch_size
        self.columns: list[str] | None = None
        self.total = path.stat().st_size

    def units(self) -> Iterator[Unit]:
        """Yield the file in units of about ``batch_size`` rows."""
        raise NotImplementedError

    def parse(self, unit: Unit) -> list[RawRow]:
        """Parse one unit into rows (runs in worker processes: no open files here)."""
        raise NotImplementedError

    def batches(self) -> Iterator[list[RawRow]]:
        """Yield the file's rows in batches (units parsed in this process)."""
        for unit in self.units():
            yield self.parse(unit)


def _line_units(handle: BinaryIO, batch_size: int, first_line: int, quoted: bool) -> Iterator[Unit]:
    """Cut a binary stream at line ends into units of about ``batch_size`` lines.

    With ``quoted``, a cut never falls inside a double-quoted field (CSV fields may hold line
    breaks): the number of quote characters before the cut must be even.
    """
    buffer = b""
    line = first_line
    while True:
        block = handle.read(CHUNK_BYTES)
        if block:
            buffer += block
        lines = buffer.count(b"\n")
        if block and lines < batch_size:
            continue
        if not block:
            if buffer.strip():
                yield Unit(line, buffer, buffer.count(b"\n") + 1, len(buffer))
            return
        cut = len(buffer)
        for _ in range(lines):
            cut = buffer.rfind(b"\n", 0, cut)
            if cut < 0 or not quoted or buffer.count(b'"', 0, cut) % 2 == 0:
                break
        if cut < 0:
            continue  # one quoted field spans the whole buffer: read on
        unit, buffer = buffer[: cut + 1], buffer[cut + 1 :]
        rows = unit.count(b"\n")
        yield Unit(line, unit, rows, len(unit))
        line += rows


class CsvReader(Reader):
    """Comma-, semicolon- or tab-separated files with a header line; UTF-8, BOM allowed.

    Each row is decoded on its own: a row with bytes that are not valid in the file's encoding
    is quarantined with its line number and the fix, and the other rows keep theirs (one stray
    Windows-1252 byte does not turn every ``Jürgen`` of a UTF-8 file into ``JÃ¼rgen``).
    """

    extensions = (".csv", ".tsv")

    def __init__(self, path: Path, batch_size: int, encoding: str | None = None) -> None:
        super().__init__(path, batch_size)
        with path.open("rb") as handle:
            head = handle.readline()
            sample = head + handle.read(CHUNK_BYTES)
        self.encoding = encoding or _guess_encoding(sample)
        text = head.decode(self.encoding, "replace").rstrip("\r\n")
        if path.suffix.lower() == ".tsv":
            self.delimiter = "\t"
        else:
            self.delimiter = ";" if text.count(";") > text.count(",") else ","
        try:
            header = next(csv.reader([text], delimiter=self.delimiter)) if text else []
        except csv.Error as exc:
            raise InputError(f"{path.name}: cannot read the header line: {exc}") from exc
        self.columns = [h.strip() for h in header]
        if len(set(self.columns)) != len(self.columns):
            raise InputError(f"{path.name}: the header repeats a column name")
        self._header_bytes = len(head)

    def units(self) -> Iterator[Unit]:
        """Cut the file after the header into units of whole CSV records."""
        if not self.columns:
            return
        with self.path.open("rb") as handle:
            handle.seek(self._header_bytes)
            yield from _line_units(handle, self.batch_size, 2, quoted=True)

    def parse(self, unit: Unit) -> list[RawRow]:
        """Parse the CSV records of a unit; a malformed record becomes an error row."""
        csv.field_size_limit(sys.maxsize)
        columns = self.columns or []
        width = len(columns)
        text = unit.data.decode(self.encoding, "replace")
        damaged = "\ufffd" in text  # only then check each row for bytes that were not UTF-8
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        out: list[RawRow] = []
        consumed = 0
        while True:
            start = unit.first + consumed
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                consumed = reader.line_num
                out.append(RawRow(start, None, None, f"unreadable line: {exc}"))
                continue
            consumed = reader.line_num
            if not fields or (not fields[0].strip() and not "".join(fields).strip()):
                # A blank line, or one of empty cells only (`;;;` as spreadsheets save empty
                # rows): no data, counted as skipped.
                out.append(RawRow(start, None))
                continue
            if len(fields) != width:
                reason = f"has {len(fields)} fields where the header has {width}"
                out.append(RawRow(start, None, _join(fields, self.delimiter), reason))
            elif damaged and any("\ufffd" in f for f in fields):
                reason = f"line {start} holds bytes that are not valid {self.encoding}"
                out.append(RawRow(start, None, _join(fields, self.delimiter), reason, NOT_UTF8_FIX))
            else:
                out.append(RawRow(start, dict(zip(columns, fields, strict=True))))
        return out


def _guess_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM), unless the sample is not valid UTF-8 and holds no UTF-8
    character beyond ASCII either: then Windows-1252, the encoding of spreadsheets saved on
    Western European Windows machines. A UTF-8 file with a few bad bytes stays UTF-8 (its bad
    rows are quarantined, see :meth:`CsvReader.parse`)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(sample, final=False)
    if "\ufffd" in text and text.replace("\ufffd", "").isascii():
        return "cp1252"
    return "utf-8"


def _join(fields: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerow(fields)
    return out.getvalue().rstrip("\r\n")


class JsonLinesReader(Reader):
    """One JSON object per line (``.jsonl``, ``.ndjson``); blank lines are skipped (and counted)."""

    extensions = (".jsonl", ".ndjson")

    def units(self) -> Iterator[Unit]:
        """Cut the file at line ends."""
        with self.path.open("rb") as handle:
            yield from _line_units(handle, self.batch_size, 1, quoted=False)

    def parse(self, unit: Unit) -> list[RawRow]:
        """Parse each line; a line that is not a JSON object becomes an error row."""
        out: list[RawRow] = []
        lines = unit.data.split(b"\n")
        if lines and not lines[-1].strip():
            lines.pop()  # the file's (or unit's) last line end, not a blank line
        for offset, line in enumerate(lines):
            line_no = unit.first + offset
            if not line.strip():
                out.append(RawRow(line_no, None))
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raw = line.decode("utf-8", "replace").rstrip("\r")
                if "\ufffd" in raw and b"\xef\xbf\xbd" not in line:  # JSON Lines are UTF-8
                    reason = f"line {line_no} holds bytes that are not valid utf-8"
                    out.append(RawRow(line_no, None, raw, reason, NOT_UTF8_FIX))
                else:
                    out.append(RawRow(line_no, None, raw, f"not valid JSON: {exc.msg}"))
                continue
            if isinstance(value, dict):
                out.append(RawRow(line_no, value))
            else:
                raw = line.decode("utf-8", "replace").rstrip("\r")
                out.append(RawRow(line_no, None, raw, "not a JSON object"))
        return out


class ParquetReader(Reader):
    """Apache Parquet files, read in record batches (never the whole file at once)."""

    extensions = (".parquet", ".pq")

    def __init__(self, path: Path, batch_size: int) -> None:
        super().__init__(path, batch_size)
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for broken files
            raise InputError(f"{path.name}: not a readable Parquet file: {exc}") from exc
        self.columns = list(parquet.schema_arrow.names)
        self.total = parquet.metadata.num_rows
        parquet.close()

    def units(self) -> Iterator[Unit]:
        """Yield Arrow record batches; the row number (1-based) stands in for the line number."""
        import pyarrow.parquet as pq

        first = 1
        with pq.ParquetFile(self.path) as parquet:
            for batch in parquet.iter_batches(batch_size=self.batch_size):
                yield Unit(first, batch, batch.num_rows, batch.num_rows)
                first += batch.num_rows

    def parse(self, unit: Unit) -> list[RawRow]:
        """Turn a record batch into rows."""
        return [RawRow(unit.first + i, values) for i, values in enumerate(unit.data.to_pylist())]


#: Registry of readers: adding a format is one class above and one entry here.
READERS: tuple[type[Reader], ...] = (CsvReader, JsonLinesReader, ParquetReader)
_TYPES = ["/".join(reader.extensions) for reader in READERS]
#: The file types in words, for help and hints: ".csv/.tsv, .jsonl/.ndjson or .parquet/.pq".
FILE_TYPES = ", ".join(_TYPES[:-1]) + " or " + _TYPES[-1]


def reader_for(path: Path, batch_size: int, encoding: str | None = None) -> Reader:
    """The reader for ``path``, chosen by its extension (``encoding`` for text formats)."""
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in CsvReader.extensions:
        return CsvReader(path, batch_size, encoding)
    for reader in READERS:
        if suffix in reader.extensions:
            return reader(path, batch_size)
    known = ", ".join(ext for r in READERS for ext in r.extensions)
    raise InputError(f"cannot read {path.name}: unknown extension", hint=f"use one of {known}")
