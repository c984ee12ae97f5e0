"""Re-ingestion on both backends: a changed row is a new version of its record (the old one kept
for provenance and data-subject access, erased with the record), an unchanged row a no-op; and
a file is decoded row by row (one bad byte does not switch a whole file to Windows-1252)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.errors import ConfigError
from custos.core.settings import Settings
from custos.service import Custos, dsr
from custos.store import golden as golden_store
from custos.store import tables as t
from tests.conftest import write

HEADER = "record_id,first_name,last_name,email,date_of_birth,city\n"
ANNA = "c1,Anna,Müller,anna@example.com,1985-03-07,Berlin\n"
ANNA_MOVED = "c1,Anna,Müller,anna.mueller@newmail.example,1985-03-07,Hamburg\n"
BEN = "c2,Ben,Schmidt,ben@example.com,1979-11-02,Köln\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with a secret key of the test's own (erasure needs one)."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", secret_key_file=str(tmp_path / "key" / "secret.key")
    )


def count(app: Custos, table: object) -> int:
    with app.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def golden(app: Custos, profile_id: str) -> dict[str, str]:
    with app.store.read() as conn:
        document = conn.execute(
            select(t.profile_golden.c.document).where(t.profile_golden.c.profile_id == profile_id)
        ).scalar_one()
    return golden_store.values(document)


def test_a_changed_row_becomes_a_new_version_and_updates_the_golden_record(
    custos: Custos, tmp_path: Path
) -> None:
    first = custos.ingest(write(tmp_path / "crm.csv", HEADER + ANNA + BEN), "crm")
    assert (first.stored, first.changed, first.duplicates) == (2, 0, 0)
    custos.resolve()
    profile = custos.find_profile("anna@example.com")
    assert golden(custos, profile)["email"] == "anna@example.com"

    # An unchanged re-export is a no-op: nothing new, nothing changed, no version.
    again = custos.ingest(write(tmp_path / "crm2.csv", HEADER + BEN + ANNA), "crm")
    assert (again.stored, again.changed, again.duplicates) == (0, 0, 2)
    assert count(custos, t.record_versions) == 0 and count(custos, t.identity_recheck) == 0

    # The CRM re-export after Anna moved: her row is a new version, Ben's stays as it is.
    moved = custos.ingest(write(tmp_path / "crm3.csv", HEADER + ANNA_MOVED + BEN), "crm")
    assert (moved.read, moved.stored, moved.changed, moved.duplicates) == (2, 0, 1, 1)
    assert count(custos, t.records) == 2 and count(custos, t.raw_records) == 2
    with custos.store.read() as conn:
        current = conn.execute(select(t.records.c.email, t.records.c.city)).all()
        assert ("anna.mueller@newmail.example", "Hamburg") in current
        old = conn.execute(select(t.record_versions)).mappings().one()
    assert old["version"] == 1 and old["file_name"] == "crm.csv"
    assert orjson.loads(old["fields"])["email"] == "anna@example.com"
    assert orjson.loads(old["payload"])["city"] == "Berlin"

    # The next (incremental) resolution keeps her profile and rebuilds its golden record.
    custos.resolve()
    assert custos.find_profile("anna.mueller@newmail.example") == profile
    values = golden(custos, profile)
    assert values["email"] == "anna.mueller@newmail.example" and values["city"] == "Hamburg"
    with pytest.raises(Exception, match="no profile"):
        custos.find_profile("anna@example.com")  # the old e-mail no longer finds her
    assert count(custos, t.identity_recheck) == 0
    # ... and so does a full one.
    custos.resolve(full=True)
    assert golden(custos, custos.find_profile("anna.mueller@newmail.example"))["city"] == "Hamburg"

    # Re-ingesting the same new export changes nothing; the first export again is a version 2.
    assert custos.ingest(tmp_path / "crm3.csv", "crm").changed == 0
    assert custos.ingest(tmp_path / "crm.csv", "crm").changed == 1
    with custos.store.read() as conn:
        assert conn.execute(select(t.record_versions.c.version)).scalars().all() == [1, 2]


def test_old_versions_are_in_the_access_report_and_erased_with_the_record(
    custos: Custos, tmp_path: Path
) -> None:
    custos.ingest(write(tmp_path / "crm.csv", HEADER + ANNA + BEN), "crm")
    custos.ingest(write(tmp_path / "crm2.csv", HEADER + ANNA_MOVED + BEN), "crm")
    custos.resolve()
    _, report = dsr.access_in_memory(custos, "anna.mueller@newmail.example", actor="cli")
    (row,) = [r for r in report["records"] if r["record_id"] == "c1"]
    (earlier,) = row["earlier_versions"]
    assert earlier["as_received"]["email"] == "anna@example.com"
    assert earlier["fields"]["city"] == "Berlin"

    dsr.erase(custos, "anna.mueller@newmail.example")
    assert count(custos, t.record_versions) == 0
    # The old e-mail of an earlier version is suppressed too: an old export cannot bring it back.
    old_export = write(tmp_path / "old.csv", HEADER + "c9,Zora,Kranz,anna@example.com,,Bonn\n")
    summary = custos.ingest(old_export, "shop")
    assert (summary.stored, summary.quarantined) == (0, 1)


def test_one_bad_byte_quarantines_its_row_and_the_rest_stays_utf8(
    custos: Custos, tmp_path: Path
) -> None:
    lines = [f"r{i},Jürgen,Weiß{i},j{i}@example.com,1970-01-0{i},München\n" for i in range(1, 9)]
    # line 7 of the file (row r6) was typed on a Windows machine: "Köln" in Windows-1252
    data = HEADER.encode() + b"".join(
        line.encode("cp1252") if n == 6 else line.encode() for n, line in enumerate(lines, 1)
    )
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    summary = custos.ingest(path, "crm")
    assert (summary.stored, summary.quarantined) == (7, 1)
    with custos.store.read() as conn:
        assert set(conn.execute(select(t.records.c.first_name)).scalars()) == {"Jürgen"}
        assert set(conn.execute(select(t.records.c.city)).scalars()) == {"München"}
    (bad,) = custos.quarantine(source="crm")
    assert bad["line_no"] == 7 and "line 7" in bad["reason"] and "utf-8" in bad["reason"]
    assert "re-save the file as UTF-8" in bad["fix"] and "--encoding" in bad["fix"]

    # JSON Lines are UTF-8: a line with a Windows-1252 byte is quarantined with the same fix.
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_bytes(
        b'{"record_id": "j1", "first_name": "J\xc3\xbcrgen"}\n'
        b'{"record_id": "j2", "first_name": "J\xfcrgen"}\n'
    )
    assert (custos.ingest(jsonl, "app").stored, custos.quarantine(source="app")[0]["line_no"]) == (
        1,
        2,
    )
    assert "not valid utf-8" in custos.quarantine(source="app")[0]["reason"]

    # A file entirely in Windows-1252 is read with --encoding (and still recognised alone).
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes((HEADER + "w1,Jürgen,Weiß,w@example.com,1970-01-01,Köln\n").encode("cp1252"))
    assert custos.ingest(legacy, "legacy", encoding="cp1252").stored == 1
    with pytest.raises(ConfigError, match="--encoding"):
        custos.ingest(legacy, "legacy", encoding="klingon")


def test_cli_ingest_takes_encoding_and_reports_new_changed_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOS_DB", str(tmp_path / "cli.db"))
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0  # only init creates a store
    runner = CliRunner()
    path = tmp_path / "crm.csv"
    path.write_bytes((HEADER + ANNA).encode("cp1252"))
    result = runner.invoke(cli, ["ingest", str(path), "-s", "crm", "--encoding", "cp1252"])
    assert result.exit_code == 0, result.output
    path.write_bytes((HEADER + ANNA_MOVED).encode("cp1252"))
    result = runner.invoke(cli, ["ingest", str(path), "-s", "crm", "--encoding", "cp1252"])
    assert result.exit_code == 0, result.output
    assert "changed" in result.output and "unchanged" in result.output
