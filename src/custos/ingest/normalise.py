"""Normalisers: turn the values of one source row into custos's canonical forms.

Each normaliser takes a raw value and returns the canonical value, or None for an empty one, or
raises :class:`FieldError` naming the problem and the fix (never the value: it may be personal).
"""

from __future__ import annotations

import re
import traceback
import unicodedata
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

import phonenumbers
from anyascii import anyascii

from custos.core.fields import (
    AMBIGUOUS_GENERATION_SUFFIXES,
    GENERATION_SUFFIX_PAIRS,
    GENERATION_SUFFIXES,
)
from custos.core.phones import digits_key
from custos.ingest.countries import country_code


class FieldError(ValueError):
    """A value that cannot be normalised; ``field`` is filled in by the caller.

    ``implausible``: the value reads fine (a date, a number of digits) but cannot be true (a
    birth date before 1900, a phone number of an impossible length): most often a typo in a
    row that is otherwise good, unlike text that is not a date or e-mail at all.
    """

    def __init__(
        self, reason: str, fix: str, field: str = "", *, implausible: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix
        self.field = field
        self.implausible = implausible


class AmbiguousDate(FieldError):
    """A date that reads two ways (``03/04/1982``: 3 April or 4 March?). ``readings`` holds
    both, the day/month reading first, then the month/day one: never one of them guessed."""

    def __init__(
        self, readings: tuple[date, date] | tuple[str, str], reason: str, fix: str
    ) -> None:
        super().__init__(reason, fix)
        self.readings = readings


NULL_TOKENS = frozenset({"", "null", "none", "n/a", "na", "nan", "-", "--", "nil", "unknown"})
_SPACES = re.compile(r"\s+")


def clean(value: Any) -> str | None:
    """A trimmed NFC string with single spaces, or None for an empty value or a null token."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if "  " in text or not text.isprintable():  # tabs, line breaks, runs of spaces
        text = _SPACES.sub(" ", text)
    text = text.strip()
    if len(text) < 8 and text.lower() in NULL_TOKENS:
        return None
    return text


def free_text(value: Any) -> str | None:
    """Free text (notes, posts): NFC and trimmed, line breaks and spacing kept as written."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", value if type(value) is str else str(value)).strip()
    return None if len(text) < 8 and text.lower() in NULL_TOKENS else text


# -- names -----------------------------------------------------------------------------------

_NOT_LETTERS = re.compile(r"[^a-z]+")
_DIGRAPHS = (("ae", "a"), ("oe", "o"), ("ue", "u"))
TITLES = frozenset(
    [
        "herr",
        "frau",
        "fr",
        "hr",
        "dr",
        "prof",
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "sir",
        "madam",
        "dame",
        "kunde",
        "kundin",
        "anrufer",
        "anruferin",
        "customer",
        "caller",
        # Dutch, French, Italian, Spanish forms of address
        "dhr",
        "mevr",
        "mevrouw",
        "mme",
        "mlle",
        "madame",
        "monsieur",
        "sig",
        "signora",
        "signor",
        "sra",
    ]
)
PARTICLES = frozenset(
    [
        "von",
        "van",
        "der",
        "den",
        "de",
        "da",
        "di",
        "del",
        "la",
        "le",
        "zu",
        "ten",
        "ter",
        "dos",
        "du",
    ]
)


@lru_cache(maxsize=200_000)
def name_key(name: str) -> str:
    """Comparison form of a name: case, diacritics and German transliteration folded.

    ``Müller``, ``Mueller``, ``MÜLLER`` and ``Muller`` all become ``muller``.
    """
    return _fold_digraphs(_NOT_LETTERS.sub(" ", anyascii(name.lower())).strip())


def _fold_digraphs(folded: str) -> str:
    """German transliteration folded (``mueller`` → ``muller``, as ``müller`` folds)."""
    changed = True
    while changed:  # until stable, so that the key of a key is the key itself
        before = folded
        for digraph, letter in _DIGRAPHS:
            folded = folded.replace(digraph, letter)
        changed = folded != before
    return folded


@lru_cache(maxsize=100_000)
def display_name(name: str) -> str:
    """A name as people write it: upper- or lower-case-only input is title-cased."""
    if name.isupper() or name.islower():
        return "-".join(part.capitalize() for part in name.title().split("-"))
    return name


