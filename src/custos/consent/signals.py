"""Consent signals from the field, mapped onto custos purposes (``signals:`` in the taxonomy).

* Segment: ``context.consent.categoryPreferences`` — ``{category: true|false}``;
* RudderStack: ``context.consentManagement`` — ``allowedConsentIds`` / ``deniedConsentIds``;
* IAB TCF v2.x: the TC string's core segment (purposes consented, created and updated times);
* Global Privacy Control: the ``Sec-GPC: 1`` header or ``context.gpc`` — an opt-out of sale,
  sharing and targeted advertising.

Each signal becomes ledger events (purpose, status, method, evidence) for the person the event
is about; nothing here touches the store.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from custos.consent.ledger import DENIED, GRANTED


@dataclass(frozen=True, slots=True)
class Signal:
    """One consent decision read from a signal."""

    purpose: str
    status: str
    method: str
    evidence: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TCString:
    """The core segment of an IAB TCF v2 TC string."""

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
    special_features: frozenset[int]
    purposes_consent: frozenset[int]
    purposes_legitimate_interest: frozenset[int]


class SignalError(ValueError):
    """A signal that cannot be read (it is ignored and reported, never guessed)."""


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.size = len(data) * 8
        self.position = 0

    def read(self, width: int) -> int:
        if self.position + width > self.size:
            raise SignalError("TC string ends early")
        shift = self.size - self.position - width
        self.position += width
        return (self.value >> shift) & ((1 << width) - 1)

    def flags(self, width: int) -> frozenset[int]:
        bits = self.read(width)
        return frozenset(i + 1 for i in range(width) if bits >> (width - 1 - i) & 1)


def _deciseconds(value: int) -> datetime:
    return datetime.fromtimestamp(value / 10, tz=UTC)


def decode_tc_string(text: str) -> TCString:
    """Decode the core segment of a TCF v2 TC string (base64url, bit fields per the spec)."""
    core = text.strip().split(".")[0]
    try:
        data = base64.urlsafe_b64decode(core + "=" * (-len(core) % 4))
    except (ValueError, TypeError) as exc:
        raise SignalError("TC string is not base64url") from exc
    bits = _Bits(data)
    version = bits.read(6)
    if version != 2:
        raise SignalError(f"TC string version {version} is not supported (only 2)")
    created, updated = _deciseconds(bits.read(36)), _deciseconds(bits.read(36))
    cmp_id, cmp_version, screen = bits.read(12), bits.read(12), bits.read(6)
    language = chr(ord("A") + bits.read(6)) + chr(ord("A") + bits.read(6))
    vendor_list, policy = bits.read(12), bits.read(6)
    service_specific = bool(bits.read(1))
    bits.read(1)  # use non-standard texts
    special = bits.flags(12)
    consent = bits.flags(24)
    legitimate = bits.flags(24)
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
        special,
        consent,
        legitimate,
    )


def _mapped(mapping: Mapping[str, Any], key: str) -> list[str]:
    for name, purposes in mapping.items():
        if str(name).lower() == str(key).lower():
            return list(purposes or [])
    return []


def _object(value: Any, path: str, problems: list[str]) -> Mapping[str, Any]:
    """``value`` when it is a JSON object; absent (None) is empty; anything else is reported
    (a signal that cannot be read is never guessed) and read as empty."""
    if value is None or isinstance(value, Mapping):
        return value or {}
    problems.append(
        f"{path} is {_kind(value)}, not an object: its consent signal was not read; "
        f"send {path} as a JSON object"
    )
    return {}


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def segment_signals(
    context: Mapping[str, Any], mapping: Mapping[str, Any], problems: list[str] | None = None
) -> list[Signal]:
    """Signals from Segment's ``context.consent.categoryPreferences`` (a value that is not an
    object is reported in ``problems``)."""
    problems = [] if problems is None else problems
    consent = _object(context.get("consent"), "context.consent", problems)
    preferences = _object(
        consent.get("categoryPreferences"), "context.consent.categoryPreferences", problems
    )
    out = []
    for category, allowed in sorted(preferences.items()):
        if not isinstance(allowed, bool):
            problems.append(
                f"context.consent.categoryPreferences.{category} is {_kind(allowed)}, not "
                "true or false: not read; send true or false"
            )
            continue
        for purpose in _mapped(mapping, category):
            status = GRANTED if allowed else DENIED
            out.append(
                Signal(purpose, status, "segment", f"categoryPreferences.{category}={allowed}")
            )
    return out


def rudderstack_signals(
    context: Mapping[str, Any], mapping: Mapping[str, Any], problems: list[str] | None = None
) -> list[Signal]:
    """Signals from RudderStack's ``context.consentManagement`` (allowed and denied ids; a value
    of the wrong shape is reported in ``problems``)."""
    problems = [] if problems is None else problems
    management = _object(context.get("consentManagement"), "context.consentManagement", problems)
    out = []
    for key, status in (("allowedConsentIds", GRANTED), ("deniedConsentIds", DENIED)):
        listed = management.get(key)
        if listed is None:
            continue
        if not isinstance(listed, list):
            problems.append(
                f"context.consentManagement.{key} is {_kind(listed)}, not a list: not read; "
                "send a list of consent ids"
            )
            continue
        for consent_id in listed:
            if isinstance(consent_id, dict | list) or consent_id is None:
                problems.append(
                    f"context.consentManagement.{key} holds {_kind(consent_id)}: not read; "
                    "send consent ids as text"
                )
                continue
            for purpose in _mapped(mapping, str(consent_id)):
                out.append(Signal(purpose, status, "rudderstack", f"{key}:{consent_id}"))
    return out


def tcf_signals(tc_string: str, mapping: Mapping[str, Any]) -> list[Signal]:
    """Signals from a TC string: a custos purpose is granted when every TCF purpose mapped to it
    is consented, denied otherwise; timed at the string's last update."""
    decoded = decode_tc_string(tc_string)
    needs: dict[str, set[int]] = {}
    for number, purposes in mapping.items():
        for purpose in purposes or []:
            needs.setdefault(purpose, set()).add(int(number))
    digest = hashlib.sha256(tc_string.encode()).hexdigest()[:16]
    return [
        Signal(
            purpose,
            GRANTED if numbers <= decoded.purposes_consent else DENIED,
            "tcf",
            f"tcstring:{digest} cmp {decoded.cmp_id} purposes {sorted(decoded.purposes_consent)}",
            decoded.last_updated,
        )
        for purpose, numbers in sorted(needs.items())
    ]


