"""Tests for the identity benchmark data: synthetic households and the multi-silo company.

These check what the generators promise (who shares what, which silo holds whom, what the files
look like, that custos can read them); they say nothing about resolution quality, which
``bench/identity.py`` measures.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import phonenumbers
import pyarrow.parquet as pq
import pytest
import yaml

from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.service import Custos
from custos.synthetic import (
    HOUSEHOLD_KINDS,
    HouseholdManifest,
    Individual,
    MultiSiloManifest,
    SiloFile,
    generate_households,
    generate_multisilo,
)
from custos.synthetic.households import NEAR_TWINS, language_of


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> HouseholdManifest:
    return generate_households(tmp_path_factory.mktemp("households"), households=150, seed=13)


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> MultiSiloManifest:
    return generate_multisilo(tmp_path_factory.mktemp("multisilo"), people=400, seed=17)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _rows(path: Path) -> list[dict[str, object]]:
    if path.suffix == ".csv":
        return [dict(r) for r in _csv(path)]
    if path.suffix == ".jsonl":
        return _jsonl(path)
    return pq.read_table(path).to_pylist()


def _get(row: dict[str, object], column: str) -> object:
    value: object = row
    for key in column.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _fields(map_path: Path | None) -> dict[str, str]:
    assert map_path is not None
    return dict(yaml.safe_load(map_path.read_text(encoding="utf-8"))["fields"])


def _households(persons: tuple[Individual, ...]) -> dict[str, list[Individual]]:
    out: dict[str, list[Individual]] = defaultdict(list)
    for p in persons:
        out[p.household].append(p)
    return out


def _truth(path: Path) -> dict[tuple[str, str], str]:
    return {(r["source"], r["record_id"]): r["person_id"] for r in _csv(path)}


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


# -- households --------------------------------------------------------------------------------
def test_households_are_deterministic(tmp_path: Path) -> None:
    # Seeds the other tests use too: Faker's vocabularies are drawn once per seed.
    a = generate_households(tmp_path / "a", households=40, seed=13)
    b = generate_households(tmp_path / "b", households=40, seed=13)
    c = generate_households(tmp_path / "c", households=40, seed=17)
    assert _files(a.out_dir) == _files(b.out_dir)
    assert a.persons == b.persons
    assert (a.out_dir / "truth.csv").read_bytes() != (c.out_dir / "truth.csv").read_bytes()


def test_every_kind_and_country_is_there(homes: HouseholdManifest) -> None:
    assert set(homes.kinds) == set(HOUSEHOLD_KINDS)
    assert all(n > 0 for n in homes.kinds.values())
    assert sum(homes.kinds.values()) == homes.households == 150
    assert {p.country for p in homes.persons} == {"DE", "GB", "US"}
    assert len(homes.persons) == homes.people == len(_csv(homes.persons_path))


def test_a_household_shares_address_and_landline(homes: HouseholdManifest) -> None:
    households = _households(homes.persons)
    for members in households.values():
        assert len({(p.address, p.landline, p.kind) for p in members}) == 1
    # ... and nothing else: no two households share an address or a landline.
    assert len({m[0].landline for m in households.values()}) == len(households)
    assert len({m[0].address for m in households.values()}) == len(households)
    # Most people have a mobile or an e-mail of their own; some have neither.
    personal = [p.mobile is not None or p.email is not None for p in homes.persons]
    assert 0.8 < sum(personal) / len(personal) < 1
    mobiles = [p.mobile for p in homes.persons if p.mobile is not None]
    assert len(set(mobiles)) == len(mobiles)


def test_twins(homes: HouseholdManifest) -> None:
    pairs = [
        [p for p in members if p.role == "twin"]
        for members in _households(homes.persons).values()
        if members[0].kind == "twins"
    ]
    assert len(pairs) >= 10
    near = {pair for pairs in NEAR_TWINS.values() for pair in pairs}
    for a, b in pairs:
        assert a.dob == b.dob and a.last_name == b.last_name
        assert a.first_name != b.first_name
    names = {(a.first_name, b.first_name) for a, b in pairs}
    assert names & near, "boy/girl twins with near names (Paul/Paula)"
    assert any(a.gender == b.gender for a, b in pairs)


def test_father_and_son_of_one_name(homes: HouseholdManifest) -> None:
    found = 0
    for members in _households(homes.persons).values():
        if members[0].kind != "father_son":
            continue
        (father,) = [p for p in members if p.role == "father"]
        (son,) = [p for p in members if p.role == "son"]
        assert (father.first_name, father.last_name) == (son.first_name, son.last_name)
        assert father.dob.year + 18 <= son.dob.year
        assert (father.suffix, son.suffix) == ("senior", "junior")
        found += 1
    assert found >= 5
    # The suffix is written in some records and left out in others.
    crm = _rows(homes.file("crm").path)
    suffixed = [r for r in crm if str(r["Nachname"]).endswith(("Jr.", "jun.", "Sr.", "sen."))]
    assert suffixed


def test_flatmates(homes: HouseholdManifest) -> None:
    shared_birthday = 0
    for members in _households(homes.persons).values():
        if members[0].kind != "flatmates":
            continue
        assert len(members) >= 2
        assert len({p.last_name for p in members}) == len(members)
        assert len({p.first_name for p in members}) == len(members)
        shared_birthday += len({p.dob for p in members}) < len(members)
    assert shared_birthday >= 1


def test_every_person_is_in_two_sources(homes: HouseholdManifest) -> None:
    truth = _truth(homes.truth_path)
    sources: dict[str, set[str]] = defaultdict(set)
    for (source, _), pid in truth.items():
        sources[pid].add(source)
    assert set(sources) == {p.pid for p in homes.persons}
    assert all(len(s) >= 2 for s in sources.values())
    # truth.csv has one row per record, and every record has one.
    assert len(truth) == sum(f.rows for f in homes.files)
    for f in homes.files:
        id_column = _fields(f.map_path)["record_id"]
        ids = {str(_get(r, id_column)) for r in _rows(f.path)}
        assert ids == {rid for source, rid in truth if source == f.source}


def test_only_household_emails_are_shared(homes: HouseholdManifest) -> None:
    truth = _truth(homes.truth_path)
    owners: dict[str, set[str]] = defaultdict(set)
    for f in homes.files:
        fields = _fields(f.map_path)
        for row in _rows(f.path):
            email = _get(row, fields["email"])
            if email:
                owners[str(email).strip().lower()].add(
                    truth[(f.source, str(_get(row, fields["record_id"])))]
                )
    family = {p.household_email for p in homes.persons if p.household_email}
    shared = {e for e, pids in owners.items() if len(pids) > 1}
    assert shared, "some couples use one family address"
    assert shared <= family


def test_household_silos_look_like_their_systems(homes: HouseholdManifest) -> None:
    crm, shop, loyalty = homes.file("crm"), homes.file("shop"), homes.file("loyalty")
    assert "Country" in _rows(crm.path)[0]
    assert "country" in _fields(shop.map_path)
    loyalty_map = yaml.safe_load(loyalty.map_path.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    assert loyalty_map["phone_region"] == "DE"
    assert "country" not in loyalty_map["fields"]
    for f in homes.files:
        if f.source != "loyalty":
            assert "phone_region" not in f.map_path.read_text(encoding="utf-8")  # type: ignore[union-attr]
    phones = [str(r["Telefon"]) for r in _rows(crm.path) if r["Telefon"]]
    assert any(p.startswith("0") for p in phones) and any(p.startswith("+") for p in phones)
    assert any(p.startswith("(0)") for p in phones)
    first_names = {str(_get(r, "profile.first_name")) for r in _rows(shop.path)}
    assert first_names & {"Bill", "Bob", "Liz", "Hans", "Sepp", "Fritz", "Kathi", "Max", "Tom"}


# -- the multi-silo company --------------------------------------------------------------------
def test_multisilo_is_deterministic(tmp_path: Path) -> None:
    a = generate_multisilo(tmp_path / "a", people=120, seed=17)
    b = generate_multisilo(tmp_path / "b", people=120, seed=17)
    assert _files(a.out_dir) == _files(b.out_dir)
    assert a.withdrawals == b.withdrawals


def test_multisilo_countries_and_households(company: MultiSiloManifest) -> None:
    assert {p.country for p in company.persons} >= {"DE", "GB", "US", "NL", "AT", "CH", "FR"}
    assert company.people == 400
    shared = [m for m in _households(company.persons).values() if len(m) > 1]
    assert shared, "some CRM persons share address and landline"
    crm = company.file("crm", "records")
    assert "country" in _rows(crm.path)[0]
    truth = _truth(company.truth_path)
    assert len(truth) == sum(f.rows for f in company.files if f.kind != "consents")
    assert {rid for rid, _ in company.broken_rows} <= {rid for _, rid in truth}


def test_call_notes_carry_national_numbers_without_country(company: MultiSiloManifest) -> None:
    calls = company.file("calls")
    rows = _csv(calls.path)
    assert "country" not in {c.lower() for c in rows[0]}
    assert "country" not in _fields(calls.map_path)
    truth = _truth(company.truth_path)
    country = {p.pid: p.country for p in company.persons}
    national = [
        r for r in rows if r["phone_number"] and not r["phone_number"].startswith(("+", "00"))
    ]
    assert len(national) > 0.8 * len(rows)
    seen: set[str] = set()
    for r in national:
        region = country[truth[("calls", r["call_id"])]]
        assert phonenumbers.is_valid_number(phonenumbers.parse(r["phone_number"], region)), r
        seen.add(region)
    assert len(seen) >= 4
    assert all(r["caller"] or r["notes"] for r in rows)
    assert any(r["notes"].startswith(("Anrufer: Herr", "Anrufer: Frau")) for r in rows)
    assert any(r["notes"].startswith(("Caller: Ms", "Caller: Mr")) for r in rows)


def test_orders_use_second_emails(company: MultiSiloManifest) -> None:
    crm_emails = {r["email"].lower() for r in _csv(company.file("crm", "records").path)}
    orders = _jsonl(company.file("orders").path)
    unknown = [o for o in orders if str(_get(o, "buyer.email")).lower() not in crm_emails]
    assert 0.3 < len(unknown) / len(orders) < 0.9
    assert any(o["shipping"] is None for o in orders) and any(o["shipping"] for o in orders)


def test_the_planted_withdrawal(company: MultiSiloManifest) -> None:
    (w,) = company.withdrawals
    orders = _jsonl(company.file("orders").path)
    carrying = [o for o in orders if str(_get(o, "buyer.email")).lower() == w.email]
    assert [o["order_id"] for o in carrying] == [w.order_id]
    for silo in (company.file("crm", "records"), company.file("calls")):
        assert w.email not in silo.path.read_text(encoding="utf-8").lower()
    consents = _csv(company.file("crm", "consents").path)
    by_email = [c for c in consents if c["email"] == w.email]
    assert [(c["purpose"], c["status"], c["customer_no"]) for c in by_email] == [
        ("marketing_email", "withdrawn", "")
    ]
    grants = [c for c in consents if c["customer_no"] == w.crm_record_id]
    assert ("marketing_email", "granted") in {(c["purpose"], c["status"]) for c in grants}
    assert max(c["timestamp"] for c in grants) < by_email[0]["timestamp"]
    (crm,) = [
        r for r in _csv(company.file("crm", "records").path) if r["customer_no"] == w.crm_record_id
    ]
    person = next(p for p in company.persons if p.pid == w.person_id)
    assert crm["email"] == person.email and w.email == person.alt_email
    name = str(_get(carrying[0], "buyer.name"))
    assert person.last_name not in name, "the order's surname is mistyped"


# -- custos reads every file ---------------------------------------------------------------------
def _ingest(files: list[SiloFile], db: Path) -> set[str]:
    """Ingest every file into a new store; the record ids that ended in the quarantine (a row
    quarantined, or stored without a field that could not be read)."""
    settings = Settings(_env_file=None, db="unused")  # type: ignore[call-arg]
    with Custos.open(str(db), settings) as app:
        for f in files:
            summary = app.ingest(f.path, f.source, kind=Kind(f.kind), map_path=f.map_path)
            assert summary.stored + summary.quarantined == f.rows, f.path.name
        return {str(q["record_id"]) for q in app.quarantine(limit=10_000)}


def test_households_ingest_cleanly(homes: HouseholdManifest, tmp_path: Path) -> None:
    assert _ingest(homes.files, tmp_path / "c.db") == set()


def test_multisilo_ingests_cleanly(company: MultiSiloManifest, tmp_path: Path) -> None:
    assert len(company.broken_rows) == 3
    assert _ingest(company.files, tmp_path / "c.db") == {rid for rid, _ in company.broken_rows}


def test_language_of() -> None:
    assert [language_of(c) for c in ("DE", "AT", "CH", "GB", "US", "NL", "FR")] == [
        "de", "de", "de", "en", "en", "nl", "fr"
    ]  # fmt: skip
