"""IBANs: the exact length of each country's IBAN, then the ISO 7064 mod-97 checksum."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from custos.privacy.pii.findings import IBAN
from custos.privacy.pii.recognizers.base import RulePatternRecognizer

# Length of a full IBAN per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def _pattern() -> str:
    by_length: dict[int, list[str]] = {}
    for country, length in IBAN_LENGTHS.items():
        by_length.setdefault(length, []).append(country)
    # Country code and check digits, then exactly the country's remaining characters, each
    # optionally preceded by one space (print format groups of four, or none).
    options = [
        f"(?:{'|'.join(sorted(codes))})\\d{{2}}(?:[ ]?[A-Z0-9]){{{length - 4}}}"
        for length, codes in sorted(by_length.items(), reverse=True)
    ]
    return r"(?<![A-Za-z0-9])(?:" + "|".join(options) + r")(?![A-Za-z0-9])"


def iban_is_valid(candidate: str) -> bool:
    """Whether ``candidate`` (spaces allowed) is an IBAN of the right length and checksum."""
    compact = candidate.replace(" ", "").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    digits = "".join(str(int(char, 36)) for char in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


class IbanCodeRecognizer(RulePatternRecognizer):
    """IBANs of every registry country, compact or in groups of four; checksum-validated."""

    ENTITY = IBAN
    PATTERNS: ClassVar[list[Pattern]] = [Pattern("iban", _pattern(), 0.5)]
    CONTEXT: ClassVar[list[str]] = ["iban", "konto", "kontonummer", "account", "bank"]

    def validate_result(self, pattern_text: str) -> bool:
        """Checksum: a wrong digit or swapped pair fails mod 97."""
        return iban_is_valid(pattern_text)
