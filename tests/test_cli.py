"""The CLI contract, driven in process with Typer's runner on both backends."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import orjson
from typer.testing import CliRunner

from custos.cli import app
from tests.conftest import write
from tests.test_identity import CALLS, CRM, SHOP

runner = CliRunner()


def run(db: str, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--db", db, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_init_ingest_resolve_export_show_stats(store_url: str, tmp_path: Path) -> None:
    assert "store ready" in run(store_url, "init")
    out = run(store_url, "ingest", str(write(tmp_path / "crm.csv", CRM)), "--source", "crm")
    assert "stored" in out and "4" in out
    run(store_url, "ingest", str(write(tmp_path / "shop.csv", SHOP)), "--source", "webshop")
    run(
        store_url,
        "ingest",
        str(write(tmp_path / "calls.csv", CALLS)),
        "-s",
        "callcentre",
        "--kind",
        "interactions",
    )
    assert "profiles:" in run(store_url, "resolve")

    rows = list(csv.DictReader(io.StringIO(run(store_url, "export", "xref"))))
    assert list(rows[0]) == ["source", "record_id", "profile_id"] and len(rows) == 10
    target = tmp_path / "xref.jsonl"
    run(store_url, "export", "xref", "--format", "jsonl", "--output", str(target))
    lines = [orjson.loads(line) for line in target.read_text().splitlines()]
    assert {(r["source"], r["record_id"]) for r in lines} == {
        (r["source"], r["record_id"]) for r in rows
    }

    anna = next(r["profile_id"] for r in rows if r["record_id"] == "c1")
    shown = orjson.loads(run(store_url, "profile", "show", "anna@example.com", "--json"))
    assert shown["profile_id"] == anna
    assert "golden record" in run(store_url, "profile", "show", anna)
    assert "interactions" in run(store_url, "stats")


def test_quarantine_list_and_exit_codes(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    run(db, "init")  # only init creates a store
    bad = write(tmp_path / "bad.csv", "record_id,date_of_birth\n,1980-01-01\n,1981-01-01\n")
    out = run(db, "ingest", str(bad), "--source", "crm", code=1)  # nothing could be stored
    assert "quarantined" in out
    dated = write(tmp_path / "dated.csv", "record_id,date_of_birth\n2,gestern\n")
    out = run(db, "ingest", str(dated), "--source", "crm")  # stored without the birth date
    assert "1 unreadable field(s) left out of stored rows" in out
    listed = run(db, "quarantine", "list")
    assert "record_id" in listed and "not a date" in listed
    assert "gestern" not in listed  # values stay out of reports
    run(db, "quarantine", "list", "--source", "nope")


def test_errors_are_clear_and_exit_2(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    run(db, "init")  # only init creates a store
    out = run(db, "ingest", str(tmp_path / "missing.csv"), "--source", "crm", code=2)
    assert "no such file" in out
    out = run(db, "profile", "show", "nobody@example.com", code=2)
    assert "no profile" in out and "fix:" in out


def test_demo_runs_and_reports(tmp_path: Path) -> None:
    out = run("unused", "demo", "--folder", str(tmp_path / "demo"), "--people", "150")
    assert "crm_customers.csv" in out and "profiles:" in out and "precision" in out
    assert "example profile" in out
    assert "may be used for marketing_email" in out
    assert (tmp_path / "demo" / "custos.db").exists()
    again = run("unused", "demo", "--folder", str(tmp_path / "demo"), "--people", "150")

    def summary(text: str) -> str:  # the resolve line without its timing
        return text.split("profiles:")[1].split("\n")[0].rsplit(";", 1)[0]

    assert summary(again) == summary(out)


def test_a_typo_in_db_is_refused_not_created(store_url: str, tmp_path: Path) -> None:
    """Every command but init refuses a store that does not exist (a SQLite file not there, or
    a PostgreSQL database without custos's schema), and creates nothing; init creates it."""
    typo = str(tmp_path / "custso.db") if not store_url.startswith("postgres") else store_url
    for args in (
        ["stats"],
        ["profile", "show", "anna@example.com"],
        ["profile", "search", "Anna"],
        ["ingest", str(write(tmp_path / "crm.csv", CRM)), "--source", "crm"],
        ["keys", "create", "--name", "web", "--purpose", "analytics"],
        ["sources", "list"],
    ):
        out = run(typo, *args, code=2)
        assert "no custos store at" in out and "create one with `custos init`" in out
        assert "password" not in out
    assert not (tmp_path / "custso.db").exists()
    assert "store ready" in run(typo, "init")
    assert "profiles" in run(typo, "stats")


def test_custos_serve_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    """A real `custos serve` on a mistyped --db ends at once with the message, serving nothing."""
    typo = tmp_path / "custso.db"
    done = subprocess.run(
        [sys.executable, "-c", "from custos.cli import main; main()", "--db", str(typo), "serve",
         "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "no custos store at" in done.stderr
    assert not typo.exists()


def test_resolve_says_how_many_profiles_new_evidence_split(store_url: str, tmp_path: Path) -> None:
    """The son's card joined his father's on the landline; "Stefan Vogel sen." arriving later
    splits it off, and `custos resolve` says so."""
    from tests.test_households import GENERATION_AT_HOME

    header, sen, *rest = GENERATION_AT_HOME.splitlines()
    cards = [r for r in rest if r.startswith(("v2", "v3"))]
    run(store_url, "init")
    run(
        store_url,
        "ingest",
        str(write(tmp_path / "a.csv", "\n".join([header, *cards]))),
        "-s",
        "crm",
    )
    assert "split off" not in run(store_url, "resolve")
    run(store_url, "ingest", str(write(tmp_path / "b.csv", f"{header}\n{sen}\n")), "-s", "crm")
    assert "profiles: 2 (1 new, 1 of them split off a profile, 0 merged into older ids)" in run(
        store_url, "resolve"
    )
