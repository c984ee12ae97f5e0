"""Issue 17: a quarantine that can be worked off, unknown purposes, unclassified columns, blank
lines; each case performed as a user meets it (CLI, Python API, a real `custos serve`)."""

from __future__ import annotations

import csv
import io
import os
import socket
import stat
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app
from custos.core.errors import AccessDenied, InputError
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.service import Custos, insight
from custos.store import tables as t
from tests.conftest import start_serve, write

runner = CliRunner()

# Two rows whose e-mails cannot be read (quarantined whole under CUSTOS_BAD_FIELDS=quarantine),
# a blank line, and an extra column nobody has classified.
CRM = """record_id;email;city;country;street;loyalty_tier
r1;anna@example.com;Berlin;DE;Hauptstr. 1;gold

r2;bert(at)example.com;Köln;DE;Ring 2;silver
r3;carla@@example.com;=Bonn;DE;Weg 3;gold
"""
FIXED = CRM.replace("bert(at)example.com", "bert@example.com").replace("carla@@", "carla@")


def run(db: str, *args: str, code: int = 0) -> str:
    """A custos command on ``db`` (created first: only ``init`` creates a store)."""
    if not Path(db).exists():
        assert runner.invoke(app, ["--db", db, "init"]).exit_code == 0
    result = runner.invoke(app, ["--db", db, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())  # rich wraps long lines


def open_count(db: str) -> int:
    out = run(db, "stats")
    return int(out.split("quarantined")[1].split()[1])


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOS_BAD_FIELDS", "quarantine")
    monkeypatch.setenv("COLUMNS", "250")


def test_fixed_rows_close_their_entries(store_url: str, tmp_path: Path) -> None:
    out = run(store_url, "ingest", str(write(tmp_path / "crm.csv", CRM)), "-s", "crm")
    assert "2 row(s) quarantined" in out and "1 blank line(s) skipped" in out
    assert open_count(store_url) == 2

    out = run(store_url, "ingest", str(write(tmp_path / "crm2.csv", FIXED)), "-s", "crm")
    assert "2 quarantine entries closed" in out
    assert open_count(store_url) == 0
    assert "the quarantine is empty" in run(store_url, "quarantine", "list")
    listed = run(store_url, "quarantine", "list", "--all")
    assert "r2" in listed and "r3" in listed and "open" not in listed.split("closed", 1)[1]
    with Custos.open(store_url, Settings(_env_file=None, db="unused")) as custos:  # type: ignore[call-arg]
        rows = custos.quarantine(open_only=False)
        assert {r["record_id"] for r in rows} == {"r2", "r3"}
        assert all(r["closed_at"] is not None for r in rows)
        assert custos.stats()["quarantined"] == 0

    # The old file again: its bad rows are the entries already worked off, nothing reopens.
    run(store_url, "ingest", str(tmp_path / "crm.csv"), "-s", "crm")
    assert open_count(store_url) == 0


def test_left_out_fields_stay_listed_until_a_new_version_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOS_BAD_FIELDS", "drop")
    db = str(tmp_path / "c.db")
    first = write(tmp_path / "a.csv", "record_id,email,city\nr1,nope,Berlin\n")
    run(db, "ingest", str(first), "-s", "crm")
    assert open_count(db) == 1
    run(db, "ingest", str(first), "-s", "crm")  # the same row: the field is still left out
    assert open_count(db) == 1
    run(
        db,
        "ingest",
        str(write(tmp_path / "b.csv", "record_id,email,city\nr1,a@b.de,Berlin\n")),
        "-s",
        "crm",
    )
    assert open_count(db) == 0


def test_export_fix_and_ingest_closes_entries_consents_too(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    run(db, "ingest", str(write(tmp_path / "crm.csv", CRM)), "-s", "crm")
    consents = (
        "email,purpose,status,timestamp\nanna@example.com,marketing_emails,granted,2026-01-02\n"
    )
    run(
        db,
        "ingest",
        str(write(tmp_path / "c.csv", consents)),
        "-s",
        "crm",
        "-k",
        "consents",
        code=1,
    )
    assert open_count(db) == 3

    target = tmp_path / "fix.csv"
    refused = run(db, "quarantine", "export", "-s", "crm", "-o", str(target), code=2)
    assert "rows of consents and records wait" in refused and "--kind" in refused
    done = run(db, "quarantine", "export", "-s", "crm", "-o", str(target), "-k", "records")
    assert "2 row(s) to fix written" in done
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    text = target.read_text(encoding="utf-8")
    assert "'=Bonn" in text  # a formula cell is neutralised
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["quarantine_reason"] for r in rows] == ["not an e-mail address"] * 2
    write(target, text.replace("bert(at)", "bert@").replace("carla@@", "carla@"))
    assert "2 quarantine entries closed" in run(db, "ingest", str(target), "-s", "crm")

    # The consent row has no record id: its entry closes by the export's quarantine_id.
    fix = tmp_path / "consents_fix.csv"
    run(db, "quarantine", "export", "-s", "crm", "-o", str(fix), "-k", "consents")
    text = fix.read_text(encoding="utf-8")
    assert "did you mean 'marketing_email'" in text
    write(fix, text.replace("marketing_emails,", "marketing_email,"))
    out = run(db, "ingest", str(fix), "-s", "crm", "-k", "consents")
    assert "1 quarantine entry closed" in out
    assert open_count(db) == 0
    with Custos.open(db) as custos, custos.store.read() as conn:
        payloads = conn.execute(select(t.raw_records.c.payload)).scalars().all()
        purposes = conn.execute(select(t.consent_events.c.purpose)).scalars().all()
        payloads += conn.execute(select(t.consent_events.c.payload)).scalars().all()
    assert purposes == ["marketing_email"]
    assert not any("quarantine_" in p for p in payloads)  # the notes are not stored
    assert any('"city":"=Bonn"' in p for p in payloads)  # the value as it was, without the quote


def test_retry_after_a_map_change(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    data = "Nr;Mail;Tel\nk1;a@example.com;+49 30 1234567\nk2;b@example.com;+49 30 7654321\nk3;kaputt;+49 30 1\n"
    wrong = write(tmp_path / "m1.yaml", "record_id: Nr\nemail: Tel\n")
    right = write(tmp_path / "m2.yaml", "record_id: Nr\nemail: Mail\nphone: Tel\n")
    run(db, "ingest", str(write(tmp_path / "crm.csv", data)), "-s", "crm", "-m", str(wrong), code=1)
    assert open_count(db) == 3
    out = run(db, "quarantine", "retry", "-s", "crm", "-m", str(right))
    assert "2 quarantine entries closed" in out
    assert open_count(db) == 1
    listed = run(db, "quarantine", "list")
    assert "k3" in listed and "email (column Mail)" in listed  # the reason found now
    with Custos.open(db) as custos:
        assert custos.stats()["records"] == 2


def test_unknown_purpose_is_quarantined_and_retried_after_a_taxonomy_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "c.db")
    consents = write(
        tmp_path / "c.csv",
        "record_id,email,purpose,status,timestamp\n"
        "e1,anna@example.com,marketing_emails,granted,2026-01-02\n"
        "e2,anna@example.com,newsletter_de,granted,2026-01-02\n"
        "e3,anna@example.com,marketing_email,granted,2026-01-02\n",
    )
    with Custos.open(db) as custos:
        summary = custos.ingest(consents, "crm", kind=Kind.CONSENTS)
        assert summary.quarantined == 2 and summary.stored == 1
        reasons = {r["record_id"]: r["reason"] for r in custos.quarantine()}
    assert reasons["e1"] == "unknown purpose 'marketing_emails'; did you mean 'marketing_email'?"
    assert reasons["e2"] == "unknown purpose 'newsletter_de'"
    out = run(
        db,
        "consent",
        "grant",
        "anna@example.com",
        "--purpose",
        "marketing_emails",
        "-s",
        "x",
        code=2,
    )
    assert "did you mean 'marketing_email'" in out

    taxonomy = write(
        tmp_path / "t.yaml",
        "purposes:\n  newsletter_de:\n    basis: consent\n    categories: [identity, contact]\n",
    )
    monkeypatch.setenv("CUSTOS_TAXONOMY", str(taxonomy))
    out = run(db, "quarantine", "retry", "-s", "crm")
    assert "1 quarantine entry closed" in out
    assert "e1" in run(db, "quarantine", "list") and open_count(db) == 1


def test_a_collected_call_sent_again_fixed_closes_its_entry(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    assert runner.invoke(app, ["--db", db, "init"]).exit_code == 0
    made = runner.invoke(app, ["--db", db, "keys", "create", "--name", "web", "--scope", "write"])
    key = made.stdout.strip().splitlines()[-1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_serve(db, port)
    try:
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
        bad = httpx.post(f"{base}/v1/track", json={"userId": "u", "messageId": "m1"}, headers=auth)
        assert bad.status_code == 200 and bad.json()["quarantined"] == 1
        assert open_count(db) == 1
        good = {"userId": "u", "messageId": "m1", "event": "Signed Up"}
        assert httpx.post(f"{base}/v1/track", json=good, headers=auth).json()["stored"] == 1
        assert open_count(db) == 0
        assert "track needs event" in run(db, "quarantine", "list", "--all")
    finally:
        server.terminate()
        server.wait(10)


def test_unclassified_columns_are_reported_and_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "c.db")
    out = run(db, "ingest", str(write(tmp_path / "crm.csv", FIXED)), "-s", "crm")
    assert "stored unclassified, which no purpose may use: loyalty_tier" in out
    assert "categories: {loyalty_tier: behaviour}" in out
    with Custos.open(db) as custos:
        summary = custos.ingest(tmp_path / "crm.csv", "crm")
        assert summary.unclassified == ["loyalty_tier"] and summary.skipped == 1
        custos.resolve()
        with pytest.raises(InputError, match="'loyalty_tier' is unclassified") as refused:
            insight.create_segment(custos, "gold", "loyalty_tier = 'gold'")
        assert "fields: {loyalty_tier: CATEGORY}" in str(refused.value.hint)
        with pytest.raises(InputError, match="unknown field 'income'"):
            insight.create_segment(custos, "rich", "income > 3")
    out = run(db, "insight", "trend", "--by", "loyalty_tier", code=3)
    assert "'loyalty_tier' is unclassified" in out and "CUSTOS_TAXONOMY" in out

    # Tagged in the map file, the column is no longer listed.
    tagged = write(tmp_path / "m.yaml", "categories:\n  loyalty_tier: behaviour\n")
    out = run(db, "ingest", str(tmp_path / "crm.csv"), "-s", "crm", "-m", str(tagged))
    assert "unclassified" not in out
    # Classified in a custom taxonomy (the README's example), segments may name it.
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("- **A custom taxonomy.**", 1)[1].split("```yaml\n", 1)[1]
    example = "\n".join(line[2:] for line in example.split("```", 1)[0].splitlines())
    monkeypatch.setenv("CUSTOS_TAXONOMY", str(write(tmp_path / "t.yaml", example)))
    with Custos.open(db, Settings()) as custos:
        insight.create_segment(custos, "gold", "loyalty_tier = 'gold'")
        assert custos.taxonomy.category("loyalty_tier") == "loyalty"


def test_marketing_may_segment_by_city_and_country_but_never_sees_the_street(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "c.db")
    with Custos.open(db) as custos:
        custos.ingest(write(tmp_path / "crm.csv", FIXED), "crm")
        custos.resolve()
        for email in ("anna@example.com", "bert@example.com"):
            custos.record_consent(email, purpose="marketing_email", status="granted", source="crm")
        insight.create_segment(custos, "berlin", "country = 'DE' and city = 'Berlin'")
        rows = insight.segment_members(custos, "berlin", purpose="marketing_email")
        assert [r["city"] for r in rows] == ["Berlin"]
        assert not any("street" in r or "postcode" in r for r in rows)
        insight.create_segment(custos, "by_street", "street = 'Hauptstr. 1'")
        with pytest.raises(AccessDenied, match="may not use 'street'"):
            insight.segment_members(custos, "by_street", purpose="marketing_email")
        # A purpose that may use the exact address may use the town too (location includes it).
        assert "coarse_location" in custos.taxonomy.purposes["customer_service"].categories


def test_blank_lines_are_counted_as_skipped(tmp_path: Path) -> None:
    with Custos.open(str(tmp_path / "c.db")) as custos:
        lines = '{"record_id": "a"}\n\n{"record_id": "b"}\n   \n'
        summary = custos.ingest(write(tmp_path / "a.jsonl", lines), "app")
        assert (summary.read, summary.stored, summary.skipped) == (2, 2, 2)
        summary = custos.ingest(write(tmp_path / "b.csv", "record_id;city\nc;Bonn\n;\n"), "crm")
        assert (summary.read, summary.skipped, summary.quarantined) == (1, 1, 0)
        summary = custos.ingest(write(tmp_path / "c.csv", "record_id\nc\n"), "crm")
        assert summary.skipped == 0  # the last line's end is no blank line


def test_a_consent_event_does_not_close_a_record_of_the_same_id(tmp_path: Path) -> None:
    with Custos.open(str(tmp_path / "c.db")) as custos:
        custos.ingest(write(tmp_path / "a.csv", "record_id,email\nr2,nope@@x\n"), "crm")
        assert custos.stats()["quarantined"] == 1
        consent = (
            "record_id,email,purpose,status,timestamp\nr2,a@b.de,analytics,denied,2026-01-02\n"
        )
        summary = custos.ingest(write(tmp_path / "c.csv", consent), "crm", kind=Kind.CONSENTS)
        assert summary.stored == 1 and summary.closed == 0
        assert custos.stats()["quarantined"] == 1
