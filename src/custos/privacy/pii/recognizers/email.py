"""E-mail addresses: a pattern, checked against the public-suffix list (offline snapshot)."""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import Pattern, PatternRecognizer

from custos.privacy.pii.findings import EMAIL
from custos.privacy.pii.offline import offline_tld_extractor


class EmailAddressRecognizer(PatternRecognizer):
    """E-mail addresses whose domain ends in a known public suffix (``.de``, ``.co.uk``)."""

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "email",
            r"(?<![\w.+-])[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
            r"@[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+(?![\w-])",
            0.5,
        )
    ]
    CONTEXT: ClassVar[list[str]] = ["email", "e-mail", "mail", "mailadresse", "contact"]

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entity=EMAIL,
            patterns=self.PATTERNS,
            context=self.CONTEXT,
            supported_language=supported_language,
            global_regex_flags=re.MULTILINE,
        )

    def validate_result(self, pattern_text: str) -> bool:
        """Accept the match when its domain has a registered public suffix."""
        return offline_tld_extractor()(pattern_text.rpartition("@")[2]).suffix != ""
