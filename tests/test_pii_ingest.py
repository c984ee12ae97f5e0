"""Free text at ingestion: redacted by default, pseudonymised or kept by policy; unreadable fields
dropped instead of rows when configured; `pii scan` reports without changing anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from custos.api.app import create_app
from custos.cli import app as cli
from custos.core.settings import Settings
from custos.service import Custos, keys
from custos.store import tables as t
from tests.conftest import write

PLANTED = ["Hans Brückner", "0171 2345678", "hans.brueckner@example.org", "DE89370400440532013000"]
CALLS = f"""record_id,timestamp,phone,notes,lang
k1,2026-03-01T10:00:00Z,+49 30 1111111,"Kunde {PLANTED[0]} ruft an, Rückruf unter {PLANTED[1]}.",de
k2,2026-03-02T10:00:00Z,+49 30 1111111,"Please send the invoice to {PLANTED[2]}, IBAN {PLANTED[3]}.",en
k3,2026-03-03T10:00:00Z,+49 30 2222222,"Lieferung fehlt, Kunde verärgert.",de
"""
MAP = "kind: interactions\nfields:\n  record_id: record_id\n  text: notes\n  language: lang\n"


def _everything(app: Custos) -> str:
    """Every value of every table, as one string."""
    chunks = []
    with app.store.read() as conn:
        for table in t.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                chunks.append(json.dumps([str(v) for v in row]))
    return "\n".join(chunks)


def test_call_notes_are_redacted_by_default_everywhere(custos: Custos, tmp_path: Path) -> None:
    summary = custos.ingest(
        write(tmp_path / "calls.csv", CALLS), "calls", map_path=write(tmp_path / "m.yaml", MAP)
    )
    assert summary.stored == 3
    stored = _everything(custos)
    for value in PLANTED:
        assert value not in stored  # no table, no verbatim payload holds it
    assert "0171" not in stored and "brueckner" not in stored.lower()
    with custos.store.read() as conn:
        texts = dict(
            conn.execute(
                select(t.raw_records.c.record_id, t.interactions.c.text).join(
                    t.interactions, t.interactions.c.raw_id == t.raw_records.c.id
                )
            ).all()
        )
    assert "<PERSON>" in texts["k1"] and "<PHONE>" in texts["k1"]
    assert "<EMAIL>" in texts["k2"] and "<IBAN>" in texts["k2"]
    assert texts["k3"] == "Lieferung fehlt, Kunde verärgert."  # nothing to redact
    custos.resolve()
    exported = json.dumps(list(custos.export_profiles("customer_service")))
    assert not any(value in exported for value in PLANTED)
    # …nor through the REST API: the caller's interactions, as customer service sees them.
    key = keys.create(custos, "desk", ["customer_service"])
    client = TestClient(create_app(custos))
    pid = custos.find_profile("+49 30 1111111")
    answer = client.get(
        f"/v1/profiles/{pid}/interactions",
        params={"purpose": "customer_service"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200 and len(answer.json()["items"]) == 2
    assert "<PHONE>" in answer.text and not any(value in answer.text for value in PLANTED)


def test_pseudonymise_is_keyed_and_keep_keeps(tmp_path: Path) -> None:
    key = tmp_path / "secret.key"
    settings = Settings(db=str(tmp_path / "a.db"), secret_key_file=str(key))
    calls = write(tmp_path / "calls.csv", CALLS)
    mapping = write(tmp_path / "m.yaml", MAP)
    with Custos.open(str(tmp_path / "a.db"), settings) as app:
        app.ingest(calls, "calls", map_path=mapping, pii="pseudonymise")
        with app.store.read() as conn:
            text = conn.execute(select(t.interactions.c.text).limit(1)).scalar_one()
    assert PLANTED[0] not in text and "<PERSON_" in text
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    kept = write(tmp_path / "keep.yaml", MAP + "pii: keep\n")
    with Custos.open(str(tmp_path / "b.db")) as app:
        app.ingest(calls, "calls", map_path=kept)
        with app.store.read() as conn:
            texts = conn.execute(select(t.interactions.c.text)).scalars().all()
    assert any(PLANTED[0] in x for x in texts)


def test_unknown_policy_is_a_clear_error(custos: Custos, tmp_path: Path) -> None:
    from custos.core.errors import InputError

    with pytest.raises(InputError, match="free-text policy"):
        custos.ingest(write(tmp_path / "c.csv", CALLS), "calls", pii="shred")


def test_bad_fields_can_be_dropped_instead_of_the_row(tmp_path: Path) -> None:
    rows = "record_id,first_name,last_name,email,phone,date_of_birth\n"
    rows += "r1,Ada,Lovelace,ada@example.com,030 1234567,0958-12-10\n"  # impossible birth date
    rows += "r2,Alan,Turing,not-an-email,,1912-06-23\n"
    path = write(tmp_path / "people.csv", rows)
    strict = Settings(db=str(tmp_path / "q.db"), bad_fields="quarantine")
    with Custos.open(str(tmp_path / "q.db"), strict) as app:
        quarantined = app.ingest(path, "crm")
    assert (quarantined.stored, quarantined.quarantined) == (0, 2)
    # implausible: a birth date that reads but cannot be true (a typo) costs the field, an
    # e-mail that is not one at all still quarantines its row.
    implausible = Settings(db=str(tmp_path / "i.db"), bad_fields="implausible")
    with Custos.open(str(tmp_path / "i.db"), implausible) as app:
        default = app.ingest(path, "crm")
        with app.store.read() as conn:
            kept = conn.execute(select(t.records.c.email, t.records.c.date_of_birth)).all()
            noted = conn.execute(select(t.quarantine.c.field, t.quarantine.c.reason)).all()
    assert (default.stored, default.quarantined, default.fields_dropped) == (1, 1, 1)
    assert kept == [("ada@example.com", None)]
    assert sorted(f for f, _ in noted) == ["date_of_birth", "email"]
    with Custos.open(str(tmp_path / "d.db")) as app:  # the default: drop
        summary = app.ingest(path, "crm")
        assert (summary.stored, summary.quarantined, summary.fields_dropped) == (2, 0, 2)
        with app.store.read() as conn:
            stored = {r.email: r.date_of_birth for r in conn.execute(select(t.records))}
            issues = conn.execute(select(t.quarantine.c.field, t.quarantine.c.reason)).all()
    assert stored == {"ada@example.com": None, None: "1912-06-23"}
    assert {f for f, _ in issues} == {"date_of_birth", "email"}
    assert all("row stored without this field" in reason for _, reason in issues)


def test_cli_pii_scan_reports_types_and_changes_nothing(tmp_path: Path) -> None:
    calls = write(tmp_path / "calls.csv", CALLS)
    db = str(tmp_path / "s.db")
    assert CliRunner().invoke(cli, ["--db", db, "init"]).exit_code == 0  # only init creates a store
    result = CliRunner().invoke(
        cli, ["--db", db, "pii", "scan", str(calls), "--column", "notes", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["texts"] == 3 and report["with_findings"] == 2
    assert report["findings"]["PERSON"] >= 1 and report["findings"]["IBAN"] == 1
    assert not any(value in result.output for value in PLANTED)