#: Countries where "M." before a surname is the form of address Monsieur.
FRENCH_SPEAKING = frozenset(("FR", "BE", "CH", "LU", "MC", "CA"))


def split_full_name(full: str, *, monsieur: bool = True) -> tuple[str | None, str | None]:
    """Split ``First Last``, ``Last, First``, ``Frau Last`` and ``Mr de Jonge`` into (first,
    last): a surname's particles (van, de, von …) belong to it, never to a first name, and so
    does a generational suffix (``Wolf Vogt Jr.`` → Wolf, Vogt Jr.; ``Smith, John Sr``).
    ``monsieur``: a leading "M." may be the French Monsieur as well as an initial (a row of a
    French-speaking country or of none known), so it gives no first name."""
    words = full.split(" ")
    suffix = _generation_words(words)
    if suffix and len(words) > suffix:
        first, last = split_full_name(" ".join(words[:-suffix]).rstrip(" ,"), monsieur=monsieur)
        tail = " ".join(words[-suffix:])
        if last is None:  # "Wolf Jr." alone: the suffix is no surname of its own
            return (first, None) if first is None else (first + " " + tail, None)
        return (first, f"{last} {tail}")
    if "," in full:
        last, _, first = full.partition(",")
        return (clean(first), clean(last))
    tokens = [t for t in words if t.lower().rstrip(".") not in TITLES]
    if not tokens:
        return (None, None)
    if len(tokens) > 1 and (
        (monsieur and tokens[0].lower() == "m.") or tokens[0].lower().rstrip(".") == "sr"
    ):
        # "M. Wagner": Monsieur Wagner as often as an initial; which, the name cannot say, so
        # it says no first name (a caller "M. Wagner" is not Michèle of his household; "M. Jean
        # Martin" is Jean). "Sr. García" is Señor García (after the surname, "Sr" is Senior:
        # :func:`_generation_words`).
        tokens = tokens[1:]
    if _surname_only(tokens):
        return (None, " ".join(tokens))  # "Frau Last", "Mr de Jonge", "Dhr. van der Berg"
    cut = len(tokens) - 1
    while cut > 1 and tokens[cut - 1].lower() in PARTICLES:
        cut -= 1
    return (" ".join(tokens[:cut]), " ".join(tokens[cut:]))


def _surname_only(tokens: list[str]) -> bool:
    """Are the words one surname: one word, or particles before the last (``de Jonge``)?"""
    return len(tokens) == 1 or all(t.lower() in PARTICLES for t in tokens[:-1])


def _generation_words(words: list[str]) -> int:
    """How many trailing words of a full name are a generational suffix (Jr., Sr, III, d. J.),
    after at least two other words ("Wolf Vogt Jr.", not "Min Jun" or "Wolf Jr."). The
    suffixes that are also names (jun, sen) count only as abbreviations, with their dot
    ("Klaus Kobelt sen."); without it they are left to the surname they follow ("Amartya Sen")."""
    said = [word for word in words if word]
    keys = [name_key(word) for word in said]
    if len(keys) >= 4 and (keys[-2], keys[-1]) in GENERATION_SUFFIX_PAIRS:
        return 2
    last = keys[-1] if keys else ""
    if (
        len(keys) >= 3
        and last in GENERATION_SUFFIXES
        and (last not in AMBIGUOUS_GENERATION_SUFFIXES or said[-1].endswith("."))
    ):
        return 1
    return 0


# -- e-mail, phone, handles, ids -------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")


def email(value: Any) -> str | None:
    """Trimmed, lower-case e-mail address; raises when it is not an address at all."""
    text = clean(value)
    if text is None:
        return None
    text = text.lower().removeprefix("mailto:").replace(" ", "")
    if not _EMAIL.match(text):
        raise FieldError("not an e-mail address", "write it as name@domain.tld, or leave it empty")
    return text


