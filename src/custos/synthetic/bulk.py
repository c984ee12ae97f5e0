"""Streaming generator of many person records for ingestion and matching benchmarks."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

from custos.synthetic.geo import format_phone
from custos.synthetic.people import Person, PersonFactory
from custos.synthetic.vocab import ascii_fold, street_variant, typo
from custos.synthetic.world import CONTACT_COLUMNS

__all__ = ["PEOPLE_COLUMNS", "iter_people_rows", "write_people_csv"]

PEOPLE_COLUMNS: tuple[str, ...] = (
    "record_id",
    "first_name",
    "last_name",
    *CONTACT_COLUMNS,
    "customer_id",
    "person_id",
)

# records per person: mean ~1.9
_RECORD_COUNTS = (1,) * 40 + (2,) * 38 + (3,) * 14 + (4,) * 6 + (5,) * 2
_COUNTRY_VARIANTS = {
    "DE": ("Germany", "Deutschland", "de", "DEU"),
    "GB": ("UK", "United Kingdom", "gb", "GBR"),
    "US": ("USA", "United States", "us", "U.S."),
}
_WINDOW = 20_000


def _name(s: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.10:
        return typo(s, rng)
    if r < 0.18:
        return ascii_fold(s)
    if r < 0.22:
        return s.upper()
    if r < 0.24:
        return s.lower()
    return s


def _person_rows(p: Person, rng: random.Random, factory: PersonFactory) -> list[list[str]]:
    rows: list[list[str]] = []
    k = rng.choice(_RECORD_COUNTS)
    has_cid = rng.random() < 0.7
    dob_iso = p.dob.isoformat()
    dob_de = f"{p.dob.day:02d}.{p.dob.month:02d}.{p.dob.year}"
    addr = p.address
    for j in range(k):
        if j == 0:
            phone = p.phone
            r = rng.random()
            phone_s = (
                "" if r < 0.12 else format_phone(phone, rng.randrange(2), international=r > 0.8)
            )
            dob = "" if rng.random() < 0.04 else (dob_de if rng.random() < 0.15 else dob_iso)
            rows.append(
                [
                    p.first_name,
                    p.last_name,
                    p.email,
                    phone_s,
                    dob,
                    addr.line(),
                    addr.postcode,
                    addr.city,
                    p.country,
                    p.customer_no if has_cid and rng.random() < 0.6 else "",
                ]
            )
            continue
        r = rng.random()
        if r < 0.12:
            email = ""
        elif r < 0.27:
            email = p.alt_email
        elif r < 0.37:
            email = p.email.upper()
        elif r < 0.40:
            email = f" {p.email} "
        else:
            email = p.email
        r = rng.random()
        if r < 0.2:
            phone_s = ""
        else:
            phone = p.mobile if (r < 0.3) != p.prefers_mobile else p.landline
            phone_s = format_phone(phone, rng.randrange(4), international=rng.random() < 0.4)
        r = rng.random()
        if r < 0.10:
            dob = ""
        elif r < 0.45:
            dob = dob_de
        elif r < 0.47:  # day and month swapped
            d = p.dob
            dob = f"{d.year}-{d.day:02d}-{d.month:02d}" if d.day <= 12 else dob_iso
        else:
            dob = dob_iso
        a = addr
        r = rng.random()
        if r < 0.08:
            a, _city = factory.address(p.country)
            street = a.line()
        elif r < 0.33:
            street = a.line(street_variant(a.street, p.country, rng))
        else:
            street = a.line()
        city = a.city
        if rng.random() < 0.06:
            city = ascii_fold(city) if rng.random() < 0.5 else city.upper()
        postcode = a.postcode
        if rng.random() < 0.05:
            street = postcode = city = ""
        country = p.country
        if rng.random() < 0.15:
            country = rng.choice(_COUNTRY_VARIANTS[country])
        rows.append(
            [
                _name(p.first_name, rng),
                _name(p.last_name, rng),
                email,
                phone_s,
                dob,
                street,
                postcode,
                city,
                country,
                p.customer_no if has_cid and rng.random() < 0.4 else "",
            ]
        )
    for row in rows:
        row.append(p.pid)
    return rows


def iter_people_rows(n: int, seed: int = 42) -> Iterator[list[str]]:
    """Yield n person records (columns as PEOPLE_COLUMNS) in bounded memory.

    Each true person yields ~1.9 records on average (first one mostly clean, the
    others corrupted); records are shuffled within windows of 20,000 so duplicates
    are not adjacent. Output depends only on n and seed.
    """
    rng = random.Random(seed)
    factory = PersonFactory(seed, rng, unique_suffix=True)
    emitted = 0
    person_index = 0
    buf: list[list[str]] = []
    while emitted < n:
        while len(buf) < _WINDOW and emitted + len(buf) < n:
            p = factory.person(person_index, handle_rate=0.0)
            person_index += 1
            buf.extend(_person_rows(p, rng, factory))
        del buf[n - emitted :]
        rng.shuffle(buf)
        for row in buf:
            emitted += 1
            yield [f"R{emitted:08d}", *row]
        buf = []


def write_people_csv(path: Path, n: int, *, seed: int = 42, batch: int = 50_000) -> int:
    """Stream n synthetic person records with a person_id truth column to a CSV; returns n."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(PEOPLE_COLUMNS)
        chunk: list[list[str]] = []
        for row in iter_people_rows(n, seed):
            chunk.append(row)
            if len(chunk) >= batch:
                writer.writerows(chunk)
                chunk.clear()
        writer.writerows(chunk)
    return n
