"""Phone numbers: international (+49, 0049, +1), German national (0…) and North American forms.

Numbers written without any separator look like order or reference numbers, so they start
below the reporting threshold and need a context word ("Rückruf", "mobile") nearby. A call
note's caller ("Caller", "Anrufer") is such a word: the number after a caller's name is
often a bare digit run, and redacting a reference number next to it is the safer error.
"""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import Pattern, RecognizerResult

from custos.privacy.pii.findings import PHONE
from custos.privacy.pii.recognizers.base import RulePatternRecognizer

_EXTENSION = r"(?:[ ]?(?:x|ext\.?|-)[ ]?\d{1,5})?"
_IBAN_BEFORE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4})*[ ]?$")
_EXTENSION_TAIL = re.compile(r"(?:x|ext\.?)\s?\d{1,5}$", re.IGNORECASE)


class PhoneNumberRecognizer(RulePatternRecognizer):
    """Phone numbers in the forms written in English and German customer texts."""

    ENTITY = PHONE
    FLAGS = re.MULTILINE | re.IGNORECASE
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "international",
            r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[ ]?\(0\))?(?:[ ./-]?(?:\(\d{1,5}\)|\d{1,5})){2,6}"
            r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?(?![\w])",
            0.7,
        ),
        Pattern(
            "north american",
            r"(?<![\w+/.-])(?:1[ .-])?(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}"
            r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?(?![\w-])",
            0.65,
        ),
        Pattern(
            "german national",
            r"(?<![\w+/.-])(?:\(0\d{2,5}\)[ ]?|0\d{2,5}(?:[ ]?[/-][ ]?|[ ]))"
            r"(?:\d{3,8}|\d{2,4}(?:[ ]\d{2,4}){1,3})" + _EXTENSION + r"(?![\w-])",
            0.6,
        ),
        Pattern("digits, leading zero", r"(?<![\w+/.,-])0[1-9]\d{6,12}(?![\w-])", 0.4),
        Pattern("digits, ten", r"(?<![\w+/.,-])[2-9]\d{9}(?![\w-])", 0.3),
    ]
    CONTEXT: ClassVar[list[str]] = [
        "phone",
        "telephone",
        "tel",
        "call",
        "callback",
        "mobile",
        "cell",
        "contact",
        "reach",
        "fax",
        "whatsapp",
        "sms",
        "telefon",
        "telefonnummer",
        "handy",
        "handynummer",
        "mobil",
        "mobilnummer",
        "rückruf",
        "rufnummer",
        "anrufen",
        "rufen",
        "erreichbar",
        "festnetz",
        # who rang: a call note's number after the caller's name, often a bare digit run
        "caller",
        "anrufer",
        "anruferin",
    ]

    def tidy(self, text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
        """Pattern matches, less digit groups that continue an IBAN written in groups of four."""
        return [r for r in results if not _IBAN_BEFORE.search(text[max(0, r.start - 40) : r.start])]

    def invalidate_result(self, pattern_text: str) -> bool:
        """Reject matches with too few or too many digits (E.164 allows 15) or one digit repeated."""
        number = _EXTENSION_TAIL.sub("", pattern_text)
        digits = [char for char in number if char.isdigit()]
        return not 7 <= len(digits) <= 15 or len(set(digits)) == 1
