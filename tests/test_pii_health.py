"""Health words in free text (issue 17, item 6): "Asthma-Medikation" in a call note was kept and
shown to customer service. Health terms are found in English and German (compounds included,
everyday phrases left alone); a note naming one keeps its whole text only for purposes allowed
health data with explicit consent, everyone else reads it with the terms replaced, and the
person's access report shows it whole."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from custos.core.settings import Settings
from custos.privacy.pii import PiiEngine
from custos.privacy.pii.recognizers.health import health_spans
from custos.service import Custos, dsr, keys
from custos.store import tables as t
from tests.conftest import start_serve, write


def _found(text: str, language: str) -> list[str]:
    return [text[start:end] for start, end in health_spans(text, language)]


@pytest.mark.parametrize(
    ("language", "text", "terms"),
    [
        ("de", "Kundin fragt nach ihrer Asthma-Medikation.", ["Asthma-Medikation"]),
        ("de", "Ist Diabetiker, die Insulinpumpe ist defekt.", ["Diabetiker", "Insulinpumpe"]),
        ("de", "Seit Montag krankgeschrieben, Rückenschmerzen.", ["krankgeschrieben", "Rückenschmerzen"]),
        ("de", "Nimmt Metformin und Ibuprofen, Termin beim Hausarzt.", ["Metformin", "Ibuprofen", "Hausarzt"]),
        ("de", "Patient mit ADHS, Erkältung seit Tagen.", ["ADHS", "Erkältung"]),
        ("en", "She was diagnosed with type 2 diabetes and uses an inhaler.", ["diagnosed", "type 2 diabetes", "inhaler"]),
        ("en", "Off sick after surgery; on sertraline for depression.", ["Off sick", "surgery", "sertraline", "depression"]),
        ("en", "Caller is pre-diabetic and has a hearing aid.", ["pre-diabetic", "hearing aid"]),
        ("en", "Needs the EpiPen for his peanut allergy.", ["EpiPen", "peanut allergy"]),
    ],
)  # fmt: skip
def test_health_terms_are_found_in_both_languages(
    language: str, text: str, terms: list[str]
) -> None:
    assert _found(text, language) == terms


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Sick of waiting for the refund, the cold weather delayed the parcel."),
        ("en", "The app is a pain to use; I disabled the account and ran diagnostics on the router."),
        ("en", "We sell blinds and hospitality vouchers; the operation failed."),
        ("de", "Die Krankenkasse zahlt die Rechnung, Krankenversicherung gewechselt."),
        ("de", "Spülmaschinentabletten fehlen, Fehlerdiagnose am Auto, Dreharbeiten im Hof."),
        ("de", "Er hat sein Versprechen gebrochen und will Schmerzensgeld, Lithium-Akku defekt."),
    ],
)  # fmt: skip
def test_everyday_words_are_not_health_terms(language: str, text: str) -> None:
    assert _found(text, language) == []


def test_the_engine_reports_and_redacts_health_terms() -> None:
    engine = PiiEngine()
    text = "Kunde Hans Brückner fragt nach Asthma-Medikation, Rückruf unter 0171 2345678."
    assert engine.scan(text, "de") == {"PERSON": 1, "HEALTH": 1, "PHONE": 1}
    assert engine.redact(text, "de") == "Kunde <PERSON> fragt nach <HEALTH>, Rückruf unter <PHONE>."
    assert "Asthma" in engine.redact(text, "de", per_entity={"HEALTH": "keep"})


TAXONOMY = """purposes:
  patient_support:
    basis: consent
    description: "helping patients with their medical supplies"
    categories: [identity, contact, behaviour, free_text, health]
