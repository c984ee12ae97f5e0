"""Sentiment engines: the contract, language detection, each engine, the shipped head."""

from __future__ import annotations

import math

import numpy as np
import pytest

from custos.insight.sentiment import (
    DEFAULT_ENGINE,
    ENGINES,
    LABELS,
    Sentiment,
    SentimentEngine,
    UnknownEngineError,
    from_probabilities,
    get_engine,
)
from custos.insight.sentiment.e5_head import E5HeadEngine, Head, load_head
from custos.insight.sentiment.language import detect_language
from custos.insight.sentiment.lexicon import german_compound, probabilities

ENGLISH_POSITIVE = "Thank you so much, the support team was fantastic and fixed it in minutes!"
ENGLISH_NEGATIVE = "This is the worst service ever, my order is two weeks late and nobody answers."
ENGLISH_NEUTRAL = "Can you tell me what time the store opens on Saturday?"
GERMAN_POSITIVE = "Vielen Dank für die schnelle Hilfe, ich bin sehr zufrieden!"
GERMAN_NEGATIVE = "Das ist eine Frechheit, ich warte seit drei Wochen auf mein Geld."
GERMAN_NEUTRAL = "Bitte senden Sie mir eine Kopie der Rechnung an meine neue Adresse."
CLEAR = [
    (ENGLISH_POSITIVE, "positive", "en"),
    (ENGLISH_NEGATIVE, "negative", "en"),
    (ENGLISH_NEUTRAL, "neutral", "en"),
    (GERMAN_POSITIVE, "positive", "de"),
    (GERMAN_NEGATIVE, "negative", "de"),
    (GERMAN_NEUTRAL, "neutral", "de"),
]
OTHER_LANGUAGES = [
    "Je suis très déçu du service, ma commande n'est jamais arrivée.",
    "El pedido llegó roto y nadie me responde.",
    "Ik ben erg tevreden met de snelle levering, bedankt!",
    "Il servizio è stato ottimo, grazie mille.",
    "Спасибо, всё работает отлично!",
    "ご対応ありがとうございました。",
]


# --- the contract ------------------------------------------------------------------------------


def _check_result(result: Sentiment) -> None:
    if result.label == "unknown":
        assert result.p_negative is None and result.score is None
        return
    assert result.p_negative is not None and result.p_neutral is not None
    assert result.p_positive is not None and result.score is not None
    probs = (result.p_negative, result.p_neutral, result.p_positive)
    assert math.isclose(sum(probs), 1.0, abs_tol=1e-6)
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert -1.0 <= result.score <= 1.0
    assert math.isclose(result.score, result.p_positive - result.p_negative, abs_tol=1e-6)
    assert result.label == LABELS[probs.index(max(probs))]
    assert result.language in ("en", "de")


def test_from_probabilities_normalises_and_labels_by_argmax() -> None:
    result = from_probabilities(2.0, 1.0, 1.0, "en")
    assert result.label == "negative"
    assert result.p_negative == pytest.approx(0.5)
    assert result.score == pytest.approx(0.25 - 0.5)
    with pytest.raises(ValueError):
        from_probabilities(0.0, 0.0, 0.0, "en")


def test_registry_knows_every_engine_and_the_default() -> None:
    assert DEFAULT_ENGINE in ENGINES
    assert {"e5-head", "lexicon", "fake"} <= set(ENGINES)
    with pytest.raises(UnknownEngineError, match="no-such-engine"):
        get_engine("no-such-engine")


@pytest.mark.parametrize("name", ["fake", "lexicon", "e5-head"])
def test_every_engine_keeps_the_contract(name: str) -> None:
    engine = get_engine(name)
    assert isinstance(engine, SentimentEngine)
    assert engine.name == name and engine.version
    texts = [text for text, _, _ in CLEAR] + OTHER_LANGUAGES + ["", "   ", "@united 1234 😡"]
    results = engine.score_batch(texts)
    assert len(results) == len(texts)
    for result in results:
        _check_result(result)
    assert [r.language for r in results[: len(CLEAR)]] == [lang for _, _, lang in CLEAR]
    assert all(r.label == "unknown" for r in results[len(CLEAR) :])
    assert engine.score_batch([]) == []