@lru_cache(maxsize=100_000)
def _e164(text: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        # phonenumbers keeps the exception in a local of its own frame: a reference cycle that
        # holds every caller's frame (a whole batch of rows) until the cyclic collector runs.
        traceback.clear_frames(exc.__traceback__)
        raise FieldError(
            "not a phone number", "write it with digits, e.g. +49 30 1234567, or leave it empty"
        ) from exc
    if not phonenumbers.is_possible_number(number):
        where = f" for region {region}" if region and not text.startswith("+") else ""
        raise FieldError(
            f"not a possible phone number{where}",
            "check the digits, or add the country code (+49 …) or a country column",
            implausible=True,
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone(value: Any, region: str | None) -> str | None:
    """The stored form of a phone number.

    A number written with its country code (``+44 …``, ``0044 …``) becomes E.164
    (``+442079460123``) whatever ``region`` says. A national number (``030 1234567``) becomes
    E.164 with ``region`` as its country; without a region it is never given one: it is kept
    as its national digits as written (``(956) 514-2238`` → ``9565142238``, ``0182/405851`` →
    ``0182405851``, leading zeros kept, no ``+``). A stored phone without ``+`` therefore means
    "national number, country unknown"; :func:`phone_digits_key` compares it with E.164 forms.
    """
    text = clean(value)
    if text is None:
        return None
    if isinstance(value, float) and value.is_integer():  # spreadsheets turn numbers into floats
        text = str(int(value))
    # Drop the separators people type before parsing: the same number written
    # "(030) 123 45-67" or "030/1234567" then hits the same cache entry, and parsing is faster.
    compact = text.replace("(0)", "").translate(_PHONE_SEPARATORS)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    plain = compact[1:] if compact.startswith("+") else compact
    digits = len(plain) if plain.isdigit() else sum(c.isdigit() for c in compact)
    if digits < MIN_PHONE_DIGITS:
        raise FieldError(
            "not a phone number", "write it with digits, e.g. +49 30 1234567, or leave it empty"
        )
    if compact in _KNOWN_E164 or (plain is not compact and _plausible_e164(plain)):
        return compact  # already in canonical form: the region does not matter
    if region is None and plain is compact:
        return _national_digits(compact)
    if plain is compact and region is not None and (trunk := _trunk(region)) is not None:
        # A national number written with the trunk prefix (030 …) in a plan that strips it
        # plainly: its E.164 form is the calling code and the rest, when phonenumbers' metadata
        # says that length is possible (else, and for everything unusual, a full parse).
        code, prefix = trunk
        if prefix and compact.startswith(prefix) and not compact.startswith(prefix * 2):
            candidate = code + compact[len(prefix) :]
            if candidate in _KNOWN_E164 or _plausible_e164(candidate[1:]):
                return candidate
        elif not (
            (prefix and compact.startswith(prefix))
            or compact.startswith(code[1:])  # phonenumbers may read a calling code there
            or _international_prefix(region).match(compact)
        ):
            # A national number written without trunk prefix (201 555 0123 in the US): the
            # calling code and the digits, again when that length is possible.
            candidate = code + compact
            if candidate in _KNOWN_E164 or _plausible_e164(candidate[1:]):
                return candidate
    result = _e164(compact if plain.isdigit() else text, region)
    if len(_KNOWN_E164) > 500_000:
        _KNOWN_E164.clear()
    _KNOWN_E164.add(result)
    return result


def _national_digits(compact: str) -> str:
    """A national number of unknown country, as stored: its digits as written."""
    if not compact.isdigit():
        raise FieldError(
            "not a phone number",
            "write it with digits only, with its country code (+49 30 1234567), or leave it empty",
        )
    if len(compact) > MAX_NATIONAL_DIGITS:
        raise FieldError(
            "not a possible phone number (too many digits)",
            "check the digits, or add the country code (+49 …) or a country column",
            implausible=True,
        )
    return compact


#: The digits two stored phones are compared on when one may lack its country: for an E.164
#: value the national significant number without one leading 0, for a national value its
#: digits without one trunk 0 (or the 1 of an 11-digit North American number). ``+19565142238``
#: and ``9565142238`` both give ``9565142238``; ``+31598549048`` and ``0598549048`` give
#: ``598549048``. The rule lives in :mod:`custos.core.phones`, where identity resolution reads
#: it too.
phone_digits_key = digits_key


def phone_digits_forms(stored: str) -> tuple[str, ...]:
    """The other stored forms of ``stored`` (a stored phone) with its :func:`phone_digits_key`:
    for an E.164 value, the national values (``+31598549048`` → ``598549048``,
    ``0598549048``); for a national value, its other national spellings and the E.164 value of
    each country whose numbering plan allows those digits (``0598549048`` → …,
    ``+31598549048``, …). What a look-up by a phone tries when no profile holds the number as
    given; found through an index, never by comparing every stored phone."""
    key = phone_digits_key(stored)
    national = [key, "0" + key]
    if len(key) == 10:
        national.append("1" + key)
    forms = list(national)
    if stored[:1] != "+":
        forms += [
            f"+{code}{digits}"
            for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
            for digits in (key, "0" + key)
            if _plausible_e164(f"{code}{digits}")
        ]
    return tuple(f for f in dict.fromkeys(forms) if f != stored and phone_digits_key(f) == key)


def phone_erasure_term(stored: str) -> str:
    """What an erasure keeps (as a keyed hash, like every suppressed identifier) besides a stored
    phone itself, so that the number comes back in no other form: its :func:`phone_digits_key`,
    marked E.164 or national. See :func:`phone_erasure_probes`."""
    mark = "e164" if stored[:1] == "+" else "national"
    return f"{mark}:{phone_digits_key(stored)}"


def phone_erasure_probes(stored: str) -> tuple[str, ...]:
    """The terms (:func:`phone_erasure_term`) a stored phone of a new row is checked against
    besides itself: a national number meets an erased person's number of the same digits in
    either form (its country is unknown: a restriction follows a possible match), an E.164
    number meets erased national numbers of its digits only (never another country's E.164)."""
    key = phone_digits_key(stored)
    if stored[:1] == "+":
        return (f"national:{key}",)
    return (f"national:{key}", f"e164:{key}")


def phone_region(value: Any) -> str | None:
    """A region (ISO 3166 alpha-2) phonenumbers knows, from a code or a country name, or None
    for one it does not know (then a phone's region comes from elsewhere, or stays unknown)."""
    code = country_code(str(value)) if value is not None else None
    return code if code in PHONE_REGIONS else None


#: The regions whose numbering plans phonenumbers knows.
PHONE_REGIONS: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS)


@cache
def _trunk(region: str) -> tuple[str, str] | None:
    """(+country code, national prefix) where the region's numbering plan strips the prefix
    plainly (no carrier codes or transform rules), else None."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
    if meta is None or meta.national_prefix_transform_rule:
        return None
    if meta.national_prefix_for_parsing not in (None, meta.national_prefix):
        return None
    return ("+" + str(meta.country_code), meta.national_prefix or "")


@cache
def _international_prefix(region: str) -> re.Pattern[str]:
    """What dialling abroad starts with in ``region`` (00, 011 …): such numbers need a parse."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
    pattern = meta.international_prefix if meta is not None else None
    return re.compile(pattern or r"\d")  # unknown: every number takes the full parse


def _plausible_e164(digits: str) -> bool:
    """True when ``+digits`` is already canonical E.164 by phonenumbers' own metadata: a known
    calling code followed by a national number of a possible length for it, not starting with
    the national prefix. Everything else goes through a full parse."""
    for size in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size] or 0))
        if regions:
            break
    else:
        return False
    meta = phonenumbers.PhoneMetadata.metadata_for_region(regions[0])
    if meta is None or meta.general_desc is None:
        return False
    national = digits[size:]
    if meta.national_prefix and national.startswith(meta.national_prefix):
        return False
    return len(national) in (meta.general_desc.possible_length or ())


