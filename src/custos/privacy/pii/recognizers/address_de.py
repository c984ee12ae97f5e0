"""German street addresses: street, house number (12, 12a, 4-8, 3/5), optional postcode and city."""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import Pattern, RecognizerResult

from custos.privacy.pii.findings import ADDRESS
from custos.privacy.pii.recognizers.base import RulePatternRecognizer
from custos.privacy.pii.words import stopwords

# Endings of compound street names ("Hauptstraße", "Irena-Seip-Allee", "Schmidtstr.").
SUFFIXES = (
    "straße", "strasse", "str.", "gasse", "weg", "allee", "platz", "ring", "damm", "ufer",
    "chaussee", "steig", "pfad", "graben", "wall", "kamp", "stieg", "promenade", "brücke",
    "zeile", "twiete", "deich", "garten", "gärten"
)  # fmt: skip
# Street names that open with a preposition ("Am Markt 3", "Unter den Linden 77").
PREFIXES = (
    "Am|An der|An den|An dem|Auf der|Auf dem|Auf den|Im|In der|In den|Unter den|Unter der|Zum|Zur|"
    "Vor dem|Vor der|Hinter der|Hinter dem|Bei der|Beim|Über der|Alt"
)

_PREFIX = re.compile(rf"(?:{PREFIXES})[ ]")
_UPPER = "A-ZÄÖÜ"
_LOWER = "a-zäöüß"
_SUFFIX = "|".join(re.escape(suffix) for suffix in sorted(SUFFIXES, key=len, reverse=True))
_COMPOUND = rf"(?=[{_UPPER}])(?:[{_UPPER}{_LOWER}]+-)*[{_UPPER}{_LOWER}]*?(?i:{_SUFFIX})"
_NAME = (
    rf"(?:(?:(?:vo[nm]|van)[ ](?:de[rmn][ ])?)?(?:[{_UPPER}][{_LOWER}]+[ ]){{0,2}}{_COMPOUND}"
    rf"|(?:{PREFIXES})[ ](?:[{_UPPER}][{_LOWER}]+[ ]?){{1,2}})"
)
_NUMBER = r"[ ]?\d{1,4}(?:[ ]?[a-zA-Z](?![\w]))?(?:[ ]?[-/][ ]?\d{1,4}[a-zA-Z]?)?(?![\d])"
_STREET = rf"(?<![\w-]){_NAME}{_NUMBER}"
_CITY_WORD = rf"[{_UPPER}][{_LOWER}]+(?:-[{_UPPER}]?[{_LOWER}]+)*"
# A city is one word, unless a prefix ("Bad Kissingen"), a connector ("Mühldorf am Inn",
# "Rothenburg ob der Tauber") or brackets ("Halle (Saale)") make it longer: a capitalised
# word after the city is more often the next noun of the sentence than part of the name.
_CITY = (
    rf"(?:[A-Z]{{1,2}}-)?\d{{4,5}}[ ]"
    rf"(?:(?:Bad|Sankt|St\.|Schwäbisch|Hannoversch|Königs|Bergisch|Lutherstadt|Hansestadt)[ ])?"
    rf"{_CITY_WORD}"
    rf"(?:[ ](?:am|an[ ]der|an[ ]dem|ob[ ]der|vorm|vor[ ]der|im|in|bei|an|auf)[ ]{_CITY_WORD}"
    rf"|[ ]\({_CITY_WORD}\))?"
)


def _leading_common_words(text: str, start: int, end: int) -> int:
    """Where the street name starts once capitalised common words before it ("Adresse Berliner
    Allee 5") are cut off."""
    words = stopwords("de")
    while not _PREFIX.match(text, start, end):
        word, space, _ = text[start:end].partition(" ")
        if not space or word.casefold() not in words:
            return start
        start += len(word) + 1
    return start


class GermanAddressRecognizer(RulePatternRecognizer):
    """``Irena-Seip-Allee 4-8, 02654 Fürstenfeldbruck``, ``Berliner Str. 12a``, ``Am Markt 3``."""

    ENTITY = ADDRESS
    LANGUAGE = "de"
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("street, postcode, city", _STREET + r",?[ ]" + _CITY, 0.85),
        Pattern("street", _STREET, 0.6),
    ]
    CONTEXT: ClassVar[list[str]] = [
        "adresse",
        "anschrift",
        "wohnhaft",
        "umgezogen",
        "lieferadresse",
    ]

    def tidy(self, text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
        """Pattern matches, less capitalised common words the pattern took for a street name."""
        for result in results:
            result.start = _leading_common_words(text, result.start, result.end)
        return results
