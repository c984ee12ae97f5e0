"""Engine settings, declared once as typed data: languages, per-entity thresholds, deny-list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from custos.privacy.pii.findings import (
    ADDRESS,
    CREDIT_CARD,
    CUSTOMER_ID,
    DATE,
    DATE_OF_BIRTH,
    EMAIL,
    HEALTH,
    IBAN,
    PERSON,
    PHONE,
)

Language = Literal["en", "de"]
NerMode = Literal["auto", "always", "never"]

DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType(
    {
        PERSON: 0.5,
        ADDRESS: 0.5,
        DATE_OF_BIRTH: 0.5,
        # Dates without a birth cue score 0.5 only when the year is a plausible birth year;
        # raise this to drop them, lower it to 0.3 to redact every date.
        DATE: 0.5,
        PHONE: 0.5,
        IBAN: 0.5,
        EMAIL: 0.5,
        CUSTOMER_ID: 0.5,
        CREDIT_CARD: 0.5,
        HEALTH: 0.5,
    }
)

# Words that are never reported as PII on their own, and are cut off the edges of a name span
# ("Customer Jane Doe" -> "Jane Doe"). Compared case-insensitively.
DEFAULT_DENY_LIST: frozenset[str] = frozenset(
    {
        "iban",
        "bic",
        "dob",
        "d.o.b.",
        "sepa",
        "plz",
        "tel",
        "tel.",
        "email",
        "e-mail",
        "mail",
        "kunde",
        "kundin",
        "customer",
        "caller",
        "anrufer",
        "anruferin",
        "agent",
        "support",
        "herr",
        "herrn",
        "frau",
        "mr",
        "mrs",
        "ms",
        "dr",
        "apple pay",
        "google pay",
        "paypal",
        "klarna",
    }
)


@dataclass(frozen=True)
class PiiConfig:
    """How the engine is built. Immutable; pass a new one to get a different engine.

    ``languages``: the languages the engine serves (others raise ``ConfigError``).
    ``thresholds``: minimum score per entity type; a type missing here uses 0.5.
    ``deny_list``: words never reported (extends nothing: pass the full set you want).
    ``ner``: when the English spaCy NER model runs: ``auto`` only on texts with capitalised
    words the rule recognizers did not explain, ``always``, or ``never``.
    ``entities``: the entity types to report (default: all).
    """

    languages: tuple[Language, ...] = ("en", "de")
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    deny_list: frozenset[str] = DEFAULT_DENY_LIST
    ner: NerMode = "auto"
    entities: frozenset[str] | None = None

    def threshold(self, entity_type: str) -> float:
        """The minimum score for ``entity_type``."""
        return self.thresholds.get(entity_type, 0.5)

    def denied(self, word: str) -> bool:
        """Whether ``word`` is on the deny-list."""
        return word.strip().casefold() in self.deny_list
