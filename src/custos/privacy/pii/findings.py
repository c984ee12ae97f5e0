"""What the engine reports: entity types and findings (positions and scores, never values)."""

from __future__ import annotations

from dataclasses import dataclass

PERSON = "PERSON"
ADDRESS = "ADDRESS"
DATE_OF_BIRTH = "DATE_OF_BIRTH"
DATE = "DATE"
PHONE = "PHONE"
IBAN = "IBAN"
EMAIL = "EMAIL"
CUSTOMER_ID = "CUSTOMER_ID"
CREDIT_CARD = "CREDIT_CARD"
#: Words about a person's health (GDPR Art. 9): a text holding one is tagged ``health``.
HEALTH = "HEALTH"

ENTITY_TYPES: tuple[str, ...] = (
    PERSON,
    ADDRESS,
    DATE_OF_BIRTH,
    DATE,
    PHONE,
    IBAN,
    EMAIL,
    CUSTOMER_ID,
    CREDIT_CARD,
    HEALTH,
)

# Presidio's (and the labelled benchmark generator's) names for the same entity types.
PRESIDIO_NAMES: dict[str, str] = {
    PERSON: "PERSON",
    ADDRESS: "ADDRESS",
    DATE_OF_BIRTH: "DATE_OF_BIRTH",
    DATE: "DATE_TIME",
    PHONE: "PHONE_NUMBER",
    IBAN: "IBAN_CODE",
    EMAIL: "EMAIL_ADDRESS",
    CUSTOMER_ID: "CUSTOMER_ID",
    CREDIT_CARD: "CREDIT_CARD",
    HEALTH: "HEALTH",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected entity: its type, character span ``[start, end)`` and confidence score.

    A finding carries no text, so its repr and any log line built from it hold no personal data;
    slice the analysed text with ``start``/``end`` where the value itself is needed.
    """

    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str = ""

    @property
    def length(self) -> int:
        """Characters covered."""
        return self.end - self.start

    def overlaps(self, other: Finding) -> bool:
        """Whether the two spans share at least one character."""
        return self.start < other.end and other.start < self.end

    def contains(self, other: Finding) -> bool:
        """Whether this span covers the whole of ``other``."""
        return self.start <= other.start and other.end <= self.end