"""
NOTES = """record_id,timestamp,email,notes,lang
n1,2026-03-01T10:00:00Z,anna@example.com,"Kundin fragt nach ihrer Asthma-Medikation, Lieferung verspätet.",de
n2,2026-03-02T10:00:00Z,carl@example.com,"Caller is diabetic, the insulin pump arrived broken.",en
n3,2026-03-03T10:00:00Z,ben@example.com,"Sick of waiting, the cold weather is no excuse.",en
"""
MAP = "kind: interactions\nfields:\n  record_id: record_id\n  text: notes\n  language: lang\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_health_note_is_whole_only_for_a_health_purpose_with_explicit_consent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOS_TAXONOMY", str(write(tmp_path / "taxonomy.yaml", TAXONOMY)))
    db = str(tmp_path / "custos.db")
    with Custos.open(db, Settings(db=db)) as app:
        app.ingest(
            write(tmp_path / "notes.csv", NOTES), "calls", map_path=write(tmp_path / "m.yaml", MAP)
        )
        app.resolve()
        for email, explicit in (("anna@example.com", True), ("carl@example.com", False)):
            app.record_consent(
                email, purpose="patient_support", status="granted", source="crm", explicit=explicit
            )
        anna, carl, ben = (app.find_profile(f"{n}@example.com") for n in ("anna", "carl", "ben"))
        desk = keys.create(app, "desk", ["customer_service"])
        care = keys.create(app, "care", ["patient_support"])
        admin = keys.create(app, "dpo", ["customer_service"], "admin")
        with app.store.read() as conn:
            rows = conn.execute(
                select(t.interactions.c.text, t.interactions.c.health_text, t.raw_records.c.payload)
                .join(t.raw_records, t.raw_records.c.id == t.interactions.c.raw_id)
                .order_by(t.interactions.c.raw_id)
            ).all()
        # The stored text and the verbatim payload hold the terms replaced; only health_text
        # (category health) holds them, and only for the notes that name one.
        assert [r.text for r in rows[:2]] == [
            "Kundin fragt nach ihrer <HEALTH>, Lieferung verspätet.",
            "Caller is <HEALTH>, the <HEALTH> arrived broken.",
        ]
        assert "Asthma" not in rows[0].payload and "insulin" not in rows[1].payload
        assert (
            rows[0].health_text == "Kundin fragt nach ihrer Asthma-Medikation, Lieferung verspätet."
        )
        assert rows[2].health_text is None and rows[2].text.startswith("Sick of waiting")

    port = _free_port()
    server = start_serve(db, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:

            def texts(key: str, pid: str, purpose: str) -> list[str]:
                got = client.get(
                    f"/v1/profiles/{pid}/interactions",
                    params={"purpose": purpose},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert got.status_code == 200, got.text
                shown = client.get(
                    f"/v1/profiles/{pid}",
                    params={"purpose": purpose},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert shown.status_code == 200, shown.text
                detail = [i.get("text") for i in shown.json()["interactions"]]
                listed = [i.get("text") for i in got.json()["items"]]
                assert detail == listed  # one rule for both read paths
                return listed

            # Customer service reads the note, but not what it says about Anna's health.
            assert texts(desk, anna, "customer_service") == [
                "Kundin fragt nach ihrer <HEALTH>, Lieferung verspätet."
            ]
            # Patient support, with Anna's explicit consent, reads it whole…
            assert texts(care, anna, "patient_support") == [
                "Kundin fragt nach ihrer Asthma-Medikation, Lieferung verspätet."
            ]
            # …but Carl's consent is not explicit: his note stays redacted.
            assert texts(care, carl, "patient_support") == [
                "Caller is <HEALTH>, the <HEALTH> arrived broken."
            ]
            assert texts(desk, ben, "customer_service") == [
                "Sick of waiting, the cold weather is no excuse."
            ]
            # Anna's access report shows her the whole note.
            report = client.post(
                "/v1/dsr/access",
                json={"key": "anna@example.com"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert report.status_code == 200, report.text
            notes = [i["text"] for i in report.json()["report"]["interactions"]]
            assert notes == ["Kundin fragt nach ihrer Asthma-Medikation, Lieferung verspätet."]
            assert "health_text" not in json.dumps(report.json()["report"]["attributes"])
    finally:
        server.terminate()
        server.wait(10)


def test_the_in_process_access_report_shows_the_whole_note(tmp_path: Path) -> None:
    db = str(tmp_path / "custos.db")
    with Custos.open(db, Settings(db=db)) as app:
        app.ingest(
            write(tmp_path / "notes.csv", NOTES), "calls", map_path=write(tmp_path / "m.yaml", MAP)
        )
        app.resolve()
        _, report = dsr.access_in_memory(app, "carl@example.com", actor="test")
    assert [i["text"] for i in report["interactions"]] == [
        "Caller is diabetic, the insulin pump arrived broken."
    ]


def test_pseudonymise_replaces_health_terms_and_keeps_them_apart(tmp_path: Path) -> None:
    """Under ``pseudonymise`` identifiers become keyed tokens, but a health term is replaced
    outright (a token per condition would let anyone count who shares one)."""
    from custos.service import pii

    settings = Settings(db="unused", secret_key_file=str(tmp_path / "secret.key"))
    pseudonymise, redact = (pii.text_filter(settings, p) for p in ("pseudonymise", "redact"))
    assert pseudonymise is not None and redact is not None
    text = "Kunde Hans Brückner braucht Insulin, Rückruf unter 0171 2345678."
    hidden, whole = pseudonymise(text, "de")
    assert "<HEALTH>" in hidden and "Insulin" not in hidden and "<PHONE_" in hidden
    assert whole is not None and "Insulin" in whole and "0171" not in whole
    assert redact("Lieferung fehlt.", "de") == ("Lieferung fehlt.", None)


def test_a_changed_note_replaces_its_whole_text(tmp_path: Path) -> None:
    """A note ingested again without the health term keeps no whole text from before."""
    db = str(tmp_path / "custos.db")
    mapping = write(tmp_path / "m.yaml", MAP)
    changed = NOTES.replace("ihrer Asthma-Medikation", "ihrer Bestellung")
    with Custos.open(db, Settings(db=db)) as app:
        app.ingest(write(tmp_path / "a.csv", NOTES), "calls", map_path=mapping)
        app.ingest(write(tmp_path / "b.csv", changed), "calls", map_path=mapping)
        with app.store.read() as conn:
            first = conn.execute(
                select(t.interactions.c.text, t.interactions.c.health_text)
                .join(t.raw_records, t.raw_records.c.id == t.interactions.c.raw_id)
                .where(t.raw_records.c.record_id == "n1")
            ).one()
    assert first.text == "Kundin fragt nach ihrer Bestellung, Lieferung verspätet."
    assert first.health_text is None
