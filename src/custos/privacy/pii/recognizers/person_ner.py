"""English person names from spaCy's NER model, run only where the rules leave doubt.

The engine calls ``needs_model`` first: the model runs on a text only when it holds a
capitalised word that no rule recognizer explained and that is not a plain English word at the
start of a sentence. Spans the model tags PERSON are trimmed of cue words ("Customer Jane Doe")
and dropped when they hold digits, nothing capitalised, or one word on neither name list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from custos.privacy.pii.findings import PERSON
from custos.privacy.pii.gazetteer import first_names, last_names
from custos.privacy.pii.recognizers.base import finding
from custos.privacy.pii.words import Word, split_words, stopwords

if TYPE_CHECKING:
    from spacy.strings import StringStore


class SpacyPersonRecognizer(EntityRecognizer):
    """PERSON entities of the English spaCy pipeline, cleaned up."""

    MODEL_SCORE = 0.6
    KNOWN_NAME_BONUS = 0.2

    def __init__(self, supported_language: str = "en", deny_list: Iterable[str] = ()) -> None:
        super().__init__(supported_entities=[PERSON], supported_language=supported_language)
        self._stop = stopwords("en") | {word.casefold() for word in deny_list}

    def load(self) -> None:
        """Nothing to load here: the engine owns the spaCy pipeline."""

    def needs_model(
        self, text: str, covered: list[tuple[int, int]], vocabulary: StringStore
    ) -> bool:
        """Whether ``text`` has a capitalised word the rules left unexplained."""
        return any(self._unexplained(word, covered, vocabulary) for word in split_words(text))

    def _unexplained(
        self, word: Word, covered: list[tuple[int, int]], vocabulary: StringStore
    ) -> bool:
        if not word.capitalised or word.text.casefold() in self._stop:
            return False
        if any(start <= word.start < end for start, end in covered):
            return False
        # A capitalised everyday word opening a sentence ("Refund", "Spoke") is no name.
        return not (word.sentence_start and word.text.lower() in vocabulary)

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """PERSON spans of ``nlp_artifacts.entities`` (spaCy spans), trimmed and scored."""
        if nlp_artifacts is None or PERSON not in entities:
            return []
        first, last = first_names(), last_names()
        results = []
        for entity in nlp_artifacts.entities:
            if entity.label_ != PERSON:
                continue
            words = [
                w
                for w in split_words(text[entity.start_char : entity.end_char])
                if w.capitalised and w.text.casefold() not in self._stop
            ]
            span = text[entity.start_char : entity.end_char]
            if not words or any(char.isdigit() or char == "@" for char in span):
                continue
            start = entity.start_char + words[0].start
            end = entity.start_char + words[-1].end
            known = any(w.text in first or w.text in last for w in words)
            if len(words) == 1 and not known:
                continue  # a lone unknown word: more often a product ("the Roomba") than a name
            results.append(
                finding(self, PERSON, start, end, self.MODEL_SCORE + self.KNOWN_NAME_BONUS * known)
            )
        return results
