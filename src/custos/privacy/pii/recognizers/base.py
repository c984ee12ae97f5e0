"""What custos's recognizers share: a pattern recognizer declared by its class, and one result.

A pattern recognizer names its entity, patterns and context words as class attributes;
``RulePatternRecognizer`` hands them to Presidio and lets a subclass ``tidy`` the matches.
``finding`` is the result a hand-written recognizer returns for one span, tagged with the
recognizer that found it.
"""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts


class RulePatternRecognizer(PatternRecognizer):
    """One entity found by the class's ``PATTERNS``, scored up by its ``CONTEXT`` words."""

    ENTITY: ClassVar[str]
    PATTERNS: ClassVar[list[Pattern]]
    CONTEXT: ClassVar[list[str]]
    LANGUAGE: ClassVar[str] = "en"
    FLAGS: ClassVar[int] = re.MULTILINE

    def __init__(self, supported_language: str | None = None) -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            patterns=self.PATTERNS,
            context=self.CONTEXT,
            supported_language=supported_language or self.LANGUAGE,
            global_regex_flags=self.FLAGS,
        )

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        """Pattern matches, less what ``tidy`` drops or trims."""
        return self.tidy(text, super().analyze(text, entities, nlp_artifacts, regex_flags))

    def tidy(self, text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
        """The recognizer's own clean-up of its pattern matches in ``text``: none by default."""
        return results


def finding(
    recognizer: EntityRecognizer, entity: str, start: int, end: int, score: float
) -> RecognizerResult:
    """The result for ``entity`` at ``start:end``, tagged with ``recognizer``'s name and id."""
    return RecognizerResult(
        entity,
        start,
        end,
        score,
        recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: type(recognizer).__name__,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
        },
    )