_KNOWN_E164: set[str] = set()  # E.164 strings phonenumbers produced: parsing them is a no-op
MIN_PHONE_DIGITS = 5  # shorter "numbers" are extensions or typos, even where a plan allows them
#: E.164 allows 15 digits with the calling code; a national number with its trunk prefix has no
#: more (longer "numbers" are two numbers run together, or typos).
MAX_NATIONAL_DIGITS = 15
_PHONE_SEPARATORS = str.maketrans("", "", " ()-./\t\u00a0")
_HANDLE = re.compile(r"^[a-z0-9_.]{1,64}$")
_HANDLE_URL = re.compile(r"^(?:https?://)?(?:www\.)?(?:twitter|x|instagram|tiktok)\.com/", re.I)


def social_handle(value: Any) -> str | None:
    """``@handle`` in lower case, from ``Handle``, ``@Handle`` or a profile URL."""
    text = clean(value)
    if text is None:
        return None
    text = _HANDLE_URL.sub("", text).strip("/").lstrip("@").lower()
    if not _HANDLE.match(text):
        raise FieldError("not a social handle", "use letters, digits, _ and . only, e.g. @jane_doe")
    return "@" + text


def identifier(value: Any) -> str | None:
    """An external id (customer number, record id): trimmed, inner spaces removed."""
    if type(value) is int:  # Parquet and JSON ids: the digits are the id, nothing to clean
        return str(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = clean(value)
    return None if text is None else text.replace(" ", "")


def customer_id(value: Any) -> str | None:
    """A customer id as given, compared exactly: ids are opaque and case-sensitive
    (``seg-Case`` and ``seg-case`` are two persons, ``u 1`` is not ``u1``). Only surrounding
    whitespace is trimmed; an empty value or a null token (``null``, ``n/a``) is no id."""
    if type(value) is str:
        text = value.strip()
    elif type(value) is int:  # Parquet and JSON ids: the digits are the id
        return str(value)
    elif isinstance(value, float) and value.is_integer():
        return str(int(value))
    else:
        text = str(value).strip()
    if len(text) < 8 and (not text or (text[0] in _NULL_FIRST and text.lower() in NULL_TOKENS)):
        return None
    return text


#: The first characters of the null tokens, either case (most short ids start otherwise).
_NULL_FIRST = frozenset(c for token in NULL_TOKENS for c in token[:1] + token[:1].upper())


def customer_id_upper(value: Any) -> str | None:
    """A customer id as a map file's ``normalise: upper`` asks: spaces removed and upper-cased,
    so that ``c-001``, ``C 001`` and ``C-001`` written by one source meet."""
    text = identifier(value)
    return None if text is None else text.upper()


# -- dates and timestamps --------------------------------------------------------------------

MONTHS = {
    **{
        m: i
        for i, m in enumerate(
            ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
        )
    },
    **{
        m: i
        for i, m in enumerate(
            ["jan", "feb", "mär", "apr", "mai", "jun", "jul", "aug", "sep", "okt", "nov", "dez"], 1
        )
    },
    "maerz": 3,
    "marz": 3,
    "sept": 9,
}
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]00:00(?::00(?:\.0+)?)?Z?)?$")
_DMY_DOTS = re.compile(r"^(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})$")
_SLASHED = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")
_YMD_SLASH = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DAY_MONTH_NAME = re.compile(r"^(\d{1,2})\.?[\s-]+([^\W\d_]+)\.?,?[\s-]+(\d{4})$")
_MONTH_NAME_DAY = re.compile(r"^([^\W\d_]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$")
DATE_FIX = "write it as YYYY-MM-DD or DD.MM.YYYY, or set date_format in the map file"
AMBIGUOUS_DATE_FIX = (
    "set date_format in the map file (date_format: '%d/%m/%Y' or '%m/%d/%Y'), "
    "or write it as YYYY-MM-DD"
)


