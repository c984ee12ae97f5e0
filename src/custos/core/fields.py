"""The canonical fields of custos: what every source is mapped onto."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a file holds: person records, interactions (calls, posts, orders, events) or consents."""

    RECORDS = "records"
    INTERACTIONS = "interactions"
    CONSENTS = "consents"


#: Fields that identify a person; any of them may appear on records, interactions and consents.
PERSON_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "date_of_birth",
    "street",
    "postcode",
    "city",
    "country",
    "social_handle",
    "customer_id",
)

#: Strong identifiers: an exact match of the normalised value links two records.
STRONG_IDENTIFIERS: tuple[str, ...] = ("email", "phone", "customer_id", "social_handle")
#: The extra attribute of a collected call that keeps what it asserts of a person without
#: verification (a call of the public write key): claims, never identifiers.
CLAIMS = "claims"

RECORD_FIELDS: tuple[str, ...] = ("record_id", *PERSON_FIELDS)
INTERACTION_FIELDS: tuple[str, ...] = (
    "record_id",
    "timestamp",
    "channel",
    "text",
    "language",
    *PERSON_FIELDS,
)
CONSENT_FIELDS: tuple[str, ...] = (
    "record_id",
    "purpose",
    "status",
    "timestamp",
    "method",
    "notice_version",
    "expires_at",
    "evidence",
    "explicit",
    *PERSON_FIELDS,
)

CANONICAL_FIELDS: dict[Kind, tuple[str, ...]] = {
    Kind.RECORDS: RECORD_FIELDS,
    Kind.INTERACTIONS: INTERACTION_FIELDS,
    Kind.CONSENTS: CONSENT_FIELDS,
}

#: Attributes of the golden record, in display order.
GOLDEN_ATTRIBUTES: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "street",
    "postcode",
    "city",
    "country",
    "social_handle",
    "customer_id",
)

CONSENT_STATUSES: tuple[str, ...] = ("granted", "denied", "withdrawn")

#: An extra column's value reads as free text (prose) when it has more than this many words: it
#: is PII-filtered at ingestion like an interaction's text, scanned by ``custos pii scan``, and
#: never released as a coded value (a note tagged ``health`` still names persons and numbers).
PROSE_WORDS = 6


def reads_as_prose(value: object) -> bool:
    """Is ``value`` a string of more than :data:`PROSE_WORDS` words?"""
    return isinstance(value, str) and len(value.split()) > PROSE_WORDS
