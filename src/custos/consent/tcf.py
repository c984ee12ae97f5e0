"""A strict decoder of IAB TCF v2.x TC strings (Transparency and Consent String v2, the format of
TCF v2.0 to v2.2).

A TC string is one or more base64url segments joined by ``.``: the core segment first (version,
times, CMP, purposes consented and by legitimate interest, vendor consents and legitimate
interests, publisher restrictions), then, at most once each, the disclosed-vendors segment
(type 1), the allowed-vendors segment (type 2, TCF v2.0 and v2.1 only) and the publisher TC
segment (type 3). Everything is decoded; anything the format does not allow is refused with a
``SignalError`` that names the segment and the field, never guessed: characters outside
base64url, a string that ends inside a field (a core segment cut before its vendor section), a
vendor range that runs backwards or past its MaxVendorId, ranges naming more than
``MAX_VENDOR_IDS`` vendor ids in all, set bits after the last field, an unknown or repeated
segment, a version other than 2.

The decoder keeps nothing of the string: the result holds the decoded values only.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from itertools import compress

VALID = (
    "a valid TC string is base64url text (A-Z a-z 0-9 - _) in segments joined by '.', the core "
    "segment first (a TCF v2 core segment starts with 'C' and is at least 40 characters long)"
)
#: Vendor ids that the ranges of one string may name in all (real strings name a few thousand;
#: a short string of repeated wide ranges must not cost minutes and gigabytes).
MAX_VENDOR_IDS = 100_000
_BIT = bytes.maketrans(b"01", b"\x00\x01")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class SignalError(ValueError):
    """A consent signal that cannot be read (it is ignored and reported, never guessed)."""


class RestrictionType(IntEnum):
    """What a publisher restriction asks of the vendors it lists, for one purpose."""

    NOT_ALLOWED = 0
    REQUIRE_CONSENT = 1
    REQUIRE_LEGITIMATE_INTEREST = 2


@dataclass(frozen=True, slots=True)
class PublisherRestriction:
    """A publisher's restriction of one purpose for some vendors."""

    purpose: int
    restriction: RestrictionType
    vendors: frozenset[int]


@dataclass(frozen=True, slots=True)
class PublisherTC:
    """The publisher TC segment: the publisher's own purposes and its custom purposes."""

    purposes_consent: frozenset[int]
    purposes_legitimate_interest: frozenset[int]
    custom_purposes_consent: frozenset[int]
    custom_purposes_legitimate_interest: frozenset[int]


@dataclass(frozen=True, slots=True)
class TCString:
    """A decoded TC string: the core segment and the optional segments (None when absent)."""

    version: int
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    policy_version: int
    service_specific: bool
    use_non_standard_texts: bool
    special_features: frozenset[int]
    purposes_consent: frozenset[int]
    purposes_legitimate_interest: frozenset[int]
    purpose_one_treatment: bool
    publisher_country: str
    vendor_consents: frozenset[int]
    vendor_legitimate_interests: frozenset[int]
    publisher_restrictions: tuple[PublisherRestriction, ...]
    disclosed_vendors: frozenset[int] | None = None
    allowed_vendors: frozenset[int] | None = None
    publisher_tc: PublisherTC | None = None


class _Reader:
    """The bits of one segment, read field by field; running out names the field."""

    def __init__(self, name: str, text: str, allowance: int = MAX_VENDOR_IDS) -> None:
        self.name = name
        self.allowance = allowance  # vendor ids that ranges may still name (all segments)
        pad = -len(text) % 4  # whole base64 quanta, the padding characters' bits shifted off
        data = base64.urlsafe_b64decode(text + "A" * pad)
        self.value = int.from_bytes(data, "big") >> (pad * 6)
        self.size = len(text) * 6
        self.position = 0

    def fail(self, problem: str) -> SignalError:
        return SignalError(f"TC string {self.name} segment: {problem}; {VALID}")

    def number(self, width: int, field: str) -> int:
        if self.position + width > self.size:
            raise self.fail(f"it ends inside {field} (bit {self.position} of {self.size})")
        shift = self.size - self.position - width
        self.position += width
        return (self.value >> shift) & ((1 << width) - 1)

    def flag(self, field: str) -> bool:
        return bool(self.number(1, field))

    def flags(self, width: int, field: str) -> frozenset[int]:
        if not width:
            return frozenset()
        bits = format(self.number(width, field), f"0{width}b").encode().translate(_BIT)
        return frozenset(compress(range(1, width + 1), bits))

    def letters(self, field: str) -> str:
        out = ""
        for _ in range(2):
            letter = self.number(6, field)
            if letter > 25:
                raise self.fail(f"{field} holds {letter}, not a letter A-Z (0-25)")
            out += chr(ord("A") + letter)
        return out

    def ranges(self, field: str, limit: int | None = None) -> frozenset[int]:
        """NumEntries, then entries of IsARange, StartOrOnlyVendorId[, EndVendorId]."""
        ids: set[int] = set()
        for _ in range(self.number(12, f"{field} NumEntries")):
            is_range = self.flag(f"{field} IsARange")
            start = self.number(16, f"{field} StartOrOnlyVendorId")
            end = self.number(16, f"{field} EndVendorId") if is_range else start
            if start < 1 or end < start:
                raise self.fail(f"{field} holds the vendor range {start}-{end}")
            if limit is not None and end > limit:
                raise self.fail(f"{field} names vendor {end}, past its MaxVendorId {limit}")
            self.allowance -= end - start + 1
            if self.allowance < 0:
                raise self.fail(f"its ranges name more than {MAX_VENDOR_IDS} vendor ids in all")
            ids.update(range(start, end + 1))
        return frozenset(ids)

    def vendors(self, field: str) -> frozenset[int]:
        """MaxVendorId, IsRangeEncoding, then a bit field or ranges."""
        most = self.number(16, f"{field} MaxVendorId")
        if self.flag(f"{field} IsRangeEncoding"):
            return self.ranges(field, most)
        return self.flags(most, f"{field} BitField") if most else frozenset()

    def end(self) -> None:
        """What follows the last field is padding: zero bits only."""
        rest = self.size - self.position
        if rest and self.value & ((1 << rest) - 1):
            raise self.fail(f"{rest} bits after the last field are not zero padding")


