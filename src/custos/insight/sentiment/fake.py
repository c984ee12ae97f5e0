"""A deterministic sentiment engine for tests: a handful of keywords, no dependencies."""

from __future__ import annotations

import re
from collections.abc import Sequence

from custos.insight.sentiment import Sentiment, from_probabilities, languages_of, unknown
from custos.insight.sentiment.language import Language

_POSITIVE = frozenset(
    {"good", "great", "love", "thanks", "thank", "excellent", "gut", "super", "toll", "danke"}
)
_NEGATIVE = frozenset(
    {"bad", "terrible", "hate", "awful", "worst", "schlecht", "furchtbar", "ärgerlich"}
)
_WORD = re.compile(r"[^\W\d_]+")


class FakeEngine:
    """Counts a few positive and negative keywords; same text, same result, always."""

    name = "fake"
    version = "1"

    def score_batch(
        self, texts: Sequence[str], languages: Sequence[Language] | None = None
    ) -> list[Sentiment]:
        """One result per text: positive/negative by keyword majority, else neutral."""
        results = []
        for text, language in zip(texts, languages_of(texts, languages), strict=True):
            if language == "unknown":
                results.append(unknown())
                continue
            words = _WORD.findall(text.lower())
            balance = sum(w in _POSITIVE for w in words) - sum(w in _NEGATIVE for w in words)
            if balance > 0:
                results.append(from_probabilities(0.1, 0.2, 0.7, language))
            elif balance < 0:
                results.append(from_probabilities(0.7, 0.2, 0.1, language))
            else:
                results.append(from_probabilities(0.15, 0.7, 0.15, language))
        return results
