"""Person names from name lists and cue words, for German (no NER model) and English alike.

A name is a run of capitalised words. It is reported when it opens with a known first name and
goes on with another capitalised word ("Felicitas Dowerg"), or when a cue stands before it
("Kunde …", "Frau …", "my name is …", a signature dash) or after it ("… hat angerufen"),
even if neither word is on the lists. A lone known last name needs a cue ("Frau Müller").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from custos.privacy.pii.findings import PERSON
from custos.privacy.pii.gazetteer import first_names, last_names, multiword_last_names
from custos.privacy.pii.recognizers.base import finding
from custos.privacy.pii.words import PARTICLES, Word, split_words, stopwords

_HONORIFICS = r"(?:mr|mrs|ms|miss|mx|dr|prof|hr|fr)\.?"
#: an initial inside a name, written with a full stop: "D." in "Jens D. Hecker", "Hans-H."
_INITIAL = re.compile(r"(?:\w+-)?[A-ZÄÖÜ]")


def _known(word: str, names: frozenset[str]) -> bool:
    return word in names or ("-" in word and all(part in names for part in word.split("-")))


class PersonGazetteerRecognizer(EntityRecognizer):
    """Names found from Faker-derived first/last name lists plus left and right cue words."""

    LEFT_CUES: ClassVar[dict[str, re.Pattern[str]]] = {
        "de": re.compile(
            rf"(?:\b(?:{_HONORIFICS}|herrn?|frau|kundin|kunden?|anrufer(?:in)?|kontoinhaber(?:in)?"
            r"|zahler(?:in)?|empfänger(?:in)?|absender(?:in)?|ansprechpartner(?:in)?|mieter(?:in)?"
            r"|inhaber(?:in)?|ich\s+heiße|heißt|mein\s+name\s+ist|name|hier\s+ist|hier\s+spricht"
            r"|gez\.|grüßen?|gruß|lg|vg|mfg|danke|dank)|(?:^|\s)[-–—]{1,2})\s*[:,!]?\s*$",
            re.IGNORECASE,
        ),
        "en": re.compile(
            rf"(?:\b(?:{_HONORIFICS}|customer|client|caller|account\s+holder|card\s*holder|payer"
            r"|payee|recipient|sender|tenant|member|my\s+name\s+is|name\s+is|name|i\s+am|i'm"
            r"|it's|it\s+is|this\s+is|spoke\s+(?:to|with)|talked\s+to|regards|thanks|cheers"
            r"|sincerely|signed)|(?:^|\s)[-–—]{1,2})\s*[:,!]?\s*$",
            re.IGNORECASE,
        ),
    }
    RIGHT_CUES: ClassVar[dict[str, re.Pattern[str]]] = {
        "de": re.compile(
            r"^\s*(?:hat\s+(?:angerufen|geschrieben)|ruft|rief|beschwert|meldet|meldete|schreibt"
            r"|schrieb|bittet|bat|fragt|fragte|gesprochen|telefoniert)\b"
        ),
        "en": re.compile(
            r"^\s*(?:called|calls|phoned|rang|wrote|writes|complained|complains|emailed|asked"
            r"|asks|says|said|reports|reported|wants|requested)\b"
        ),
    }
    MAX_WORDS = 4

    def __init__(self, supported_language: str = "en", deny_list: Iterable[str] = ()) -> None:
        super().__init__(supported_entities=[PERSON], supported_language=supported_language)
        language = "de" if supported_language == "de" else "en"
        self._left = self.LEFT_CUES[language]
        self._right = self.RIGHT_CUES[language]
        self._stop = stopwords(language) | {word.casefold() for word in deny_list}

    def load(self) -> None:
        """Read the name lists."""
        first_names()
        last_names()
        multiword_last_names()

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Every name span in ``text`` with its score."""
        return [
            finding(self, PERSON, start, end, score)
            for start, end, score in self.spans(text, split_words(text))
        ]

    def is_name_word(self, word: Word) -> bool:
        """Capitalised and not a stop word, deny-listed word or everyday noun of the language."""
        return word.capitalised and word.text.casefold() not in self._stop

    def spans(self, text: str, words: list[Word]) -> list[tuple[int, int, float]]:
        """``(start, end, score)`` of each name."""
        first, last = first_names(), last_names()
        found: list[tuple[int, int, float]] = []
        i = 0
        while i < len(words):
            word = words[i]
            if not (
                self.is_name_word(word)
                or self._first_then_last(text, words, i)
                or self._particle_after_cue(text, words, i)
                or self._initial_before_name(text, words, i)
            ):
                i += 1
                continue
            run = self._run(text, words, i)
            end = run[-1].end
            is_first = _known(word.text, first)
            if is_first:
                end = max(end, self._multiword_last_name(text, word.end))
            known_last = any(_known(w.text, last) for w in run[1:]) or end > run[-1].end
            cue = bool(self._left.search(text[max(0, word.start - 30) : word.start]))
            if is_first and (len(run) > 1 or end > word.end):
                score = 0.7 + 0.15 * known_last + 0.1 * cue
            elif is_first:
                score = 0.35 + 0.3 * cue
            elif cue:
                run = run[:3]
                end = run[-1].end
                named = any(_known(w.text, last) or _known(w.text, first) for w in run)
                score = 0.6 + 0.15 * named
            elif len(run) > 1 and self._right.search(text[end : end + 30]):
                if len(run) > 2 and word.sentence_start:  # "Yesterday Jane Doe called"
                    word, run = run[1], run[1:]
                score = 0.55 + 0.15 * known_last
            else:
                i += 1
                continue
            found.append((word.start, end, min(score, 0.95)))
            i += len(run)
            while i < len(words) and words[i].start < end:
                i += 1
        return found

    def _first_then_last(self, text: str, words: list[Word], i: int) -> bool:
        """A listed first name that is also a common word ("April", "Will") before a listed
        last name: "April Drake"."""
        return (
            i + 1 < len(words)
            and words[i].capitalised
            and _known(words[i].text, first_names())
            and text[words[i].end : words[i + 1].start] == " "
            and words[i + 1].capitalised
            and _known(words[i + 1].text, last_names())
        )

    def _initial_before_name(self, text: str, words: list[Word], i: int) -> bool:
        """An initial with its full stop before a name word: the "D." of "Jens D. Hecker"."""
        return (
            bool(_INITIAL.fullmatch(words[i].text))
            and i + 1 < len(words)
            and text[words[i].end : words[i + 1].start] == ". "
            and self.is_name_word(words[i + 1])
        )

    def _particle_after_cue(self, text: str, words: list[Word], i: int) -> bool:
        """A name particle right after a cue, before a capitalised word: "Herr von Bergen"."""
        return (
            words[i].text in PARTICLES
            and i + 1 < len(words)
            and text[words[i].end : words[i + 1].start] == " "
            and self.is_name_word(words[i + 1])
            and bool(self._left.search(text[max(0, words[i].start - 30) : words[i].start]))
        )

    def _run(self, text: str, words: list[Word], i: int) -> list[Word]:
        """Capitalised words from ``i`` on, one space apart (particles such as "von" inside),
        or a full stop and a space after an initial ("Jens D. Hecker", "Hans-H. Meier").
        Inside a name, a listed last name counts even if it is a common word ("Lange")."""
        run = [words[i]]
        k = i + 1
        while k < len(words) and len(run) < self.MAX_WORDS:
            word = words[k]
            gap = text[run[-1].end : word.start]
            if gap != " " and not (gap == ". " and _INITIAL.fullmatch(run[-1].text)):
                break
            if (
                self.is_name_word(word)
                or (word.capitalised and _known(word.text, last_names()))
                or (word.capitalised and run[-1].text in PARTICLES)
                or self._initial_before_name(text, words, k)
            ):
                run.append(word)
                k += 1
            elif (
                word.text in PARTICLES
                and k + 1 < len(words)
                and text[word.end : words[k + 1].start] == " "
                and self.is_name_word(words[k + 1])
            ):
                run += [word, words[k + 1]]
                k += 2
            else:
                break
        return run

    @staticmethod
    def _multiword_last_name(text: str, first_end: int) -> int:
        """End of a listed multi-word last name ("van der Dussen") right after a first name."""
        if text[first_end : first_end + 1] != " ":
            return first_end
        at = first_end + 1
        for name in multiword_last_names():
            end = at + len(name)
            if text.startswith(name, at) and (end == len(text) or not text[end].isalnum()):
                return end
        return first_end