def _deciseconds(value: int) -> datetime:
    return datetime.fromtimestamp(value / 10, tz=UTC)


def _segments(text: str) -> list[str]:
    parts = text.strip().split(".")
    for number, part in enumerate(parts, 1):
        if not _SEGMENT.fullmatch(part) or ("=" in part and len(part) % 4):
            shown = "empty" if not part else "not base64url"
            raise SignalError(f"TC string segment {number} is {shown}; {VALID}")
        if len(part.rstrip("=")) % 4 == 1:
            raise SignalError(f"TC string segment {number} has a stray character; {VALID}")
    return [p.rstrip("=") for p in parts]


def decode(text: str) -> TCString:
    """Decode a TC string (TCF v2.x) in full, or raise ``SignalError`` naming what is wrong."""
    segments = _segments(text)
    bits = _Reader("core", segments[0])
    version = bits.number(6, "Version")
    if version != 2:
        raise bits.fail(f"version {version} is not supported (TCF v2 strings have version 2)")
    created = _deciseconds(bits.number(36, "Created"))
    updated = _deciseconds(bits.number(36, "LastUpdated"))
    cmp_id, cmp_version = bits.number(12, "CmpId"), bits.number(12, "CmpVersion")
    screen = bits.number(6, "ConsentScreen")
    language = bits.letters("ConsentLanguage")
    vendor_list, policy = bits.number(12, "VendorListVersion"), bits.number(6, "TcfPolicyVersion")
    service_specific = bits.flag("IsServiceSpecific")
    non_standard = bits.flag("UseNonStandardTexts")
    special = bits.flags(12, "SpecialFeatureOptIns")
    consent = bits.flags(24, "PurposesConsent")
    legitimate = bits.flags(24, "PurposesLITransparency")
    purpose_one = bits.flag("PurposeOneTreatment")
    country = bits.letters("PublisherCC")
    vendor_consents = bits.vendors("vendor consent section")
    vendor_legitimate = bits.vendors("vendor legitimate interest section")
    restrictions = []
    for _ in range(bits.number(12, "NumPubRestrictions")):
        purpose = bits.number(6, "publisher restriction PurposeId")
        kind = bits.number(2, "publisher restriction RestrictionType")
        if purpose < 1 or kind > 2:
            raise bits.fail(f"publisher restriction of purpose {purpose}, type {kind} is invalid")
        vendors = bits.ranges("publisher restriction")
        restrictions.append(PublisherRestriction(purpose, RestrictionType(kind), vendors))
    bits.end()
    optional: dict[int, frozenset[int] | PublisherTC] = {}
    allowance = bits.allowance
    for text_of in segments[1:]:
        reader = _Reader("optional", text_of, allowance)
        kind = reader.number(3, "SegmentType")
        reader.name = {1: "disclosed vendors", 2: "allowed vendors", 3: "publisher TC"}.get(
            kind, f"type {kind}"
        )
        if kind not in (1, 2, 3):
            raise reader.fail("only types 1 (disclosed vendors), 2 and 3 may follow the core")
        if kind in optional:
            raise reader.fail("it appears twice")
        if kind == 3:
            pub_consent = reader.flags(24, "PubPurposesConsent")
            pub_legitimate = reader.flags(24, "PubPurposesLITransparency")
            custom = reader.number(6, "NumCustomPurposes")
            custom_consent = reader.flags(custom, "CustomPurposesConsent")
            custom_legitimate = reader.flags(custom, "CustomPurposesLITransparency")
            optional[3] = PublisherTC(
                pub_consent, pub_legitimate, custom_consent, custom_legitimate
            )
        else:
            optional[kind] = reader.vendors("vendors")
        reader.end()
        allowance = reader.allowance
    disclosed, allowed, publisher = optional.get(1), optional.get(2), optional.get(3)
    assert not isinstance(disclosed, PublisherTC) and not isinstance(allowed, PublisherTC)
    assert publisher is None or isinstance(publisher, PublisherTC)
    return TCString(
        version,
        created,
        updated,
        cmp_id,
        cmp_version,
        screen,
        language,
        vendor_list,
        policy,
        service_specific,
        non_standard,
        special,
        consent,
        legitimate,
        purpose_one,
        country,
        vendor_consents,
        vendor_legitimate,
        tuple(restrictions),
        disclosed,
        allowed,
        publisher,
    )


def id_ranges(ids: frozenset[int] | set[int]) -> str:
    """Vendor ids as compact text: ``2,10-12`` (``none`` when empty)."""
    ordered = sorted(ids)
    if not ordered:
        return "none"
    parts: list[str] = []
    start = previous = ordered[0]
    for vendor in [*ordered[1:], -1]:
        if vendor != previous + 1:
            parts.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = vendor
        previous = vendor
    return ",".join(parts)


def parse_id_ranges(text: str) -> frozenset[int]:
    """The vendor ids of ``id_ranges`` text."""
    ids: set[int] = set()
    for part in text.split(",") if text != "none" else []:
        start, _, end = part.partition("-")
        ids.update(range(int(start), int(end or start) + 1))
    return frozenset(ids)
