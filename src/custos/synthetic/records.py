"""The record silos of the synthetic company: CRM (CSV) and web-shop customers (Parquet)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from custos.synthetic.people import Address, Person
from custos.synthetic.vocab import ascii_fold, street_variant, typo
from custos.synthetic.world import (
    CONTACT_COLUMNS,
    SiloFile,
    World,
    phone_variant,
    write_csv,
    write_map,
)

__all__ = ["write_crm", "write_shop"]

CRM_HEADER = (
    "Kundennummer",
    "Vorname",
    "Nachname",
    "EMail",
    "Telefon",
    "Geburtsdatum",
    "Strasse",
    "PLZ",
    "Ort",
    "Land",
    "Twitter",
)
CRM_MAP = {
    "record_id": "Kundennummer",
    "customer_id": "Kundennummer",
    "first_name": "Vorname",
    "last_name": "Nachname",
    "email": "EMail",
    "phone": "Telefon",
    "date_of_birth": "Geburtsdatum",
    "street": "Strasse",
    "postcode": "PLZ",
    "city": "Ort",
    "country": "Land",
    "social_handle": "Twitter",
}
_LAND = {
    "DE": ("Deutschland",) * 5 + ("DE",) * 3 + ("Germany",) * 2,
    "GB": ("United Kingdom",) * 4 + ("GB",) * 3 + ("UK",) * 2 + ("Großbritannien",),
    "US": ("USA",) * 5 + ("US",) * 3 + ("United States",) * 2,
}
BROKEN_KINDS = ("bad_date", "text_date", "no_id", "bad_email", "bad_phone")


@dataclass
class _CrmRow:
    person: Person
    kind: str  # "primary" | "duplicate" | one of BROKEN_KINDS
    number: str = ""


def _dmy(p: Person) -> str:
    return f"{p.dob.day:02d}.{p.dob.month:02d}.{p.dob.year}"


def _crm_values(row: _CrmRow, w: World) -> list[str]:
    rng, p = w.rng, row.person
    first, last, email = p.first_name, p.last_name, p.email
    address: Address = p.address
    phone = p.phone
    if row.kind == "duplicate":
        changes = [c for c in ("typo", "email", "moved") if rng.random() < 0.45] or ["email"]
        if "typo" in changes:
            last = typo(last, rng)
        if "email" in changes:
            email = p.alt_email
        if "moved" in changes:
            address = w.factory.address(p.country)[0]
            phone = p.mobile
    elif rng.random() < 0.03:
        last = ascii_fold(last)
    r = rng.random()
    if r < 0.03:
        email = ""
    elif r < 0.06:
        email = email.upper()
    street = address.line()
    if rng.random() < 0.35:
        street = address.line(street_variant(address.street, p.country, rng))
    twitter = f"@{p.handle}" if p.handle and rng.random() < 0.75 else ""
    values = [
        row.number,
        first,
        last,
        email,
        "" if rng.random() < 0.04 else phone_variant(rng, phone, 0.3),
        "" if rng.random() < 0.02 else _dmy(p),
        street,
        address.postcode,
        address.city,
        rng.choice(_LAND[p.country]),
        twitter,
    ]
    if row.kind == "bad_date":
        values[5] = "31.02.1985"
    elif row.kind == "text_date":
        values[5] = "gestern"
    elif row.kind == "bad_email":
        values[3] = f"{ascii_fold(first).lower().split('-')[0]}.at.example"
    elif row.kind == "bad_phone":
        values[4] = "call me"
    return values


def write_crm(w: World) -> tuple[SiloFile, list[tuple[str, int]]]:
    """Write crm_customers.csv and crm.map.yaml; returns the file and its broken rows."""
    rng = w.rng
    members = [p for p in w.persons if rng.random() < 0.85]
    rng.shuffle(members)
    rows = [_CrmRow(p, "primary") for p in members]
    for p in rng.sample(members, max(1, round(len(members) * 0.04))):
        pos = next(i for i, r in enumerate(rows) if r.person is p)
        rows.insert(rng.randint(pos + 1, len(rows)), _CrmRow(p, "duplicate"))
    for kind, p in zip(BROKEN_KINDS, rng.sample(members, len(BROKEN_KINDS)), strict=True):
        rows.insert(rng.randint(len(rows) // 10, len(rows)), _CrmRow(p, kind))
    number = rng.randint(1000, 3000)
    for r in rows:
        number += rng.choice((1, 1, 1, 2, 3))
        r.number = "" if r.kind == "no_id" else f"C-{number:07d}"
        if r.kind == "primary":
            w.crm_no[r.person.pid] = r.number
    broken: list[tuple[str, int]] = []
    table: list[list[str]] = []
    for line, r in enumerate(rows, start=2):
        table.append(_crm_values(r, w))
        if r.kind in BROKEN_KINDS:
            broken.append((r.number, line))
        else:
            w.true("crm", r.number, r.person)
    path = w.out_dir / "crm_customers.csv"
    n = write_csv(path, CRM_HEADER, table)
    map_path = write_map(w.out_dir / "crm.map.yaml", CRM_MAP, kind="records")
    return SiloFile(path, "crm", "records", map_path, n), broken


SHOP_COLUMNS = (
    "record_id",
    "full_name",
    *CONTACT_COLUMNS,
    "customer_id",
)


def _shop_name(p: Person, rng: random.Random) -> str:
    first, last = p.first_name, p.last_name
    r = rng.random()
    if r < 0.2:
        first, last = ascii_fold(first), ascii_fold(last)
    elif r < 0.28:
        first, last = first.upper(), last.upper()
    elif r < 0.32:
        last = last.upper()
    return f"{last}, {first}" if rng.random() < 0.35 else f"{first} {last}"


def _shop_email(email: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.08:
        return email.upper()
    if r < 0.13:
        return f"  {email} "
    if r < 0.16:
        return email[0].upper() + email[1:]
    return email


def write_shop(w: World) -> SiloFile:
    """Write shop_customers.parquet (canonical column names, no map file)."""
    rng = w.rng
    accounts: list[tuple[Person, str]] = []
    for p in w.persons:
        if rng.random() < 0.55:
            accounts.append((p, p.email if rng.random() < 0.85 else p.alt_email))
            if rng.random() < 0.02:
                other = p.alt_email if accounts[-1][1] == p.email else p.email
                accounts.append((p, other))
    rng.shuffle(accounts)
    cols: dict[str, list[str | None]] = {c: [] for c in SHOP_COLUMNS}
    number = 100_000 + rng.randint(0, 5000)
    for p, email in accounts:
        number += rng.randint(1, 4)
        rid = f"W{number}"
        typed = _shop_email(email, rng)
        w.shop_accounts.append((p, typed))
        a = p.address
        street = a.line(street_variant(a.street, p.country, rng)) if rng.random() < 0.2 else None
        cid = w.crm_no.get(p.pid)
        values: dict[str, str | None] = {
            "record_id": rid,
            "full_name": _shop_name(p, rng),
            "email": typed,
            "phone": phone_variant(rng, p.mobile, 0.5) if rng.random() < 0.4 else None,
            "date_of_birth": p.dob.isoformat() if rng.random() < 0.7 else None,
            "street": street or a.line(),
            "postcode": a.postcode,
            "city": a.city,
            "country": p.country,
            "customer_id": cid if cid and rng.random() < 0.5 else None,
        }
        for c in SHOP_COLUMNS:
            cols[c].append(values[c])
        w.true("webshop", rid, p)
    table = pa.table({c: pa.array(v, type=pa.string()) for c, v in cols.items()})
    path = w.out_dir / "shop_customers.parquet"
    pq.write_table(table, path, compression="snappy")
    return SiloFile(path, "webshop", "records", None, table.num_rows)
