"""Word-level helpers shared by the name recognizers: capitalised words, sentence starts, stoplists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"[.!?:;\n]|^\s*[-–—•*]\s")
# Abbreviations whose full stop does not end a sentence.
_ABBREVIATIONS = (
    "dr", "mr", "mrs", "ms", "prof", "st", "hr", "fr", "nr", "no", "geb", "tel", "str", "bzw",
    "ca", "vgl", "zb", "inkl", "evtl", "jun", "sen"
)  # fmt: skip
ABBREVIATIONS = frozenset(_ABBREVIATIONS)
_PARTICLES = (
    "von", "van", "de", "der", "den", "zu", "zur", "vom", "ten", "ter", "da", "di", "du", "le",
    "la", "del", "dos", "al", "bin"
)  # fmt: skip
PARTICLES = frozenset(_PARTICLES)

# Capitalised words that open sentences or name things in customer texts but are never names.
_NON_NAMES_EN = (
    "customer", "caller", "client", "agent", "note", "order", "refund", "invoice", "account",
    "delivery", "ticket", "support", "chargeback", "dispute", "payer", "direct", "debit",
    "mandate", "verified", "identity", "spoke", "hey", "thanks", "please", "hello", "hi",
    "dear", "regards", "best", "cheers", "still", "not", "the", "this", "that", "great", "good",
    "bad", "apple", "pay", "google", "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december", "monday", "tuesday",
    "wednesday", "thursday", "friday", "saturday", "sunday", "street", "road", "avenue", "lane",
    "drive", "iban", "bic", "dob", "email", "phone", "mobile", "tel", "fax", "address", "city",
    "state", "zip", "usa", "uk", "germany", "service", "services", "care", "team", "center",
    "centre", "desk", "portal", "number", "id", "premium", "gold", "silver", "yesterday",
    "today", "tomorrow", "tonight", "morning", "evening"
)  # fmt: skip
_NON_NAMES_DE = (
    "kunde", "kundin", "kunden", "anrufer", "anruferin", "kontoinhaber", "kontoinhaberin",
    "zahler", "zahlerin", "notiz", "bestellung", "lieferung", "rechnung", "erstattung",
    "betrag", "konto", "kundenkonto", "vorgang", "ticket", "mail", "e-mail", "handy",
    "handynummer", "telefon", "nummer", "adresse", "lieferadresse", "rückruf",
    "rücklastschrift", "geburtsdatum", "identität", "bitte", "danke", "hallo", "grüße", "gruß",
    "viele", "liebe", "sehr", "herr", "herrn", "frau", "januar", "februar", "märz", "april",
    "mai", "juni", "juli", "august", "september", "oktober", "november", "dezember", "montag",
    "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag", "straße", "uhr",
    "sie", "ihr", "ihre", "ihnen", "iban", "bic", "sepa", "plz", "deutschland", "österreich",
    "schweiz", "euro", "service", "team", "premium", "gestern", "heute", "morgen", "abend",
    "vormittag", "nachmittag"
)  # fmt: skip
NON_NAMES: dict[str, frozenset[str]] = {
    "en": frozenset(_NON_NAMES_EN),
    "de": frozenset(_NON_NAMES_DE),
}


@dataclass(frozen=True, slots=True)
class Word:
    """A word of the text: where it is, whether it is capitalised, whether it opens a sentence."""

    text: str
    start: int
    end: int
    capitalised: bool
    sentence_start: bool


def split_words(text: str) -> list[Word]:
    """The words of ``text`` (letters, inner hyphens and apostrophes), in order."""
    found: list[Word] = []
    previous_end = 0
    previous = ""
    for match in _WORD.finditer(text):
        word = match.group()
        gap = text[previous_end : match.start()]
        starts = not found or (
            bool(_SENTENCE_END.search(gap)) and previous.casefold() not in ABBREVIATIONS
        )
        capitalised = word[0].isupper() and not word.isupper() and len(word) > 1
        found.append(Word(word, match.start(), match.end(), capitalised, starts))
        previous_end, previous = match.end(), word
    return found


@lru_cache(maxsize=4)
def stopwords(language: str) -> frozenset[str]:
    """Lower-case words that are never part of a name in ``language`` (spaCy's stop words and
    more)."""
    if language == "de":
        from spacy.lang.de.stop_words import STOP_WORDS
    else:
        from spacy.lang.en.stop_words import STOP_WORDS
    return frozenset(STOP_WORDS) | NON_NAMES.get(language, frozenset())