# --- language detection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("@united thanks for nothing, flight delayed again", "en"),
        ("My order never arrived", "en"),
        ("great job", "en"),
        ("Ich warte seit drei Wochen auf meine Lieferung.", "de"),
        ("Danke!", "de"),
        ("Kunde ruft an wegen Rechnung", "de"),
        ("Welche Sprachen unterstützt die Software?", "de"),
        ("Super, vielen Dank", "de"),
        ("@JetBlue #fail", "en"),
    ],
)
def test_detects_english_and_german(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    "text", [*OTHER_LANGUAGES, "", "12345 !!!", "@JetBlue #1", "Gracias", "Super Bowl"]
)
def test_other_languages_and_empty_texts_are_unknown(text: str) -> None:
    assert detect_language(text) == "unknown"


# --- the engines -------------------------------------------------------------------------------


def test_fake_engine_is_deterministic_keyword_counting() -> None:
    engine = get_engine("fake")
    first = engine.score_batch(["good service, thanks", "bad bad service", "the invoice"])
    assert [r.label for r in first] == ["positive", "negative", "neutral"]
    assert engine.score_batch(["good service, thanks"])[0] == first[0]


@pytest.mark.parametrize(("text", "label", "language"), CLEAR)
def test_lexicon_engine_gets_the_direction_of_obvious_texts(
    text: str, label: str, language: str
) -> None:
    result = get_engine("lexicon").score_batch([text])[0]
    assert (result.label, result.language) == (label, language)


def test_german_lexicon_rules() -> None:
    assert german_compound("Der Service war gut.") > 0.05
    assert german_compound("Der Service war nicht gut.") < -0.05
    assert german_compound("Das funktioniert leider nicht.") < -0.05
    assert german_compound("Der Service war sehr gut.") > german_compound("Der Service war gut.")
    assert german_compound("Kein Problem.") > 0
    assert german_compound("Mit freundlichen Grüßen") == 0.0
    assert german_compound("Die Lieferverzögerung ist ärgerlich") < -0.05
    # what follows "aber" weighs more than what comes before it
    assert german_compound("Die Beratung war nett, aber die Lieferung eine Katastrophe.") < 0


def test_lexicon_probabilities_follow_the_vader_thresholds() -> None:
    for compound, label in ((0.0, 1), (0.04, 1), (0.06, 2), (-0.06, 0), (0.9, 2), (-0.9, 0)):
        probs = probabilities(compound)
        assert math.isclose(sum(probs), 1.0)
        assert probs.index(max(probs)) == label


def test_shipped_head_loads_and_is_small() -> None:
    head = load_head()
    assert head.dim == 384
    assert head.weights[-1].shape[1] == 3
    assert head.meta["classes"] == list(LABELS)
    assert head.meta["train_size"] > 1_000 and head.meta["calibration_fingerprint"]
    probs = head.probabilities(np.zeros((2, head.dim), dtype=np.float32))
    assert probs.shape == (2, 3)
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_head_rejects_a_wrong_shape() -> None:
    with pytest.raises(ValueError):
        Head([np.zeros((384, 2), dtype=np.float32)], [np.zeros(2, dtype=np.float32)], {})


def test_default_engine_on_clear_english_and_german_texts() -> None:
    engine = get_engine(DEFAULT_ENGINE)
    assert isinstance(engine, E5HeadEngine)
    texts = [text for text, _, _ in CLEAR]
    results = engine.score_batch([*texts, texts[0]])
    assert [(r.label, r.language) for r in results[:-1]] == [(lab, lg) for _, lab, lg in CLEAR]
    assert results[-1] == results[0]  # the duplicate is embedded once, same answer
    assert engine.version.startswith(load_head().meta["version"])
