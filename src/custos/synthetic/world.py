"""Shared state and helpers for writing the silos of one synthetic company."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from custos.synthetic.geo import Phone, format_phone
from custos.synthetic.people import Person, PersonFactory

__all__ = ["SiloFile", "World", "phone_variant", "split_silo", "write_csv", "write_map"]


@dataclass(frozen=True, slots=True)
class SiloFile:
    """One generated source file and how to ingest it."""

    path: Path
    source: str
    kind: str  # "records" | "interactions" | "consents"
    map_path: Path | None
    rows: int


@dataclass
class World:
    """Everything the silo writers share: the people, the RNG and the truth table."""

    out_dir: Path
    rng: random.Random
    factory: PersonFactory
    persons: list[Person]
    crm_no: dict[str, str] = field(default_factory=dict)
    shop_accounts: list[tuple[Person, str]] = field(default_factory=list)
    orders_by_pid: dict[str, list[str]] = field(default_factory=dict)
    truth: list[tuple[str, str, str]] = field(default_factory=list)

    def true(self, source: str, record_id: str, person: Person) -> None:
        """Remember which true person a record belongs to."""
        self.truth.append((source, record_id, person.pid))


def phone_variant(rng: random.Random, phone: Phone, intl_rate: float = 0.35) -> str:
    """The phone written the way a person or clerk might type it."""
    r = rng.random()
    if r < intl_rate:
        return format_phone(phone, rng.randrange(4) if r < intl_rate / 3 else 0, international=True)
    return format_phone(phone, 0 if rng.random() < 0.5 else rng.randrange(4))


#: The contact columns of a silo written under canonical field names, in their order.
CONTACT_COLUMNS = ("email", "phone", "date_of_birth", "street", "postcode", "city", "country")
#: The columns of ``truth.csv``: the true person behind every record and interaction written.
TRUTH_HEADER = ("source", "record_id", "person_id")


def start(out_dir: Path, seed: int) -> tuple[Path, random.Random]:
    """A generator's output folder (created if missing) and its random source, seeded."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out, random.Random(seed)


def write_truth(out: Path, truth: Iterable[Sequence[object]]) -> Path:
    """Write ``truth.csv`` (:data:`TRUTH_HEADER`) into ``out``; its path."""
    path = out / "truth.csv"
    write_csv(path, TRUTH_HEADER, truth)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a UTF-8 CSV with "\\n" line endings; returns the number of data rows."""
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(row)
            n += 1
    return n


def write_map(path: Path, fields: dict[str, str], **top: str) -> Path:
    """Write a map file: top-level scalars plus a ``fields:`` canonical->column mapping."""
    lines = [f"{k}: {v}" for k, v in top.items()]
    lines.append("fields:")
    lines += [f"  {k}: {v}" for k, v in fields.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def split_silo(path: Path, folder: Path) -> tuple[Path, Path]:
    """A silo file's rows in two files in ``folder`` (``a_NAME``, ``b_NAME``), every other row
    each, in its own format (CSV with its header, JSON lines, Parquet): data that arrives in
    two parts, for incremental runs."""
    import pyarrow.parquet as pq

    first, second = folder / f"a_{path.name}", folder / f"b_{path.name}"
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        pq.write_table(table.take(list(range(0, table.num_rows, 2))), first)
        pq.write_table(table.take(list(range(1, table.num_rows, 2))), second)
    elif path.suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        first.write_text("".join(lines[::2]), encoding="utf-8")
        second.write_text("".join(lines[1::2]), encoding="utf-8")
    else:
        with path.open(encoding="utf-8", newline="") as fh:
            header, *rows = list(csv.reader(fh))
        for out, part in ((first, rows[::2]), (second, rows[1::2])):
            with out.open("w", encoding="utf-8", newline="") as fh:
                csv.writer(fh).writerows([header, *part])
    return first, second