def _month(name: str) -> int:
    key = name.lower()
    month = MONTHS.get(key) or MONTHS.get(key[:4]) or MONTHS.get(key[:3])
    if month is None and key.startswith("mä"):
        month = 3
    if month is None:
        raise FieldError("unknown month name", DATE_FIX)
    return month


def _make_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise FieldError("no such calendar day", DATE_FIX) from exc


def parse_date(value: Any, date_format: str | None = None) -> date | None:
    """A calendar date from ISO, ``DD.MM.YYYY``, unambiguous slashed forms or month names."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = clean(value)
    if text is None:
        return None
    if date_format:
        try:
            return datetime.strptime(text, date_format).date()
        except ValueError as exc:
            raise FieldError(f"does not match date_format {date_format}", DATE_FIX) from exc
    if m := _ISO_DATE.match(text) or _YMD_SLASH.match(text) or _COMPACT.match(text):
        return _make_date(int(m[1]), int(m[2]), int(m[3]))
    if m := _DMY_DOTS.match(text):
        return _make_date(int(m[3]), int(m[2]), int(m[1]))
    if m := _SLASHED.match(text):
        first, second = int(m[1]), int(m[2])
        if first > 12 >= second:
            return _make_date(int(m[3]), second, first)
        if second > 12 >= first:
            return _make_date(int(m[3]), first, second)
        if first == second:
            return _make_date(int(m[3]), first, second)
        year = int(m[3])
        raise AmbiguousDate(
            (_make_date(year, second, first), _make_date(year, first, second)),
            "ambiguous date (day/month or month/day?)",
            AMBIGUOUS_DATE_FIX,
        )
    if m := _DAY_MONTH_NAME.match(text):
        return _make_date(int(m[3]), _month(m[2]), int(m[1]))
    if m := _MONTH_NAME_DAY.match(text):
        return _make_date(int(m[3]), _month(m[1]), int(m[2]))
    raise FieldError("not a date", DATE_FIX)


def date_of_birth(
    value: Any, date_format: str | None = None, today: date | None = None
) -> str | None:
    """An ISO date of birth; rejects dates in the future or before 1900.

    A date that reads two ways (``03/04/1982`` without a ``date_format``) is never guessed: it
    raises :class:`AmbiguousDate` with both ISO readings, the day/month one first
    (``("1982-04-03", "1982-03-04")``). A reading outside 1900 … today is no reading: when one
    remains, it is the date.
    """
    if type(value) is str and today is None:
        found = _cached_date_of_birth(value, date_format)
    else:
        found = _date_of_birth(value, date_format, today)
    if isinstance(found, tuple):
        raise AmbiguousDate(found, "ambiguous date (day/month or month/day?)", AMBIGUOUS_DATE_FIX)
    return found


@lru_cache(maxsize=100_000)
def _cached_date_of_birth(value: str, date_format: str | None) -> str | tuple[str, str] | None:
    # Birth dates repeat a lot: a few tens of thousands of days cover everyone. Both readings
    # of an ambiguous one are remembered too (an error would be parsed again each time).
    return _date_of_birth(value, date_format, None)


def _date_of_birth(
    value: Any, date_format: str | None, today: date | None
) -> str | tuple[str, str] | None:
    """The ISO date of birth, or both readings of an ambiguous one (see :func:`date_of_birth`)."""
    today = today or date.today()
    try:
        born = parse_date(value, date_format)
    except AmbiguousDate as exc:
        readings = [d for d in exc.readings if isinstance(d, date) and _born_in_range(d, today)]
        if len(readings) == 2:
            return (readings[0].isoformat(), readings[1].isoformat())
        if not readings:
            raise _out_of_range() from None
        born = readings[0]
    if born is None:
        return None
    if not _born_in_range(born, today):
        raise _out_of_range()
    return born.isoformat()


def _out_of_range() -> FieldError:
    return FieldError(
        "date of birth out of range (future or before 1900)", DATE_FIX, implausible=True
    )


def _born_in_range(born: date, today: date) -> bool:
    return born.year >= 1900 and born <= today


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: Any) -> datetime | None:
    """An aware UTC timestamp from ISO 8601, ``DD.MM.YYYY HH:MM``, a date, or epoch (s or ms)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value
        try:
            return _EPOCH + timedelta(seconds=seconds)
        except (OverflowError, ValueError) as exc:  # centuries away, or not a number (nan)
            raise FieldError(
                "not a timestamp", "write it as ISO 8601, e.g. 2026-03-01T14:05:00Z"
            ) from exc
    text = clean(value)
    if text is None:
        return None
    if text.isdigit() and len(text) in (10, 13):
        return timestamp(int(text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _dotted_timestamp(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _dotted_timestamp(text: str) -> datetime:
    day, _, clock = text.partition(" ")
    on = parse_date(day)
    assert on is not None
    try:
        hours, minutes, *seconds = (int(p) for p in clock.split(":")) if clock else (0, 0)
        return datetime(on.year, on.month, on.day, hours, minutes, seconds[0] if seconds else 0)
    except ValueError as exc:
        raise FieldError(
            "not a timestamp", "write it as ISO 8601, e.g. 2026-03-01T14:05:00Z"
        ) from exc


# -- addresses -------------------------------------------------------------------------------

_STREET_WORDS = re.compile(
    r"(?P<str>stra(?:ss|ß)e|straat|str\.?)(?=\s|\d|$)|\b(?P<st>street|st\.(?=\s|$))"
    r"|\b(?P<rd>road\b|rd\.)|\b(?P<ave>avenue\b|ave\.)|\b(?P<pl>platz)\b"
)
_KEY_TOKENS = re.compile(r"[a-z]+|[0-9]+")

#: The form of :func:`street_key`: stored keys of another form are made again (the service
#: re-keys a store before it resolves). 2: street types and German transliteration folded;
#: 3: French ``r.`` (rue) and Spanish ``Pza.``, ``Pso.`` folded too; 4: British ``Gr``, ``Cl``
#: and Dutch ``straat``, ``laan`` too.
STREET_KEY_VERSION = "4"

#: Street types abbreviated, as the word they abbreviate: the standard abbreviations of USPS
#: Publication 28 (appendix C1; a work of the US government, public domain), the British ones it
#: lacks and the usual French and Spanish ones (``bd``, ``ch``, ``imp``, ``r.``; ``C/``, ``Avda.``,
#: ``Pza.``).
#: ``84 Knapp Lane`` and ``84 Knapp Ln`` are one address: twins of one household must meet at
#: it, or their near names (Alexander and Alexandra) are not read as two persons. The words
#: stay whole (a typo in ``Wylly Plac`` still finds ``Wylly Place``); street, road and avenue
#: keep the short forms their keys always had (``st``, ``rd``, ``ave``).
STREET_TYPES = {
    **dict.fromkeys(("av", "avenida", "avda"), "ave"),
    **dict.fromkeys(("blvd", "bd", "boul"), "boulevard"),
    "apt": "apartment",
    "c": "calle",
    "ch": "chemin",
    "cir": "circle",
    "cl": "close",
    "cres": "crescent",
    "ct": "court",
    "dr": "drive",
    "expy": "expressway",
    "ext": "extension",
    "fwy": "freeway",
    "gdns": "gardens",
    **dict.fromkeys(("gr", "grv"), "grove"),
    "hts": "heights",
    "hwy": "highway",
    "imp": "impasse",
    **dict.fromkeys(("ln", "laan"), "lane"),  # (Dutch laan, written as a word of its own)
    "mt": "mount",
    "pkwy": "parkway",
    "pl": "place",
    "pso": "paseo",
    "pza": "plaza",
    "pt": "point",
    "r": "ru",  # French "r." for rue (whose "ue" folds as German transliteration does)
    "sq": "square",
    "ste": "suite",
    "streets": "sts",
    "ter": "terrace",
    "tpke": "turnpike",
    "trl": "trail",
}


def _street_word(match: re.Match[str]) -> str:
    return match.lastgroup or ""


def street_key(street: str) -> str:
    """Comparison form of a street: ``Hauptstraße 5``, ``Hauptstr. 5`` → ``hauptstr 5``;
    ``84 Knapp Lane``, ``84 Knapp Ln.`` → ``84 knapp lane`` (see :data:`STREET_TYPES`);
    umlauts and their transliteration as :func:`name_key` folds them (``Hövelgasse 85``,
    ``Hoevelgasse 85`` → ``hovelgasse 85``)."""
    key = street.lower()
    # Every street word contains one of these: most streets hold none, and the substring tests
    # cost a fraction of scanning the string with the pattern (which then could not match).
    if (
        "str" in key
        or "st." in key
        or "road" in key
        or "rd." in key
        or "ave" in key
        or "platz" in key
    ):
        key = _STREET_WORDS.sub(_street_word, key)
    if not key.isascii():
        key = anyascii(key)
    if "e" in key:  # (Hoevelgasse is Hövelgasse)
        key = _fold_digraphs(key)
    types = STREET_TYPES
    return " ".join([types.get(token, token) for token in _KEY_TOKENS.findall(key)])


def postcode(value: Any) -> str | None:
    """Postcode, upper-cased with single spaces (``sw1a 1aa`` → ``SW1A 1AA``)."""
    if isinstance(value, int):
        value = str(value)
    text = clean(value)
    return None if text is None else text.upper()


def country(value: Any) -> str | None:
    """ISO 3166 alpha-2 code from a code or an English or German country name."""
    if type(value) is str and len(value) == 2 and value.isupper():
        code = country_code(value)
        if code is not None:
            return code
    text = clean(value)
    if text is None:
        return None
    code = country_code(text)
    if code is None:
        raise FieldError("unknown country", "use an ISO code (DE, GB, US) or an English name")
    return code


_LANGUAGES = {"english": "en", "englisch": "en", "german": "de", "deutsch": "de", "eng": "en"}


def language(value: Any) -> str | None:
    """ISO 639-1 language code in lower case (``English`` → ``en``, ``de-DE`` → ``de``)."""
    text = clean(value)
    if text is None:
        return None
    key = text.lower()
    return _LANGUAGES.get(key, key.split("-")[0].split("_")[0])


def clear_caches() -> None:
    """Empty the caches of normal forms (names, phone numbers, birth dates)."""
    for cached in (name_key, display_name, _e164, _cached_date_of_birth):
        cached.cache_clear()
