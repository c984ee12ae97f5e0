"""A small offline language guess between English and German, from function words."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+")
_ENGLISH = (
    "the", "and", "is", "are", "was", "were", "to", "of", "on", "for", "with", "my", "your",
    "i", "you", "it", "this", "that", "have", "has", "not", "no", "please", "thanks", "thank",
    "would", "could", "from", "at", "by", "be", "been", "an", "a", "order", "delivery",
    "customer", "called", "wants", "asked", "new", "number", "email"
)  # fmt: skip
_GERMAN = (
    "der", "die", "das", "und", "ist", "sind", "war", "waren", "zu", "von", "im", "auf", "für",
    "mit", "mein", "meine", "ich", "sie", "es", "nicht", "kein", "keine", "bitte", "danke",
    "würde", "könnte", "aus", "bei", "wurde", "den", "dem", "des", "ein", "eine", "einen",
    "bestellung", "lieferung", "kunde", "kundin", "hat", "möchte", "unter", "neue", "nummer",
    "über"
)  # fmt: skip
MARKERS: dict[str, frozenset[str]] = {"en": frozenset(_ENGLISH), "de": frozenset(_GERMAN)}


def detect_language(text: str, default: str = "en") -> str:
    """``"de"`` or ``"en"``: whichever language's function words occur more often in ``text``.

    Umlauts and ß count for German. Ties (and texts with no clue) give ``default``.
    """
    words = [word.casefold() for word in _WORD.findall(text)]
    english = sum(word in MARKERS["en"] for word in words)
    german = sum(word in MARKERS["de"] for word in words)
    german += sum(char in "äöüßÄÖÜ" for char in text) > 0
    if english == german:
        return default
    return "de" if german > english else "en"
