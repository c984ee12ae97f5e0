"""Health terms (GDPR Art. 9): conditions, diagnoses, treatments and medications, EN and DE.

The vocabulary ships in ``data/health_en.txt`` and ``data/health_de.txt`` (written for custos,
Apache-2.0; medication names are public INNs; the files say how an entry is written). A hit
marks the whole word it falls in, so a German compound is found by its health part:
"Asthma-Medikation", "Diabetiker", "Insulinpumpe", "Rückenschmerzen". Hard negatives ("!" lines:
"Krankenkasse") are never reported; everyday words that are only sometimes about health
("sick", "cold", "pain") are on the lists only in phrases ("off sick", "caught a cold").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from custos.privacy.pii.findings import HEALTH
from custos.privacy.pii.recognizers.base import finding

SCORE = 0.85
_TOKEN_CHAR = re.compile(r"[\w'’-]")
_NEXT_WORD = re.compile(r" (\w+)\b")


@dataclass(frozen=True)
class Vocabulary:
    """One language's health terms, compiled: ``pattern`` finds candidate hits, ``negative``
    says which whole words are never reported."""

    pattern: re.Pattern[str]
    negative: re.Pattern[str] | None
    #: words that join a hit on its right ("disease": "coeliac disease"), casefolded
    right: frozenset[str] = frozenset()
    #: words or phrases that join a hit on its left ("breast": "breast cancer"), casefolded
    left: tuple[str, ...] = ()


def _entry(line: str) -> str:
    """The regular expression of one vocabulary line (without a leading ``!``)."""
    if line.startswith("="):
        return rf"\b(?-i:{re.escape(line[1:])})\b"
    inside = line.startswith("*")
    prefix = line.endswith("*")
    body = re.escape(line.strip("*")).replace(r"\ ", r"\s+")
    if inside:
        return body
    return rf"\b{body}" + (r"\w*" if prefix else r"\b")


@lru_cache(maxsize=2)
def vocabulary(language: str) -> Vocabulary:
    """The compiled vocabulary of ``language`` (``en`` or ``de``), read once."""
    path = resources.files("custos.privacy.pii").joinpath("data").joinpath(f"health_{language}.txt")
    lines = [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    positive = sorted((x for x in lines if x[0] not in "!<>"), key=len, reverse=True)
    negative = "|".join(
        rf"(?i:{re.escape(x[1:].rstrip('*'))}{'' if x.endswith('*') else '$'})"
        for x in lines
        if x.startswith("!")
    )
    return Vocabulary(
        re.compile("|".join(_entry(x) for x in positive), re.IGNORECASE),
        re.compile(negative) if negative else None,
        frozenset(x[1:].casefold() for x in lines if x.startswith(">")),
        tuple(x[1:].casefold() for x in lines if x.startswith("<")),
    )


def _word(text: str, start: int, end: int) -> tuple[int, int]:
    """The whole word around ``[start, end)``: letters, digits, hyphens, apostrophes."""
    while start > 0 and _TOKEN_CHAR.match(text[start - 1]):
        start -= 1
    while end < len(text) and _TOKEN_CHAR.match(text[end]):
        end += 1
    while end > start and text[end - 1] in "'’-":
        end -= 1
    return start, end


def _joined(text: str, start: int, end: int, vocab: Vocabulary) -> tuple[int, int]:
    """The hit widened by the words that join it: "type 1 diabetes", "insulin pump"."""
    while True:
        after = _NEXT_WORD.match(text, end)
        if after is None or after.group(1).casefold() not in vocab.right:
            break
        end = after.end()
    before = text[:start].casefold()
    for word in vocab.left:
        at = start - len(word) - 1
        if before.endswith(word + " ") and (at == 0 or (at > 0 and not text[at - 1].isalnum())):
            start = at
            break
    return start, end


def health_spans(text: str, language: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each word or phrase in ``text`` that names a health matter."""
    vocab = vocabulary("de" if language == "de" else "en")
    spans: list[tuple[int, int]] = []
    for match in vocab.pattern.finditer(text):
        start, end = _word(text, *match.span())
        if vocab.negative is not None and vocab.negative.match(text[start:end]):
            continue
        start, end = _joined(text, start, end, vocab)
        if spans and start < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


class HealthTermRecognizer(EntityRecognizer):
    """Health terms from the shipped EN/DE vocabulary, compounds included."""

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(supported_entities=[HEALTH], supported_language=supported_language)

    def load(self) -> None:
        """Compile the vocabulary."""
        vocabulary("de" if self.supported_language == "de" else "en")

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Every health term in ``text``."""
        return [
            finding(self, HEALTH, start, end, SCORE)
            for start, end in health_spans(text, self.supported_language)
        ]
