"""Consent signals from the field, mapped onto custos purposes (``signals:`` in the taxonomy).

* Segment: ``context.consent.categoryPreferences`` — ``{category: true|false}``;
* RudderStack: ``context.consentManagement`` — ``allowedConsentIds`` / ``deniedConsentIds``;
* IAB TCF v2.x: the TC string (decoded in full by ``custos.consent.tcf``): its purposes, and the
  vendors each granted purpose may go to (consent, legitimate interest, publisher restrictions);
* Global Privacy Control: the ``Sec-GPC: 1`` header or ``context.gpc`` — an opt-out of sale,
  sharing and targeted advertising.

Each signal becomes ledger events (purpose, status, method, evidence) for the person the event
is about; nothing here touches the store.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from custos.consent import tcf
from custos.consent.ledger import DENIED, GRANTED
from custos.consent.tcf import RestrictionType, SignalError

__all__ = ["Signal", "SignalError", "signals_from_event", "tcf_signals", "tcf_vendors"]


@dataclass(frozen=True, slots=True)
class Signal:
    """One consent decision read from a signal."""

    purpose: str
    status: str
    method: str
    evidence: str
    at: datetime | None = None


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


_VENDORS = re.compile(r"\bvendors (none|[0-9][0-9,-]*)")


def _vendors(decoded: tcf.TCString, numbers: set[int], interest: bool) -> set[int]:
    """The vendors a custos purpose's data may go to: for every TCF purpose mapped to it, those
    with the person's consent to the purpose and to the vendor, or (for a custos purpose on
    legitimate interest) with the purpose's and the vendor's legitimate interest established;
    a vendor the publisher restricts only as its restrictions allow (not allowed: never;
    require consent or legitimate interest: only that way)."""
    out: set[int] | None = None
    for number in numbers:
        consented = decoded.vendor_consents if number in decoded.purposes_consent else frozenset()
        by_interest = (
            decoded.vendor_legitimate_interests
            if interest and number in decoded.purposes_legitimate_interest
            else frozenset()
        )
        restricted: dict[int, set[RestrictionType]] = {}
        for restriction in decoded.publisher_restrictions:
            if restriction.purpose == number:
                for vendor in restriction.vendors:
                    restricted.setdefault(vendor, set()).add(restriction.restriction)
        allowed = set(consented | by_interest).difference(restricted)
        allowed |= {
            vendor
            for vendor, kinds in restricted.items()
            if (kinds == {RestrictionType.REQUIRE_CONSENT} and vendor in consented)
            or (kinds == {RestrictionType.REQUIRE_LEGITIMATE_INTEREST} and vendor in by_interest)
        }
        out = allowed if out is None else out & allowed
    return out or set()


def tcf_signals(
    tc_string: str, mapping: Mapping[str, Any], bases: Mapping[str, str] | None = None
) -> list[Signal]:
    """Signals from a TC string, one per custos purpose mapped from TCF purposes (``bases``:
    custos purpose → lawful basis), timed at the string's last update:

    * granted when every mapped TCF purpose is consented;
    * otherwise, for a purpose on legitimate interest: denied (an objection) when a mapped TCF
      purpose has neither consent nor legitimate interest, else no signal (the legitimate
      interest stands; a missing consent bit is not an objection);
    * otherwise denied.

    A grant's evidence lists the TCF vendors the purpose's data may go to (``tcf_vendors``).
    """
    decoded = tcf.decode(tc_string)
    needs: dict[str, set[int]] = {}
    for number, purposes in mapping.items():
        for purpose in purposes or []:
            needs.setdefault(purpose, set()).add(int(number))
    digest = hashlib.sha256(tc_string.encode()).hexdigest()[:16]
    evidence = f"tcstring:{digest} cmp {decoded.cmp_id} purposes {sorted(decoded.purposes_consent)}"
    out = []
    listed: dict[frozenset[int], str] = {}
    for purpose, numbers in sorted(needs.items()):
        interest = (bases or {}).get(purpose) == "legitimate_interest"
        if numbers <= decoded.purposes_consent:
            vendors = frozenset(_vendors(decoded, numbers, interest))
            if vendors not in listed:  # purposes mostly share their vendors: written once
                listed[vendors] = tcf.id_ranges(vendors)
            note = f"{evidence} vendors {listed[vendors]}"
            out.append(Signal(purpose, GRANTED, "tcf", note, decoded.last_updated))
        elif not interest or not numbers <= (
            decoded.purposes_consent | decoded.purposes_legitimate_interest
        ):
            out.append(Signal(purpose, DENIED, "tcf", evidence, decoded.last_updated))
    return out


def tcf_vendors(evidence: str | None) -> frozenset[int]:
    """The TCF vendors a TCF grant recorded (its evidence), none for any other event."""
    found = _VENDORS.search(evidence or "")
    return tcf.parse_id_ranges(found.group(1)) if found else frozenset()


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
            found += tcf_signals(str(tc_string), signals.get("tcf") or {}, signals.get("bases"))
        except SignalError as exc:
            problems.append(f"TCF: {exc}")
    found += gpc_signals(context, headers or {}, list(signals.get("gpc") or []))
    return found, problems
