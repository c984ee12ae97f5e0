"""The digits two stored phone numbers are compared on when one of them may lack its country.

A phone is stored in E.164 (``+19565142238``) when its country is known, and as its national
digits (``9565142238``, ``0598549048``) when it was written without a country code and nothing
said which country it belongs to: custos never guesses one. Such a number can still be compared
with others, on its digits: :func:`digits_key` gives both forms of one number the same key.
"""

from __future__ import annotations

from functools import cache

import phonenumbers


@cache
def _calling_code_length(head: str) -> int:
    """How many leading digits of an E.164 number (given its first three) are the calling code."""
    for size in (1, 2, 3):
        if int(head[:size] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return size
    return 0


def digits_key(stored: str) -> str:
    """The comparison digits of a stored phone number.

    For an E.164 number, its national significant number without one leading ``0`` (Italy keeps
    the ``0`` in the number); for national digits, the digits without one leading trunk ``0``,
    or without the ``1`` of an 11-digit North American number. ``+19565142238`` and
    ``9565142238`` both give ``9565142238``; ``+31598549048`` and ``0598549048`` both give
    ``598549048``.
    """
    if stored.startswith("+"):
        digits = stored[1:]
        national = digits[_calling_code_length(digits[:3]) :]
        return national[1:] if national.startswith("0") else national
    if stored.startswith("0"):
        return stored[1:]
    if len(stored) == 11 and stored.startswith("1"):
        return stored[1:]
    return stored


def is_national(stored: str) -> bool:
    """True for a stored number whose country is unknown (national digits, no ``+``)."""
    return not stored.startswith("+")


@cache
def _calling_codes() -> tuple[str, ...]:
    return tuple(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE if code)


def stored_forms(stored: str) -> list[str]:
    """Every form the same number may be stored in, by :func:`digits_key`: the national digits
    with and without a trunk ``0`` (and a NANP ``1``), and, for a national number, its E.164
    form in every country (an exact look-up needs the stored value; the digits alone are not
    indexed)."""
    key = digits_key(stored)
    forms = {stored, key, "0" + key}
    if len(key) == 10:
        forms.add("1" + key)
    if is_national(stored):
        forms.update(f"+{code}{key}" for code in _calling_codes())
        forms.add(f"+390{key}")  # Italy keeps the 0 in the number
    return sorted(forms)


def line_kind(stored: str) -> str | None:
    """``"mobile"`` or ``"fixed"`` for an E.164 number whose numbering plan tells (a landline
    rings in a household, a mobile in one pocket), None where it cannot tell (national digits,
    North American numbers, which the plan gives as "fixed line or mobile")."""
    if not stored.startswith("+") or stored.startswith("+1"):
        return None
    # The type is a matter of the number's leading digits and length: decided once per prefix
    # (a full parse costs ~25 µs; a store holds millions of numbers).
    return _kind(stored[:8], len(stored), stored)


_MOBILE = {phonenumbers.PhoneNumberType.MOBILE}
_UNKNOWN = {
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    phonenumbers.PhoneNumberType.UNKNOWN,
}


def _kind(prefix: str, length: int, example: str) -> str | None:
    key = (prefix, length)
    found = _KINDS.get(key, _MISSING)
    if found is _MISSING:
        try:
            kind = phonenumbers.number_type(phonenumbers.parse(example))
        except phonenumbers.NumberParseException:
            kind = phonenumbers.PhoneNumberType.UNKNOWN
        found = None if kind in _UNKNOWN else "mobile" if kind in _MOBILE else "fixed"
        if len(_KINDS) > 100_000:
            _KINDS.clear()
        _KINDS[key] = found
    return found  # type: ignore[return-value]


_MISSING = object()
_KINDS: dict[tuple[str, int], object] = {}
