"""The fast fallback engine: lexicons and a few rules, thousands of texts a second.

English goes to VADER (``vaderSentiment``, MIT; an optional dependency imported on first use).
German goes to the small lexicon of :mod:`custos.insight.sentiment.lexicon_de` with VADER's
rules carried over: degree words, negation (before the word, or after it at the end of a
clause, as German puts it: "funktioniert nicht"), "aber" shifting the weight to what follows,
and exclamation marks. Both give a compound score in [-1, 1] that is turned into three class
probabilities whose argmax follows VADER's usual thresholds (±0.05).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from custos.insight.sentiment import Sentiment, from_probabilities, languages_of, unknown
from custos.insight.sentiment.language import Language
from custos.insight.sentiment.lexicon_de import (
    BOOSTERS,
    CONTRAST,
    NEGATORS,
    NOT_NEGATED,
    PHRASES,
    VALENCE,
)

NEUTRAL_BAND = 0.05  # |compound| below this is neutral, as VADER's authors recommend
SHARPNESS = 4.0  # how quickly probabilities leave the neutral class as |compound| grows
NEGATION_SCALAR = -0.74  # VADER's
ALPHA = 15.0  # VADER's normalisation constant

_TOKEN = re.compile(r"[^\W\d_]+|[.,;:!?]")
_CLAUSE_END = frozenset(".,;:!?")
_ENDINGS = ("en", "em", "er", "es", "e", "n", "s")
_LONGEST_PHRASE = max(len(key) for key in PHRASES)


def probabilities(compound: float) -> tuple[float, float, float]:
    """Negative / neutral / positive probabilities for a compound score in [-1, 1]."""
    logits = (
        -SHARPNESS * compound,
        SHARPNESS * (2 * NEUTRAL_BAND - abs(compound)),
        SHARPNESS * compound,
    )
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return exps[0] / total, exps[1] / total, exps[2] / total


def german_valence(word: str) -> float | None:
    """The lexicon valence of one lower-case German word (inflected forms, ``un…``, compounds)."""
    if word in VALENCE:
        return VALENCE[word]
    for ending in _ENDINGS:
        if word.endswith(ending) and word[: -len(ending)] in VALENCE:
            return VALENCE[word[: -len(ending)]]
    if word.startswith("un") and len(word) > 6:
        rest = german_valence(word[2:])
        if rest is not None and rest > 0:
            return -0.8 * rest
    # compounds: "Lieferverzögerung", "Riesenärger" — the head noun is the last part
    for start in range(3, len(word) - 4):
        tail = word[start:]
        if tail in VALENCE and len(tail) >= 5:
            return VALENCE[tail]
    return None


@dataclass
class _Unit:
    """A word or phrase of a German text, as the scorer sees it."""

    value: float | None = None  # lexicon valence, None for words without sentiment
    negator: bool = False
    boost: float = 0.0  # a degree word: added to the magnitude of the next sentiment word
    clause_end: bool = False
    contrast: bool = False
    negatable: bool = True


def _units(text: str) -> list[_Unit]:
    tokens = _TOKEN.findall(text.lower())
    units: list[_Unit] = []
    i = 0
    while i < len(tokens):
        for size in range(min(_LONGEST_PHRASE, len(tokens) - i), 1, -1):
            phrase = tuple(tokens[i : i + size])
            if phrase in PHRASES:
                units.append(_Unit(value=PHRASES[phrase], negatable=False))
                i += size
                break
        else:
            token = tokens[i]
            following = german_valence(tokens[i + 1]) if i + 1 < len(tokens) else None
            if token in _CLAUSE_END:
                units.append(_Unit(clause_end=True))
            elif token in BOOSTERS and following is not None:
                units.append(_Unit(boost=BOOSTERS[token]))
            else:
                units.append(
                    _Unit(
                        value=german_valence(token),
                        negator=token in NEGATORS,
                        contrast=token in CONTRAST,
                        negatable=token not in NOT_NEGATED,
                    )
                )
            i += 1
    return units


def _negation_target(units: list[_Unit], at: int) -> int | None:
    """The sentiment word a negator at ``at`` negates: the next one within three words, else
    the last one before it in the same clause ("Das funktioniert nicht.")."""

    def candidate(m: int) -> bool:
        unit = units[m]
        return unit.value is not None and unit.negatable and not unit.negator

    for m in range(at + 1, min(at + 4, len(units))):
        if units[m].clause_end:
            break
        if candidate(m):
            return m
    for m in range(at - 1, -1, -1):
        if units[m].clause_end:
            break
        if candidate(m):
            return m
    return None


def german_compound(text: str) -> float:
    """VADER-style compound score in [-1, 1] for a German text."""
    units = _units(text)
    values = [unit.value for unit in units]
    for n, unit in enumerate(units[:-1]):
        following = values[n + 1]
        if unit.boost and following is not None:  # "sehr gut" is better, "etwas langsam" less bad
            values[n + 1] = following + (unit.boost if following > 0 else -unit.boost)
    alone: set[int] = set()  # negators with nothing to negate count as words ("kam nie an")
    for n, unit in enumerate(units):
        target = _negation_target(units, n) if unit.negator else None
        if target is not None:
            value = values[target]
            assert value is not None
            values[target] = value * NEGATION_SCALAR
        elif unit.negator:
            alone.add(n)
    contrast_at = max((n for n, unit in enumerate(units) if unit.contrast), default=-1)
    total = 0.0
    for n, value in enumerate(values):
        if value is None or (units[n].negator and n not in alone):
            continue
        if contrast_at >= 0:  # VADER's "but" rule
            value *= 0.5 if n < contrast_at else 1.5
        total += value
    if total:
        total += math.copysign(min(4, text.count("!")) * 0.292, total)
    return total / math.sqrt(total * total + ALPHA)


class LexiconEngine:
    """VADER for English, the custos German lexicon for German, ``unknown`` for the rest."""

    name = "lexicon"
    version = "1"

    def __init__(self) -> None:
        self._vader: Any = None

    def _english(self) -> Any:
        if self._vader is None:
            try:
                vader = importlib.import_module("vaderSentiment.vaderSentiment")
            except ImportError as error:  # pragma: no cover - depends on the installation
                raise ImportError(
                    "the lexicon sentiment engine needs vaderSentiment: "
                    "pip install 'custos[sentiment]'"
                ) from error
            self._vader = vader.SentimentIntensityAnalyzer()
        return self._vader

    def compound(self, text: str, language: str) -> float:
        """The compound score of ``text`` in ``language`` ("en" or "de")."""
        if language == "en":
            return float(self._english().polarity_scores(text)["compound"])
        return german_compound(text)

    def score_batch(
        self, texts: Sequence[str], languages: Sequence[Language] | None = None
    ) -> list[Sentiment]:
        """One result per text; other languages are ``unknown``. No confidence: the
        probabilities are a fixed mapping of the lexicon score, not calibrated (a neutral text
        never exceeds 0.43), so a lexicon score never abstains."""
        results = []
        for text, language in zip(texts, languages_of(texts, languages), strict=True):
            if language == "unknown":
                results.append(unknown())
                continue
            neg, neu, pos = probabilities(self.compound(text, language))
            results.append(replace(from_probabilities(neg, neu, pos, language), confidence=None))
        return results
