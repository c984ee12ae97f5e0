"""Tests for custos.synthetic: the demo company and the bulk people writer."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import phonenumbers
import pyarrow.parquet as pq
import pytest

from custos.synthetic import (
    PEOPLE_COLUMNS,
    CompanyManifest,
    generate_company,
    iter_people_rows,
    make_people,
    write_people_csv,
)

LAND = {
    "Deutschland": "DE",
    "DE": "DE",
    "Germany": "DE",
    "United Kingdom": "GB",
    "GB": "GB",
    "UK": "GB",
    "Großbritannien": "GB",
    "USA": "US",
    "US": "US",
    "United States": "US",
}


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> CompanyManifest:
    return generate_company(tmp_path_factory.mktemp("company"), people=1500, seed=7)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _records(m: CompanyManifest) -> dict[str, list[dict[str, object]]]:
    """All rows of every silo, keyed by source/kind, as dicts."""
    out: dict[str, list[dict[str, object]]] = {}
    for f in m.files:
        key = f"{f.source}/{f.kind}"
        if f.path.suffix == ".csv":
            out[key] = [dict(r) for r in _csv(f.path)]
        elif f.path.suffix == ".jsonl":
            out[key] = _jsonl(f.path)
        else:
            out[key] = pq.read_table(f.path).to_pylist()
    return out


def _ids(m: CompanyManifest) -> dict[str, list[str]]:
    rec = _records(m)
    id_col = {
        "crm/records": "Kundennummer",
        "webshop/records": "record_id",
        "orders/interactions": "order_id",
        "callcentre/interactions": "call_id",
        "social/interactions": "record_id",
    }
    return {k.split("/")[0]: [str(r[c]) for r in rec[k]] for k, c in id_col.items()}


def test_manifest_lists_all_silos(company: CompanyManifest) -> None:
    kinds = {(f.source, f.kind, f.path.name) for f in company.files}
    assert kinds == {
        ("crm", "records", "crm_customers.csv"),
        ("webshop", "records", "shop_customers.parquet"),
        ("orders", "interactions", "shop_orders.jsonl"),
        ("callcentre", "interactions", "call_notes.csv"),
        ("social", "interactions", "social_posts.jsonl"),
        ("crm", "consents", "consents.csv"),
    }
    assert company.people == 1500
    maps = {f.source: f.map_path for f in company.files if f.kind != "consents"}
    assert maps["webshop"] is None and maps["social"] is None
    crm_map = company.file("crm", "records").map_path
    assert crm_map is not None
    text = crm_map.read_text(encoding="utf-8")
    assert text.startswith("kind: records\n")
    assert "\nfields:\n" in text and "  record_id: Kundennummer\n" in text
    assert "  social_handle: Twitter\n" in text
    orders_map = company.file("orders").map_path
    assert orders_map is not None and "channel: order\n" in orders_map.read_text(encoding="utf-8")
    calls_map = company.file("callcentre").map_path
    assert calls_map is not None and "  language: lang\n" in calls_map.read_text(encoding="utf-8")


def test_manifest_row_counts_match_files(company: CompanyManifest) -> None:
    rec = _records(company)
    for f in company.files:
        assert f.rows == len(rec[f"{f.source}/{f.kind}"]) > 0, f.path.name
    n = company.people
    crm = company.file("crm", "records").rows
    assert 0.80 * n < crm < 0.95 * n
    assert 0.45 * n < company.file("webshop").rows < 0.65 * n
    assert 1.5 < company.file("orders").rows / company.file("webshop").rows < 2.6
    assert company.file("callcentre").rows == n // 3
    crm_rows = rec["crm/records"]
    with_handle = sum(1 for r in crm_rows if r["Twitter"])
    assert 0.2 * crm < with_handle < 0.45 * crm


def test_truth_covers_every_record_and_interaction(company: CompanyManifest) -> None:
    truth = _csv(company.truth_path)
    keys = [(t["source"], t["record_id"]) for t in truth]
    assert len(keys) == len(set(keys))
    broken = {rid for rid, _ in company.broken_rows}
    expected = {
        (src, rid) for src, ids in _ids(company).items() for rid in ids if rid not in broken
    }
    assert set(keys) == expected
    pids = {t["person_id"] for t in truth}
    assert 0.95 * company.people <= len(pids) <= company.people
    assert all(p.startswith("P") for p in pids)


def test_broken_rows_at_stated_lines(company: CompanyManifest) -> None:
    lines = company.file("crm", "records").path.read_text(encoding="utf-8").split("\n")
    assert len(company.broken_rows) == 5
    assert sum(1 for rid, _ in company.broken_rows if rid == "") == 1
    markers = ("31.02.1985", "gestern", ".at.example", "call me")
    found = []
    for rid, line_no in company.broken_rows:
        line = lines[line_no - 1]
        first = next(csv.reader([line]))[0]
        assert first == rid
        found += [m for m in markers if m in line]
    assert sorted(found) == sorted(markers)
    ids = [r["Kundennummer"] for r in _csv(company.file("crm", "records").path)]
    assert ids.count("") == 1 and len(set(ids)) == len(ids)


def test_people_appear_in_several_silos(company: CompanyManifest) -> None:
    sources: dict[str, set[str]] = defaultdict(set)
    for t in _csv(company.truth_path):
        sources[t["person_id"]].add(t["source"])
    spread = Counter(len(s) for s in sources.values())
    assert sum(v for k, v in spread.items() if k >= 3) > 0.3 * company.people
    crm_dups = Counter(
        t["person_id"] for t in _csv(company.truth_path) if t["source"] == "crm"
    ).most_common()
    dup_people = sum(1 for _, c in crm_dups if c > 1)
    assert 0.02 * company.people < dup_people < 0.07 * company.people


def test_webshop_links_and_formats(company: CompanyManifest) -> None:
    shop = pq.read_table(company.file("webshop").path).to_pylist()
    crm_ids = set(_ids(company)["crm"])
    linked = [r["customer_id"] for r in shop if r["customer_id"]]
    assert linked and set(linked) <= crm_ids
    assert 0.30 < len(linked) / len(shop) < 0.55
    assert any("," in str(r["full_name"]) for r in shop)
    assert any(str(r["email"]) != str(r["email"]).strip().lower() for r in shop)
    assert all(r["record_id"].startswith("W") for r in shop)
    dobs = [r["date_of_birth"] for r in shop if r["date_of_birth"]]
    assert all(len(d) == 10 and d[4] == "-" for d in dobs)
    assert all(r["country"] in {"DE", "GB", "US"} for r in shop)


def test_interactions_look_right(company: CompanyManifest) -> None:
    orders = _jsonl(company.file("orders").path)
    assert set(orders[0]) == {"order_id", "ordered_at", "buyer_email", "amount", "items", "comment"}
    assert all(str(o["ordered_at"])[:7] >= "2025-01" for o in orders)
    assert all(str(o["ordered_at"])[:7] <= "2026-10" for o in orders)
    assert all(str(o["ordered_at"])[-6] in "+-" for o in orders)
    calls = _csv(company.file("callcentre").path)
    langs = Counter(c["lang"] for c in calls)
    assert set(langs) == {"de", "en"} and langs["de"] > langs["en"]
    assert len({c["notes"] for c in calls if c["lang"] == "de"}) >= 20
    assert any("@" in c["notes"] for c in calls)  # PII inside free text, on purpose
    assert any(c["caller_name"].startswith(("Frau ", "Herr ", "Mrs ", "Mr ")) for c in calls)
    posts = _jsonl(company.file("social").path)
    assert all(p["channel"] == "social" for p in posts)
    assert any(not str(p["social_handle"]).startswith("@") for p in posts)
    consents = _csv(company.file("crm", "consents").path)
    assert {c["status"] for c in consents} == {"granted", "denied", "withdrawn"}
    assert {c["method"] for c in consents} == {"form", "checkout", "call", "api"}
    people_with = {c["email"] for c in consents}
    assert 0.5 * company.people < len(people_with) < 0.7 * company.people


def test_company_is_deterministic(tmp_path: Path) -> None:
    a = generate_company(tmp_path / "a", people=300, seed=11)
    b = generate_company(tmp_path / "b", people=300, seed=11)
    c = generate_company(tmp_path / "c", people=300, seed=12)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert a.broken_rows == b.broken_rows
    assert [f.rows for f in a.files] == [f.rows for f in b.files]
    for name in ("crm_customers.csv", "shop_customers.parquet", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    assert c.people == 300


def test_families_share_landline_and_address() -> None:
    people = make_people(2000, seed=3)
    by_phone: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(people):
        by_phone[p.landline.e164].append(i)
    pairs = [ix for ix in by_phone.values() if len(ix) > 1]
    in_family = sum(len(ix) for ix in pairs)
    assert 0.015 * len(people) < in_family < 0.06 * len(people)
    for ix in pairs:
        a, b = (people[i] for i in ix[:2])
        assert a.address == b.address and a.last_name == b.last_name
        assert a.first_name != b.first_name and a.dob != b.dob and a.email != b.email
        assert a.phone == b.phone == a.landline
    countries = Counter(p.country for p in people)
    assert 0.62 < countries["DE"] / len(people) < 0.78
    assert 0.14 < countries["GB"] / len(people) < 0.26
    assert len({p.email for p in people}) == len(people)


def _valid_for(number: str, country: str) -> bool:
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException:
        return False
    return bool(
        phonenumbers.is_valid_number(parsed)
        and phonenumbers.region_code_for_number(parsed) == country
    )


def test_phones_are_valid_for_their_country(company: CompanyManifest, tmp_path: Path) -> None:
    crm = _csv(company.file("crm", "records").path)
    sample = [(r["Telefon"], LAND[r["Land"]]) for r in crm if r["Telefon"]]
    path = tmp_path / "people.csv"
    write_people_csv(path, 3000, seed=5)
    iso = {"DE", "GB", "US"}
    sample += [(r["phone"], r["country"]) for r in _csv(path) if r["country"] in iso]
    sample = [(n, c) for n, c in sample if n]
    assert len(sample) > 1500
    valid = sum(_valid_for(n, c) for n, c in sample)
    assert valid / len(sample) >= 0.95
    assert len({c for _, c in sample}) == 3


def test_write_people_csv(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    assert write_people_csv(path, 4000, seed=1, batch=500) == 4000
    rows = _csv(path)
    assert len(rows) == 4000
    with path.open(encoding="utf-8") as fh:
        assert tuple(next(csv.reader(fh))) == PEOPLE_COLUMNS
    assert len({r["record_id"] for r in rows}) == 4000
    per_person = Counter(r["person_id"] for r in rows)
    assert 1.6 < 4000 / len(per_person) < 2.2
    owners: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["email"]:
            owners[r["email"].strip().lower()].add(r["person_id"])
    assert all(len(o) == 1 for o in owners.values())
    dobs = [r["date_of_birth"] for r in rows if r["date_of_birth"]]
    assert any("." in d for d in dobs) and any("-" in d for d in dobs)
    assert any(r["email"] and r["email"] != r["email"].lower() for r in rows)
    assert sum(1 for r in rows if not r["phone"]) > 100
    # the batch size only affects buffering, not the content
    other = tmp_path / "q.csv"
    write_people_csv(other, 4000, seed=1, batch=50_000)
    assert other.read_bytes() == path.read_bytes()
    write_people_csv(other, 4000, seed=2)
    assert other.read_bytes() != path.read_bytes()


def test_iter_people_rows_matches_columns() -> None:
    rows = list(iter_people_rows(250, seed=9))
    assert len(rows) == 250
    assert all(len(r) == len(PEOPLE_COLUMNS) for r in rows)
    assert rows == list(iter_people_rows(250, seed=9))
    assert [r[0] for r in rows[:3]] == ["R00000001", "R00000002", "R00000003"]
