"""Releases beyond k and l, decided by the taxonomy: dates and other quasi-identifiers named as
sensitive are generalised, free text is refused or redacted, records' free text is PII-filtered
at ingestion, t-closeness holds, rare values are recoded and each person is one row."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.errors import ConfigError
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.service import Custos
from custos.service.release import MAX_T, release
from custos.store import tables as t
from custos.synthetic.clinic import generate_clinic
from tests.conftest import write

TAXONOMY = """purposes:
  health_research:
    basis: consent
    description: "research on health outcomes"
    categories: [identity, location, health, free_text]
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a research purpose that may use locations and notes."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        db="unused",
        secret_key_file=str(tmp_path / "key" / "secret.key"),
        taxonomy=str(write(tmp_path / "taxonomy.yaml", TAXONOMY)),
    )


def runner(settings: Settings) -> CliRunner:
    return CliRunner(
        env={
            "CUSTOS_SECRET_KEY_FILE": settings.secret_key_file,
            "CUSTOS_TAXONOMY": settings.taxonomy or "",
        }
    )


def clinic(custos: Custos, folder: Path) -> None:
    """The issue's synthetic clinic, small: a Huntington's patient, persons with two
    diagnoses, diagnosis dates tagged health."""
    made = generate_clinic(folder / "clinic", persons=400, patients=260, seed=3)
    custos.ingest(made.crm, "crm", map_path=made.map_path)
    custos.ingest(made.visits, "clinic", map_path=made.map_path)
    custos.resolve()
    custos.ingest(made.consents, "crm", kind=Kind.CONSENTS)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def release_cli(settings: Settings, store_url: str, out: Path, *args: str) -> dict[str, object]:
    result = runner(settings).invoke(
        cli,
        ["--db", store_url, "release", "-p", "health_research", "-o", str(out), *args, "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return dict(orjson.loads(result.stdout))


def test_a_sensitive_date_is_generalised_as_a_quasi_identifier(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    with Custos.open(store_url, settings) as custos:
        clinic(custos, tmp_path)
    out = tmp_path / "r.csv"
    args = ["-q", "age,sex", "-s", "condition,diagnosis_date", "--source", "clinic"]
    report = release_cli(settings, store_url, out, *args, "--max-suppression", "0.1")
    assert report["promoted"] == ["diagnosis_date"]
    rows = read(out)
    assert list(rows[0]) == ["person", "age", "sex", "diagnosis_date", "condition"]
    # Never the day: a month at the finest (the attacker who knows one visit learns nothing).
    assert not any(re.search(r"\d{4}-\d{2}-\d{2}", r["diagnosis_date"]) for r in rows)
    generalisation = dict(report["generalisation"])  # type: ignore[call-overload]
    assert generalisation["diagnosis_date"].split(": ")[1] in (
        "month",
        "quarter",
        "year",
        "decade",
        "hidden",
    )
    meta = orjson.loads(out.with_name("r.csv.meta.json").read_bytes())
    assert meta["quasi_identifiers"] == ["age", "sex", "diagnosis_date"]
    assert meta["promoted_to_quasi_identifiers"] == ["diagnosis_date"]
    text = out.read_text(encoding="utf-8")
    assert "@" not in text  # direct identifiers never appear
    with Custos.open(store_url, settings) as custos:
        common = {"purpose": "health_research", "k": 5, "l_div": 2, "output": tmp_path / "x.csv"}
        # A location named sensitive is a quasi-identifier too; alone it leaves nothing sensitive.
        city = release(custos, quasi_identifiers=["sex"], sensitive=["condition", "city"], **common)  # type: ignore[arg-type]
        assert city.promoted == ["city"] and "city" in city.generalisation
        with pytest.raises(ConfigError, match="no sensitive column left"):
            release(custos, quasi_identifiers=["sex"], sensitive=["diagnosis_date"], **common)  # type: ignore[arg-type]


def test_a_rare_value_is_recoded_and_each_person_is_one_row(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    with Custos.open(store_url, settings) as custos:
        clinic(custos, tmp_path)
    out = tmp_path / "r.csv"
    args = ["-q", "age,sex,postcode", "-s", "condition", "--source", "clinic"]
    report = release_cli(settings, store_url, out, *args, "--max-suppression", "0.1")
    text = out.read_text(encoding="utf-8").lower()
    # The one Huntington's patient (and the other rare conditions) never appear by name.
    for rare in ("huntington", "cystic fibrosis", "sarcoidosis", "myasthenia"):
        assert rare not in text
    rare_values = dict(report["rare_values"])  # type: ignore[call-overload]
    assert rare_values["condition"]["values"] >= 3
    meta = orjson.loads(out.with_name("r.csv.meta.json").read_bytes())
    risk = orjson.loads(out.with_name("r.csv.risk.json").read_bytes())
    assert meta["rare_values"] == risk["rare_values"] == rare_values
    rows = read(out)
    # Two diagnoses of one person: one row, the conditions as a sorted set.
    assert len(rows) == len({r["person"] for r in rows}) == report["persons"]
    both = [r["condition"].split(";") for r in rows if ";" in r["condition"]]
    assert both and all(values == sorted(set(values)) for values in both)
    assert max(risk["t_closeness"].values()) <= MAX_T


def skewed(folder: Path) -> dict[str, Path]:
    """50 patients: 10 in postcode 10100 (9 of them with a condition rare elsewhere), 40 in
    20200 (1 with it): k and l hold per postcode, but 10100 tells who has it."""
    persons = ["record_id,email,date_of_birth,postcode,sex"]  # no names: no fuzzy merges
    visits = ["record_id,email,diagnosis,code"]
    consents = ["email,purpose,status,timestamp,explicit"]
    for i in range(50):
        email = f"p{i}@example.org"
        postcode = "10100" if i < 10 else "20200"
        persons.append(f"c{i},{email},{1940 + i}-01-0{1 + i % 9},{postcode},F")
        finding = "lupus" if i < 9 or i == 10 else "asthma"
        visits.append(f"v{i},{email},{finding},x")
        consents.append(f"{email},health_research,granted,2026-01-01T00:00:00Z,yes")
    tags = "categories:\n  diagnosis: health\n  code: health\n"
    return {
        "persons": write(folder / "persons.csv", "\n".join(persons) + "\n"),
        "visits": write(folder / "visits.csv", "\n".join(visits) + "\n"),
        "consents": write(folder / "consents.csv", "\n".join(consents) + "\n"),
        "map": write(folder / "map.yaml", tags),
    }


def test_t_closeness_generalises_a_skewed_group(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    files = skewed(tmp_path)
    # A purpose's earlier releases bind its next one (the register's composition check), so the
    # release without a t limit is made in a store of its own.
    alone = str(tmp_path / "alone.db")
    for url in (store_url, alone):
        with Custos.open(url, settings) as custos:
            custos.ingest(files["persons"], "crm", map_path=files["map"])
            custos.ingest(files["visits"], "clinic", map_path=files["map"])
            custos.resolve()
            custos.ingest(files["consents"], "crm", kind=Kind.CONSENTS)
    args = ["-q", "postcode", "-s", "diagnosis", "--source", "clinic"]
    # Raising t above the default needs a reason, like lowering k or l.
    result = runner(settings).invoke(
        cli,
        [
            "--db",
            store_url,
            "release",
            "-p",
            "health_research",
            "-o",
            str(tmp_path / "u.csv"),
            *args,
            "--t",
            "0.9",
        ],
    )
    assert result.exit_code == 2 and "t <= 0.5" in result.output
    # Without t (raised to 1, with a reason) the exact postcode holds k=5 and l=2...
    loose = tmp_path / "loose.csv"
    report = release_cli(
        settings, alone, loose, *args, "--t", "1", "--override-reason", "testing t"
    )
    assert {r["postcode"] for r in read(loose)} == {"10100", "20200"}
    assert float(report["risk"]["t_closeness"]["diagnosis"]) > MAX_T  # type: ignore[index]
    # ... by default 10100's 90% lupus (20% overall) is too far: the postcode is generalised.
    strict = tmp_path / "strict.csv"
    report = release_cli(settings, store_url, strict, *args)
    assert "10100" not in strict.read_text(encoding="utf-8")
    assert float(report["risk"]["t_closeness"]["diagnosis"]) <= MAX_T  # type: ignore[index]
    # Asked stricter than any generalisation can reach within the suppression limit: refused.
    result = runner(settings).invoke(
        cli,
        [
            *("--db", store_url, "release", "-p", "health_research", "-o", str(tmp_path / "n.csv")),
            *(*args, "--t", "0.01", "--max-suppression", "0", "--k", "30", "--json"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    refusal = orjson.loads(result.stdout)
    assert refusal["refused"] is True and "0.01-close" in refusal["reason"]


NOTES = (
    "Dr Smith saw Maria Schneider today, call her back on +49 151 23456789 about the asthma.",
    "Patient Jonathan Miller reports chest pain; reachable at 0171 2345678 or j.miller@example.org",
)


def notes(folder: Path, count: int = 12) -> dict[str, Path]:
    """Records of a clinic with a physician's note (free text naming a person and a number)."""
    rows = ["record_id,email,physician_note,finding"]
    for i in range(count):
        rows.append(f'n{i},p{i}@example.org,"{NOTES[i % 2]}",{("asthma", "flu", "copd")[i % 3]}')
    return {
        "notes": write(folder / "notes.csv", "\n".join(rows) + "\n"),
        "map": write(folder / "notes.yaml", "categories:\n  physician_note: free_text\n"),
    }


def test_records_free_text_is_filtered_at_ingestion_and_scanned(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    files = notes(tmp_path)
    cli_runner = runner(settings)
    assert cli_runner.invoke(cli, ["--db", store_url, "init"]).exit_code == 0
    ingest = ["--db", store_url, "ingest", str(files["notes"]), "-s", "clinic", "-m"]
    result = cli_runner.invoke(cli, [*ingest, str(files["map"])], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with Custos.open(store_url, settings) as custos, custos.store.read() as conn:
        stored = " ".join(
            str(value)
            for table in (t.raw_records, t.records)
            for row in conn.execute(select(table))
            for value in row
        )
    for planted in ("Maria Schneider", "23456789", "Jonathan Miller", "2345678", "j.miller@"):
        assert planted not in stored
    assert "<PHONE>" in stored
    result = cli_runner.invoke(
        cli, ["--db", store_url, "pii", "scan", "--source", "clinic", "--json"]
    )
    assert result.exit_code == 0, result.output
    scanned = orjson.loads(result.stdout)
    assert scanned["texts"] == 12  # the notes are read (redacted: the engine finds no phone)
    assert "PHONE" not in scanned["findings"]


def test_free_text_is_refused_or_released_redacted(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    files = notes(tmp_path, count=30)
    persons = ["record_id,email,date_of_birth,sex"]
    persons += [f"c{i},p{i}@example.org,19{60 + i % 3}-05-01,{'FM'[i % 2]}" for i in range(30)]
    consents = ["email,purpose,status,timestamp,explicit"]
    consents += [
        f"p{i}@example.org,health_research,granted,2026-01-01T00:00:00Z,yes" for i in range(30)
    ]
    tags = write(
        tmp_path / "tags.yaml",
        "categories:\n  physician_note: free_text\n  finding: health\n  sex: identity\n",
    )
    with Custos.open(store_url, settings) as custos:
        custos.ingest(
            write(tmp_path / "persons.csv", "\n".join(persons) + "\n"), "crm", map_path=tags
        )
        # Kept as is at ingestion (--pii keep): the release itself must redact.
        custos.ingest(files["notes"], "clinic", map_path=tags, pii="keep")
        custos.resolve()
        custos.ingest(
            write(tmp_path / "c.csv", "\n".join(consents) + "\n"), "crm", kind=Kind.CONSENTS
        )
    out = tmp_path / "r.csv"
    args = ["--db", store_url, "release", "-p", "health_research", "-o", str(out)]
    args += ["-q", "sex", "-s", "finding,physician_note", "--source", "clinic"]
    result = runner(settings).invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 2, result.output  # a configuration error: nothing was read out
    assert "physician_note is never released" in result.output
    assert "--redact-text" in result.output and not out.exists()
    result = runner(settings).invoke(cli, [*args, "--redact-text"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "free text redacted by the PII engine: physician_note" in result.output
    rows = read(out)
    assert list(rows[0]) == ["person", "sex", "finding", "physician_note"]
    text = out.read_text(encoding="utf-8")
    for planted in ("Schneider", "Maria", "Miller", "23456789", "2345678", "example.org"):
        assert planted not in text
    assert "<PHONE>" in text and "<PERSON>" in text
    meta = orjson.loads(out.with_name("r.csv.meta.json").read_bytes())
    assert meta["redacted_text"] == ["physician_note"] and meta["sensitive"] == ["finding"]


def test_counts_are_top_coded_where_fewer_than_k_persons_reach_them(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    persons = ["record_id,email,date_of_birth,sex"]
    visits = ["record_id,email,visits,diagnosis"]
    consents = ["email,purpose,status,timestamp,explicit"]
    for i in range(40):
        email = f"p{i}@example.org"
        persons.append(f"c{i},{email},{1940 + i}-02-01,{'FM'[i % 2]}")
        count = 20 + 5 * (i - 35) if i >= 35 else 1 + i % 4  # five frequent visitors: 20 … 40
        visits.append(f"v{i},{email},{count},{('asthma', 'lupus')[i % 2]}")
        consents.append(f"{email},health_research,granted,2026-01-01T00:00:00Z,yes")
    tags = write(tmp_path / "tags.yaml", "categories:\n  visits: health\n  diagnosis: health\n")
    with Custos.open(store_url, settings) as custos:
        custos.ingest(write(tmp_path / "p.csv", "\n".join(persons) + "\n"), "crm")
        custos.ingest(write(tmp_path / "v.csv", "\n".join(visits) + "\n"), "clinic", map_path=tags)
        custos.resolve()
        custos.ingest(
            write(tmp_path / "c.csv", "\n".join(consents) + "\n"), "crm", kind=Kind.CONSENTS
        )
    out = tmp_path / "r.csv"
    report = release_cli(settings, store_url, out, "-q", "visits", "-s", "diagnosis")
    assert report["top_coded"] == {"visits": "20+"}
    shown = {r["visits"] for r in read(out)}
    assert "20+" in shown and not shown & {"25", "30", "35", "40"}
    meta = orjson.loads(out.with_name("r.csv.meta.json").read_bytes())
    assert meta["top_coded"] == {"visits": "20+"}
