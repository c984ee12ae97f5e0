"""The canonical fields of custos: what every source is mapped onto.

Every fact about a person field lives in one registry, :data:`FIELDS`: its default data
category, how the golden record chooses it, which column of the matcher it feeds, whether a bad
value costs the field or the row, and the comparison key stored beside it. The field lists that
ingestion, the schema, identity resolution and the golden record use are derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Kind(StrEnum):
    """What a file holds: person records, interactions (calls, posts, orders, events) or consents."""

    RECORDS = "records"
    INTERACTIONS = "interactions"
    CONSENTS = "consents"


class Golden(StrEnum):
    """How the golden record chooses a field's value."""

    #: on its own: the best member that has a value
    SINGLE = "single"
    #: with the other address fields, from one member, so two addresses never mix
    ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class Field:
    """A normalised person column of ``records`` and ``interactions``: its ``name``, its data
    ``category`` in the shipped taxonomy (``consent/taxonomy.yaml``; a company may override
    it), how the ``golden`` record chooses it (None: not a golden attribute), the matcher's
    column it feeds (``match``, see :data:`MATCH_SOURCE`), whether a bad value costs the field
    rather than the row (``droppable``), and for a comparison key stored beside a field
    (``first_name_key``) the field it is derived from (``key_of``)."""

    name: str
    category: str
    golden: Golden | None = None
    match: str | None = None
    droppable: bool = False
    key_of: str | None = None


#: Every normalised person column, in the order they are stored (ingestion builds its rows in
#: this order).
FIELDS: tuple[Field, ...] = (
    Field("first_name", "identity", Golden.SINGLE),
    Field("last_name", "identity", Golden.SINGLE),
    Field("full_name", "identity"),
    Field("first_name_key", "identity", match="first_name", key_of="first_name"),
    Field("last_name_key", "identity", match="surname", key_of="last_name"),
    Field("email", "contact", Golden.SINGLE, match="email", droppable=True),
    Field("phone", "contact", Golden.SINGLE, match="phone", droppable=True),
    Field("date_of_birth", "identity", Golden.SINGLE, match="dob", droppable=True),
    Field("street", "location", Golden.ADDRESS),
    Field("street_key", "location", match="street", key_of="street"),
    Field("postcode", "location", Golden.ADDRESS, match="postcode"),
    Field("city", "coarse_location", Golden.ADDRESS, match="city"),
    Field("country", "coarse_location", Golden.ADDRESS, droppable=True),
    Field("social_handle", "contact", Golden.SINGLE, droppable=True),
    Field("customer_id", "identity", Golden.SINGLE, match="customer_id"),
)

#: The stored person columns, comparison keys included, in :data:`FIELDS` order.
PERSON_COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS)
#: Fields that identify a person; any of them may appear on records, interactions and consents.
PERSON_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.key_of is None)
#: Comparison keys by the field they are derived from (cleared with it).
KEY_COLUMNS: dict[str, str] = {f.key_of: f.name for f in FIELDS if f.key_of is not None}
#: Attributes of the golden record, in display order.
GOLDEN_ATTRIBUTES: tuple[str, ...] = tuple(f.name for f in FIELDS if f.golden is not None)
#: Golden attributes chosen one by one.
GOLDEN_SINGLE: tuple[str, ...] = tuple(f.name for f in FIELDS if f.golden is Golden.SINGLE)
#: Golden attributes chosen together, from one record.
GOLDEN_ADDRESS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.golden is Golden.ADDRESS)
#: The matcher's columns → the stored columns they are read from (names as folded keys, the
#: street as its key).
MATCH_SOURCE: dict[str, str] = {f.match: f.name for f in FIELDS if f.match is not None}
#: Person fields a row may lose (a bad value) rather than be quarantined for.
DROPPABLE_PERSON_FIELDS: frozenset[str] = frozenset(f.name for f in FIELDS if f.droppable)
#: The default data category of each person field.
CATEGORIES: dict[str, str] = {f.name: f.category for f in FIELDS if f.key_of is None}

#: Strong identifiers: an exact match of the normalised value links two records. (In this order
#: they are stored and keyed: consent-event keys and identifier columns follow it.)
STRONG_IDENTIFIERS: tuple[str, ...] = ("email", "phone", "customer_id", "social_handle")
#: The extra attribute of a collected call that keeps what it asserts of a person without
#: verification (a call of the public write key): claims, never identifiers.
CLAIMS = "claims"

#: A CRM's form-of-address column (Anrede, salutation: "Frau", "Mr"): read, not stored on its
#: own. It goes in front of the record's ``full_name`` ("Mrs R. West"), where identity reads
#: the gender it states for a record known by an initial (see :data:`SALUTATION_GENDERS`).
SALUTATION = "salutation"
RECORD_FIELDS: tuple[str, ...] = ("record_id", SALUTATION, *PERSON_FIELDS)
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

CONSENT_STATUSES: tuple[str, ...] = ("granted", "denied", "withdrawn")

#: An extra column's value reads as free text (prose) when it has more than this many words: it
#: is PII-filtered at ingestion like an interaction's text, scanned by ``custos pii scan``, and
#: never released as a coded value (a note tagged ``health`` still names persons and numbers).
PROSE_WORDS = 6


def reads_as_prose(value: object) -> bool:
    """Is ``value`` a string of more than :data:`PROSE_WORDS` words?"""
    return isinstance(value, str) and len(value.split()) > PROSE_WORDS


def years_old(dob: str | None, today: date) -> int | None:
    """Age in whole years on ``today`` of a person born on ``dob`` (an ISO date, or the start
    of a timestamp); None for a missing or unreadable date."""
    if not dob:
        return None
    try:
        born = date.fromisoformat(dob[:10])
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


#: Generational suffixes written after a name, as name keys (lower case, ASCII, umlauts folded
#: as ``custos.ingest.normalise.name_key`` folds them) → the generation they state. Ingestion
#: keeps them with the surname when it splits a full name; identity reads them as a fact.
GENERATION_SUFFIXES: dict[str, str] = {
    "jr": "jr",
    "junior": "jr",
    "jun": "jr",
    "sr": "sr",
    "senior": "sr",
    "sen": "sr",
    "ii": "ii",
    "iii": "iii",
    "iv": "iv",
}
#: Suffixes that are also names (Korean Min-jun, Indian Sen): they need a surname before them.
AMBIGUOUS_GENERATION_SUFFIXES = frozenset({"jun", "sen"})
#: Two-word German suffixes: *d. J.* / *der Jüngere*, *d. Ä.* / *der Ältere* (as keys).
GENERATION_SUFFIX_PAIRS: dict[tuple[str, str], str] = {
    ("d", "j"): "jr",
    ("der", "jungere"): "jr",
    ("d", "a"): "sr",
    ("der", "altere"): "sr",
}
#: Forms of address that state a gender (as lower-case words without their dot): a caller
#: known only as "Frau Ackermann" or "Mrs Booth" is no man of that household.
SALUTATION_GENDERS: dict[str, str] = {
    **dict.fromkeys(
        ("frau", "fr", "mrs", "ms", "miss", "madam", "dame", "mevr", "mevrouw", "mme", "mlle"),
        "f",
    ),
    **dict.fromkeys(("madame", "mademoiselle", "signora", "sra", "kundin", "anruferin"), "f"),
    **dict.fromkeys(("herr", "hr", "mr", "sir", "dhr", "monsieur", "signor", "sig"), "m"),
}
