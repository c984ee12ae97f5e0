"""E-mail addresses: a pattern, checked against the public-suffix list (offline snapshot)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from custos.privacy.pii.findings import EMAIL
from custos.privacy.pii.offline import offline_tld_extractor
from custos.privacy.pii.recognizers.base import RulePatternRecognizer


class EmailAddressRecognizer(RulePatternRecognizer):
    """E-mail addresses whose domain ends in a known public suffix (``.de``, ``.co.uk``)."""

    ENTITY = EMAIL
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "email",
            r"(?<![\w.+-])[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
            r"@[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+(?![\w-])",
            0.5,
        )
    ]
    CONTEXT: ClassVar[list[str]] = ["email", "e-mail", "mail", "mailadresse", "contact"]

    def validate_result(self, pattern_text: str) -> bool:
        """Accept the match when its domain has a registered public suffix."""
        return offline_tld_extractor()(pattern_text.rpartition("@")[2]).suffix != ""