def gpc_signals(
    context: Mapping[str, Any], headers: Mapping[str, str], purposes: list[str]
) -> list[Signal]:
    """An opt-out of the mapped purposes when Global Privacy Control is on."""
    header = next((v for k, v in headers.items() if k.lower() == "sec-gpc"), None)
    on = str(header).strip() == "1" or context.get("gpc") is True
    evidence = "Sec-GPC: 1" if str(header).strip() == "1" else "context.gpc=true"
    return [Signal(p, DENIED, "gpc", evidence) for p in purposes] if on else []


def signals_from_event(
    message: Mapping[str, Any], signals: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> tuple[list[Signal], list[str]]:
    """Every consent signal in one collected event (Segment/RudderStack shape) and its headers.

    Returns (signals, problems): a signal that cannot be read (a context, consent object or
    preference list of the wrong shape, a TC string that does not decode) is reported, never
    guessed; the signals that can be read are kept.
    """
    problems: list[str] = []
    context = _object(message.get("context"), "context", problems)
    found: list[Signal] = []
    found += segment_signals(context, signals.get("segment") or {}, problems)
    found += rudderstack_signals(context, signals.get("rudderstack") or {}, problems)
    consent = context.get("consent")
    tc_string = (consent.get("tcString") if isinstance(consent, Mapping) else None) or context.get(
        "tcString"
    )
    if tc_string:
        try:
            found += tcf_signals(str(tc_string), signals.get("tcf") or {})
        except SignalError as exc:
            problems.append(f"TCF: {exc}")
    found += gpc_signals(context, headers or {}, list(signals.get("gpc") or []))
    return found, problems
