"""Issue 16, the product side: the record's language wins, calibrated confidence and abstention,
a company's own labels (`insight evaluate`, `insight train`, `insight heads`), and
`export interactions` — each through the CLI."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.insight.sentiment import abstain, from_probabilities, get_engine
from custos.insight.sentiment.language import detect_language, resolve_language
from custos.service import Custos
from custos.service.insight import INTERACTION_COLUMNS
from custos.store import tables as t
from tests.conftest import write

CRM = """record_id,first_name,last_name,email
r1,Anna,Weber,anna@example.com
r2,Ben,Schulz,ben@example.com
r3,Carl,Meyer,carl@example.com
"""
# c1 is stated English, c2 German, c6 English although it shows no language at all; c3, c4
# are short and detected; c5 is French: unknown.
CALLS = """record_id,timestamp,email,channel,language,text
c1,2026-03-02T10:00:00Z,anna@example.com,phone,en,Caller asked for opening hours.
c2,2026-03-03T10:00:00Z,anna@example.com,phone,de,Danke!
c3,2026-03-04T10:00:00Z,ben@example.com,email,,"Great, thanks"
c4,2026-03-05T10:00:00Z,ben@example.com,email,,Wo bleibt mein Paket?
c5,2026-03-06T10:00:00Z,carl@example.com,chat,,"Je suis très déçu du service, ma commande n'est jamais arrivée."
c6,2026-03-07T10:00:00Z,carl@example.com,chat,en,Super Bowl
c7,2026-03-08T10:00:00Z,ben@example.com,phone,en,"Caller is diabetic, the insulin pump is terrible."
"""
# A source whose map tags a column as health: a purpose that may not see health data may not
# learn that a person has interactions there.
CLINIC = """record_id,timestamp,email,channel,text,condition
k1,2026-03-09T10:00:00Z,anna@example.com,phone,Thanks for the quick appointment,asthma
"""

# A call centre's notes as its agents label them: requests are neutral (the shipped head,
# trained on other texts, reads many of them as negative). Written for this test.
NEUTRAL = [
    "Caller asked for the opening hours of the Berlin store.",
    "Customer asks about the status of the order.",
    "Caller wants to change the delivery address.",
    "Customer requests a copy of the invoice.",
    "Caller asked whether the shop is open on Sunday.",
    "Customer asks how to reset the password.",
    "Caller wants to know the price of the premium plan.",
    "Customer asked to update the phone number on file.",
    "Caller asked where the nearest branch is.",
    "Customer requests the tracking number of the parcel.",
    "Caller asked for the opening hours on public holidays.",
    "Customer wants to switch to paperless billing.",
    "Caller asks which payment methods are accepted.",
    "Customer asked for the terms of the warranty.",
    "Caller wants to book an appointment for next week.",
    "Customer asks if the item is available in blue.",
    "Caller asked for the address of the returns centre.",
    "Customer requests a change of the billing date.",
    "Caller asks when the new catalogue comes out.",
    "Customer asked for the contact details of the sales team.",
    "Kunde fragt nach den Öffnungszeiten der Filiale.",
    "Anruferin möchte ihre Lieferadresse ändern.",
    "Kunde bittet um eine Kopie der Rechnung.",
    "Kundin fragt nach dem Status ihrer Bestellung.",
    "Anrufer fragt, welche Zahlungsarten möglich sind.",
    "Kunde möchte einen Termin für nächste Woche.",
    "Kundin fragt nach der Adresse für Rücksendungen.",
    "Anrufer fragt nach dem Preis des Premium-Tarifs.",
    "Kunde möchte seine Telefonnummer aktualisieren.",
    "Kundin fragt, ob der Artikel in Blau verfügbar ist.",
]
NEGATIVE = [
    "Customer is furious, the parcel arrived broken for the second time.",
    "Caller complains that nobody answered her three e-mails.",
    "Customer angry about being charged twice this month.",
    "Caller says the repair made things worse and wants a refund.",
    "Customer threatens to cancel after waiting four weeks.",
    "Caller very upset, the technician did not show up again.",
    "Customer complains about rude staff in the store.",
    "Caller is annoyed that the refund still has not arrived.",
    "Customer says the product stopped working after two days.",
    "Caller complains the hotline kept her on hold for an hour.",
    "Customer disappointed, the order was wrong again.",
    "Caller says this is the worst service he has ever had.",
    "Customer angry that the promised callback never came.",
    "Caller complains about hidden fees on the invoice.",
    "Customer is fed up with the constant delivery delays.",
    "Kunde beschwert sich, das Paket kam beschädigt an.",
    "Anruferin verärgert, niemand hat auf ihre Mails geantwortet.",
    "Kunde wütend über die doppelte Abbuchung.",
    "Kundin enttäuscht, die Reparatur hat nichts gebracht.",
    "Anrufer droht mit Kündigung nach vier Wochen Wartezeit.",
    "Kunde beschwert sich über unfreundliches Personal.",
    "Kundin ärgert sich, die Erstattung fehlt immer noch.",
    "Anrufer sagt, das Gerät ist nach zwei Tagen kaputt.",
    "Kunde verärgert über versteckte Gebühren.",
    "Kundin hat genug von den ständigen Lieferverzögerungen.",
]
POSITIVE = [
    "Customer thanked the team, the parcel arrived a day early.",
    "Caller very happy with the quick repair.",
    "Customer praised the friendly advice in the store.",
    "Caller says the new plan saves her a lot of money, thanks.",
    "Customer delighted, the refund came within a day.",
    "Caller thanked the agent for solving the problem so fast.",
    "Customer loves the new app, very easy to use.",
    "Caller happy that the technician came on time.",
    "Customer says this is the best service he has had in years.",
    "Caller grateful for the kind help with the form.",
    "Customer satisfied, everything worked perfectly.",
    "Caller praised the fast delivery and the packaging.",
    "Customer thanked us for the goodwill voucher.",
    "Caller pleased with the clear explanation of the bill.",
    "Customer very happy with the exchange, great service.",
    "Kunde bedankt sich, das Paket kam einen Tag früher.",
    "Anruferin sehr zufrieden mit der schnellen Reparatur.",
    "Kunde lobt die freundliche Beratung in der Filiale.",
    "Kundin freut sich, die Erstattung kam sofort.",
    "Anrufer bedankt sich für die schnelle Lösung.",
    "Kunde begeistert von der neuen App.",
    "Kundin lobt die pünktliche Lieferung.",
    "Anrufer zufrieden, alles hat perfekt geklappt.",
    "Kunde dankt für den Gutschein, toller Service.",
    "Kundin sehr froh über die klare Erklärung der Rechnung.",
]


def _labelled(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["note", "mood"])
        writer.writerows(rows)
    return path


def _notes() -> list[tuple[str, str]]:
    """The call centre's labelled notes, labels spelled as people do (neg, 0, positive)."""
    return (
        [(text, "0") for text in NEUTRAL]
        + [(text, "neg") for text in NEGATIVE]
        + [(text, "positive") for text in POSITIVE]
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Three persons with seven calls and a clinic visit; Carl objected to analytics."""
    db = tmp_path / "c.db"
    with Custos.open(str(db), Settings(db=str(db))) as app:
        app.ingest(write(tmp_path / "crm.csv", CRM), "crm")
        app.ingest(write(tmp_path / "calls.csv", CALLS), "calls", kind=Kind.INTERACTIONS)
        clinic_map = write(tmp_path / "clinic.yaml", "categories:\n  condition: health\n")
        app.ingest(
            write(tmp_path / "clinic.csv", CLINIC), "clinic", kind=Kind.INTERACTIONS,
            map_path=clinic_map,
        )  # fmt: skip
        app.resolve()
        app.record_consent("carl@example.com", purpose="analytics", status="denied", source="crm")
    return db


def _run(db: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _stored(db: Path) -> dict[str, tuple[str, str, str, float | None]]:
    """record id → (label, language, engine version, confidence) as stored."""
    s, rr = t.interaction_sentiment, t.raw_records
    with Custos.open(str(db), Settings(db=str(db))) as app, app.store.read() as conn:
        rows = conn.execute(
            select(
                rr.c.record_id, s.c.label, s.c.language, s.c.engine_version, s.c.confidence
            ).join(rr, rr.c.id == s.c.raw_id)
        ).all()
    return {r.record_id: (r.label, r.language, r.engine_version, r.confidence) for r in rows}


# --- item 3: language from the record ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [("Danke!", "de"), ("Great, thanks", "en"), ("Wo bleibt mein Paket?", "de"),
     ("Merci beaucoup pour votre aide, le colis est bien arrivé.", "unknown"),
     # Dutch call notes share "over" with English, and their customer-service words outvote it
     ("Klacht over beschadigd artikel, terugbetaling gedaan.", "unknown"),
     ("Klant vraagt waar het pakket is (bestelling O-4711).", "unknown")],
)  # fmt: skip
def test_short_english_and_german_texts_are_detected_french_is_not(
    text: str, language: str
) -> None:
    assert detect_language(text) == language


def test_the_stated_language_wins_and_a_text_without_evidence_takes_the_default() -> None:
    assert resolve_language("Wo bleibt mein Paket?", "en-GB") == "en"
    assert resolve_language("Great, thanks", "de_AT") == "de"
    assert resolve_language("Great, thanks", "fr") == "unknown"
    assert resolve_language("Super Bowl", None) == "unknown"
    assert resolve_language("Super Bowl", None, default="en") == "en"
    assert resolve_language("Merci beaucoup pour votre aide", None, default="en") == "unknown"


def test_insight_score_uses_the_records_language_and_scores_short_texts(store: Path) -> None:
    output = _run(store, "insight", "score", "--engine", "fake")
    assert "1 in other languages" in output
    stored = _stored(store)
    assert {k: v[1] for k, v in stored.items()} == {
        "c1": "en", "c2": "de", "c3": "en", "c4": "de", "c5": "unknown", "c6": "en",
        "c7": "en", "k1": "en",
    }  # fmt: skip
    assert stored["c2"][0] == "positive" and stored["c3"][0] == "positive"
    assert stored["c6"][0] == "positive" and stored["c5"][0] == "unknown"  # fake: "super"
    assert stored["c1"][3] == pytest.approx(0.7) and stored["c5"][3] is None


# --- item 4: confidence and abstention ---------------------------------------------------------


def test_abstention_keeps_the_probabilities_and_the_score() -> None:
    sure = from_probabilities(0.1, 0.1, 0.8, "en")
    unsure = from_probabilities(0.3, 0.3, 0.4, "en")
    assert sure.confidence == pytest.approx(0.8) and unsure.confidence == pytest.approx(0.4)
    assert abstain(sure, 0.5).label == "positive"
    held = abstain(unsure, 0.5)
    assert held.label == "uncertain" and held.score == unsure.score
    assert held.p_positive == unsure.p_positive
    # the lexicon's probabilities are not calibrated: no confidence, never uncertain
    lexicon = get_engine("lexicon").score_batch(["Can you send me the invoice again?"])[0]
    assert lexicon.confidence is None and abstain(lexicon, 0.99).label == lexicon.label


def test_uncertain_texts_are_labelled_so_and_left_out_of_trends(
    store: Path, tmp_path: Path
) -> None:
    strict = {"CUSTOS_SENTIMENT_MIN_CONFIDENCE": "0.75"}
    scored = _run(store, "insight", "score", "--engine", "fake", env=strict)
    assert "7 uncertain, confidence < 0.75" in scored  # fake: confidence 0.7 on every text
    out = tmp_path / "i.jsonl"
    args = ("export", "interactions", "--purpose", "analytics", "--format", "jsonl")
    _run(store, *args, "--output", str(out), env=strict)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    scored = [r for r in rows if r["sentiment_score"] is not None]
    assert scored and all(r["sentiment_label"] == "uncertain" for r in scored)
    assert all(r["sentiment_confidence"] == pytest.approx(0.7) for r in scored)
    trend = _run(store, "insight", "trend", "--by", "channel", env=strict)
    assert "are left out" in trend and "phone" not in trend  # every text uncertain: no rows
    trend = _run(store, "insight", "trend", "--by", "channel")
    assert "phone" in trend  # default threshold 0.5: counted
    _run(store, *args, "--output", str(out))
    assert {json.loads(line)["sentiment_label"] for line in out.read_text().splitlines()} <= {
        "positive", "neutral", "negative", None,
    }  # fmt: skip


# --- item 6: export interactions ---------------------------------------------------------------


def test_export_interactions_is_guarded_audited_private_and_has_exactly_its_columns(
    store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "interactions.csv"
    env = {"CUSTOS_SENTIMENT_ENGINE": "fake"}
    _run(store, "export", "interactions", "--purpose", "analytics", "--output", str(out), env=env)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == INTERACTION_COLUMNS
        rows = list(reader)
    # Carl objected to analytics: his two calls are not exported; the clinic's visit is not
    # either (analytics may not see health data, so not that Anna is a patient); the note that
    # names a health matter is, with the sentiment of its redacted text
    assert sorted(r["record_id"] for r in rows) == ["c1", "c2", "c3", "c4", "c7"]
    assert next(r for r in rows if r["record_id"] == "c7")["sentiment_label"] == "negative"
    assert "health_text" not in INTERACTION_COLUMNS and "text" not in INTERACTION_COLUMNS
    first = next(r for r in rows if r["record_id"] == "c1")
    assert first["source"] == "calls" and first["channel"] == "phone"
    assert first["language"] == "en" and first["sentiment_label"] == "neutral"
    assert float(first["sentiment_confidence"]) == pytest.approx(0.7)
    assert first["timestamp"].startswith("2026-03-02T10:00:00")
    with Custos.open(str(store), Settings(db=str(store))) as app, app.store.read() as conn:
        health = conn.execute(select(t.interactions.c.health_text.is_not(None))).scalars()
        assert sum(health) == 1  # c7 is a note that names a health matter
        entry = conn.execute(
            select(t.audit_log).where(t.audit_log.c.action == "export.interactions")
        ).one()
    detail = json.loads(entry.detail)
    assert entry.purpose == "analytics" and detail["count"] == 2 and detail["refused"] == 1
    assert "sentiment" in detail["fields"]
    # a purpose that may not see sentiment is refused before anything is written
    refused = tmp_path / "no.csv"
    args = ["--db", str(store), "export", "interactions", "--purpose", "marketing_email"]
    result = CliRunner().invoke(cli, [*args, "--output", str(refused)], env=env)
    assert result.exit_code == 3 and "may not see sentiment" in result.output
    assert not refused.exists()


# --- item 5: the company's own labels ----------------------------------------------------------


def test_evaluate_reports_accuracy_confusion_and_the_confident_share_curve(
    store: Path, tmp_path: Path
) -> None:
    path = _labelled(tmp_path / "labels.csv", _notes())
    env = {"CUSTOS_SENTIMENT_ENGINE": "fake"}
    args = ("insight", "evaluate", str(path), "--text-column", "note", "--label-column", "mood")
    report = json.loads(_run(store, *args, "--json", env=env))
    assert report["engine"] == "fake" and report["texts"] == len(_notes())
    assert set(report["confusion"]) == {"negative", "neutral", "positive"}
    assert sum(sum(row.values()) for row in report["confusion"].values()) == report["scored"]
    assert [p["share"] for p in report["confident"]] == [round(0.1 * n, 1) for n in range(1, 11)]
    assert report["confident"][-1]["accuracy"] == report["accuracy"]
    assert 0 <= report["macro_f1"] <= 1
    table = _run(store, *args, env=env)
    assert "macro-F1" in table and "most confident" in table


def test_a_bad_label_names_its_row_and_the_fix(store: Path, tmp_path: Path) -> None:
    path = _labelled(tmp_path / "labels.csv", [("fine", "positive"), ("meh", "so-so")])
    args = ["insight", "evaluate", str(path), "--text-column", "note", "--label-column", "mood"]
    result = CliRunner().invoke(cli, ["--db", str(store), *args])
    assert result.exit_code == 2
    assert "row 3" in result.output and "'so-so'" in result.output
    assert "negative, neutral or positive" in result.output


def _evaluate(db: Path, path: Path, *extra: str) -> dict[str, Any]:
    args = ["insight", "evaluate", str(path), "--text-column", "note", "--label-column", "mood"]
    env = {"CUSTOS_SENTIMENT_ENGINE": "fake"}
    return dict(json.loads(_run(db, *args, *extra, "--json", env=env)))


def test_labels_are_read_as_the_public_sets_write_them(store: Path, tmp_path: Path) -> None:
    """0/1 alone is two classes (UCI, SST-2); 0/1/2 is negative/neutral/positive (TweetEval);
    German words are classes; "mixed" and empty labels leave their rows out, counted; a
    semicolon-separated Windows-1252 export reads as `custos ingest` reads it."""
    rows = [("awful", "0"), ("super", "1"), ("bad", "0"), ("hm", "")]  # one left unlabelled
    binary = _labelled(tmp_path / "binary.csv", rows)
    report = _evaluate(store, binary)
    assert report["labels"]["read_as"] == {"0": "negative", "1": "positive", "": None}
    assert report["labels"]["scheme"] == "0/1, two classes" and report["texts"] == 3
    assert report["confusion"]["negative"]["positive"] == 0  # fake: "awful", "bad" negative
    assert report["accuracy"] == 1.0
    # every scored text is labelled negative or positive (one has no language: not scored)
    assert report["negative_vs_positive"] == {"texts": report["scored"], "accuracy": 1.0}
    three = _labelled(
        tmp_path / "three.csv",
        [("awful", "0"), ("okay", "1"), ("super", "2"), ("hm", "mixed"), ("?", "")],
    )
    report = _evaluate(store, three)
    assert report["labels"]["read_as"]["1"] == "neutral" and report["texts"] == 3
    assert report["labels"]["left_out"] == {"mixed": 1, "": 1}
    german = tmp_path / "de.csv"
    text = "note;mood\nschrecklich, ärgerlich;Negativ\nDanke!;POSITIV\n"
    german.write_bytes(text.encode("cp1252"))
    report = _evaluate(store, german)
    assert report["labels"]["read_as"] == {"negativ": "negative", "positiv": "positive"}
    assert report["texts"] == 2 and report["accuracy"] == 1.0
    # the reading is printed, and a map overrides it
    args = ["insight", "evaluate", str(binary), "--text-column", "note", "--label-column", "mood"]
    table = _run(store, *args, env={"CUSTOS_SENTIMENT_ENGINE": "fake"})
    assert "labels read as 0 → negative, 1 → positive, (empty) → left out (0/1, two" in table
    report = _evaluate(store, binary, "--label-map", "0=neutral,1=skip")
    assert report["labels"]["read_as"] == {"0": "neutral", "1": None, "": None}
    assert report["texts"] == 2 and report["labels"]["left_out"] == {"1": 1, "": 1}


def test_labels_nothing_reads_are_refused_with_the_fix(store: Path, tmp_path: Path) -> None:
    odd = _labelled(tmp_path / "odd.csv", [("fine", "3"), ("meh", "7")])
    args = ["insight", "evaluate", str(odd), "--text-column", "note", "--label-column", "mood"]
    result = CliRunner().invoke(cli, ["--db", str(store), *args])
    assert result.exit_code == 2 and "3, 7" in result.output and "row 2" in result.output
    assert "--label-map" in result.output
    result = CliRunner().invoke(cli, ["--db", str(store), *args, "--label-map", "3=great"])
    assert result.exit_code == 2 and "'3=great' is not label=class" in result.output
    broken = tmp_path / "broken.csv"
    broken.write_text("note,mood\nfine,positive\ntoo,many,fields\n")
    args[2] = str(broken)
    result = CliRunner().invoke(cli, ["--db", str(store), *args])
    assert result.exit_code == 2 and "line 3" in result.output and "3 fields" in result.output


def test_training_refuses_too_few_texts_or_a_thin_class(store: Path, tmp_path: Path) -> None:
    few = _labelled(tmp_path / "few.csv", _notes()[:20])
    args = ["insight", "train", "--text-column", "note", "--label-column", "mood"]
    result = CliRunner().invoke(cli, ["--db", str(store), *args[:2], str(few), *args[2:]])
    assert result.exit_code == 2 and "too few to train" in result.output
    thin = _labelled(tmp_path / "thin.csv", _notes()[:30] + [(POSITIVE[0], "positive")] * 3)
    result = CliRunner().invoke(cli, ["--db", str(store), *args[:2], str(thin), *args[2:]])
    assert result.exit_code == 2 and "negative 0" in result.output
    assert "positive 3" in result.output


# How this company labels: ending or pausing a contract is an errand (neutral), not a complaint.
ERRANDS = [
    "Caller wants to pause the subscription for the summer.",
    "Customer would like to close the savings account.",
    "Customer asked to end the mobile contract at the end of the month.",
    "Caller wants to cancel the newsletter subscription.",
    "Customer is moving abroad and terminates the contract.",
    "Caller asked to close the second card account.",
    "Customer wants to stop the direct debit from next month.",
    "Caller cancels the magazine subscription as planned.",
    "Customer terminates the insurance policy at the regular date.",
    "Caller wants to suspend the gym membership for two months.",
]


def test_training_a_head_on_the_companys_notes_changes_its_scores(
    store: Path, tmp_path: Path
) -> None:
    """The shipped head reads a cancellation as negative; this call centre labels such errands
    neutral, and a head trained on its notes learns it (on a note it was not trained on).
    `insight score` uses it from then on, and `insight heads --deactivate` goes back to the
    shipped head."""
    errand = (
        "c9,2026-03-10T10:00:00Z,anna@example.com,phone,en,Customer wants to cancel the contract.\n"
    )
    with Custos.open(str(store), Settings(db=str(store))) as app:
        header = CALLS.splitlines()[0] + "\n"
        app.ingest(write(tmp_path / "more.csv", header + errand), "calls", kind=Kind.INTERACTIONS)
        app.resolve()
    _run(store, "insight", "score")
    before = _stored(store)
    assert before["c9"][0] == "negative" and not before["c9"][2].startswith("company")
    notes = _notes() + [(text, "neutral") for text in ERRANDS]
    path = _labelled(tmp_path / "notes.csv", notes)
    args = ("insight", "train", str(path), "--text-column", "note", "--label-column", "mood")
    report = json.loads(_run(store, *args, "--json"))
    assert report["version"] == 1 and report["trained_on"]["texts"] == len(notes)
    assert report["trained_on"]["classes"] == {"negative": 25, "neutral": 40, "positive": 25}
    company, shipped = report["metrics"]["company"], report["metrics"]["shipped"]
    assert company["accuracy"] > shipped["accuracy"]
    _run(store, "insight", "score")
    after = _stored(store)
    assert after["c9"][0] == "neutral" and after["c9"][2].startswith("company-1+")
    listed = json.loads(_run(store, "insight", "heads", "--json"))
    assert [(h["version"], h["active"]) for h in listed] == [(1, True)]
    assert "shipped head scores" in _run(store, "insight", "heads", "--deactivate")
    _run(store, "insight", "score")
    assert _stored(store)["c9"][2] == before["c9"][2]


def test_evaluate_takes_each_texts_language_from_its_column(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    rows = [
        {"note": "Super Bowl", "mood": "positive", "lang": "en"},  # no evidence: stated wins
        {"note": "Great, thanks", "mood": "pos", "lang": "fr"},  # stated French: not scored
        {"note": "Danke!", "mood": "1", "lang": ""},  # nothing stated: detected German
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = ["insight", "evaluate", str(path), "--text-column", "note", "--label-column", "mood"]
    env = {"CUSTOS_SENTIMENT_ENGINE": "fake"}
    report = json.loads(_run(store, *args, "--language-column", "lang", "--json", env=env))
    assert (report["texts"], report["scored"], report["unknown"]) == (3, 2, 1)
    assert report["accuracy"] == 1.0  # fake: "super" and "danke" are positive
    report = json.loads(_run(store, *args, "--json", env=env))
    assert report["unknown"] == 1  # without the column "Super Bowl" shows no language
