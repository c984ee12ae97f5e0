"""Cities, postcodes and telephone numbers for the synthetic generators.

The city tables hold real city names with their real dialling codes and postcode
ranges, so that a synthetic person's phone number, postcode and city agree with
each other. Subscriber numbers are random; nothing here describes a real person.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "CITIES",
    "City",
    "Phone",
    "format_phone",
    "make_phone",
    "make_postcode",
]

_GB_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True, slots=True)
class City:
    """A city with the data needed to make consistent addresses and phones."""

    country: str  # ISO 3166-1 alpha-2
    name: str
    weight: float
    area_codes: tuple[str, ...]  # without trunk prefix
    subscriber_len: tuple[int, ...]  # allowed subscriber lengths
    first_digits: str  # allowed first digits of the subscriber number
    postcodes: tuple[str, ...]  # DE: "lo-hi" ranges, GB: outward codes, US: ZIP prefixes


def _de(name: str, weight: float, area: str, lengths: tuple[int, ...], plz: str) -> City:
    return City("DE", name, weight, (area,), lengths, "23456789", (plz,))


def _gb(name: str, weight: float, area: str, first: str, outward: str) -> City:
    length = (8,) if len(area) == 2 else (7,)
    return City("GB", name, weight, (area,), length, first, tuple(outward.split()))


def _us(name: str, weight: float, areas: str, zips: str) -> City:
    return City("US", name, weight, tuple(areas.split()), (7,), "23456789", tuple(zips.split()))


CITIES: dict[str, tuple[City, ...]] = {
    "DE": (
        _de("Berlin", 37, "30", (7, 8), "10115-14199"),
        _de("Hamburg", 18, "40", (7, 8), "20095-22769"),
        _de("München", 15, "89", (7, 8), "80331-81929"),
        _de("Köln", 11, "221", (6, 7), "50667-51149"),
        _de("Frankfurt am Main", 7.5, "69", (7, 8), "60306-60599"),
        _de("Stuttgart", 6.3, "711", (6, 7), "70173-70629"),
        _de("Düsseldorf", 6.2, "211", (6, 7), "40210-40629"),
        _de("Leipzig", 6, "341", (6, 7), "04103-04357"),
        _de("Dortmund", 5.9, "231", (6, 7), "44135-44388"),
        _de("Essen", 5.8, "201", (6, 7), "45127-45359"),
        _de("Bremen", 5.7, "421", (6, 7), "28195-28779"),
        _de("Dresden", 5.6, "351", (6, 7), "01067-01328"),
        _de("Hannover", 5.4, "511", (6, 7), "30159-30669"),
        _de("Nürnberg", 5.2, "911", (6, 7), "90402-90491"),
        _de("Duisburg", 5, "203", (6, 7), "47051-47279"),
        _de("Bochum", 3.6, "234", (6, 7), "44787-44894"),
        _de("Wuppertal", 3.6, "202", (6, 7), "42103-42399"),
        _de("Bielefeld", 3.3, "521", (6, 7), "33602-33739"),
        _de("Bonn", 3.3, "228", (6, 7), "53111-53229"),
        _de("Münster", 3.2, "251", (6, 7), "48143-48167"),
        _de("Mannheim", 3.1, "621", (6, 7), "68159-68309"),
        _de("Karlsruhe", 3.1, "721", (6, 7), "76131-76229"),
        _de("Augsburg", 3, "821", (6, 7), "86150-86199"),
        _de("Wiesbaden", 2.8, "611", (6, 7), "65183-65207"),
        _de("Kiel", 2.5, "431", (6, 7), "24103-24159"),
        _de("Freiburg im Breisgau", 2.3, "761", (6, 7), "79098-79117"),
        _de("Mainz", 2.2, "6131", (5, 6), "55116-55131"),
        _de("Rostock", 2.1, "381", (6, 7), "18055-18147"),
        _de("Erfurt", 2.1, "361", (6, 7), "99084-99099"),
        _de("Saarbrücken", 1.8, "681", (6, 7), "66111-66133"),
        _de("Potsdam", 1.8, "331", (6, 7), "14467-14482"),
        _de("Heidelberg", 1.6, "6221", (5, 6), "69115-69126"),
        _de("Regensburg", 1.5, "941", (6, 7), "93047-93059"),
        _de("Würzburg", 1.3, "931", (6, 7), "97070-97084"),
        _de("Göttingen", 1.2, "551", (6, 7), "37073-37085"),
        _de("Lüneburg", 0.8, "4131", (5, 6), "21335-21339"),
    ),
    "GB": (
        _gb("London", 40, "20", "378", "E1 E2 E14 N1 N7 N16 NW1 NW3 SE1 SE10 SE15 SW4 SW11 W2 W11"),
        _gb("Birmingham", 6, "121", "234567", "B1 B5 B13 B15 B29"),
        _gb("Manchester", 6, "161", "23456789", "M1 M4 M14 M20 M21"),
        _gb("Leeds", 4, "113", "2345", "LS1 LS6 LS8 LS17"),
        _gb("Glasgow", 4, "141", "23456789", "G1 G3 G12 G41"),
        _gb("Liverpool", 3.5, "151", "23456789", "L1 L8 L15 L18"),
        _gb("Edinburgh", 3.5, "131", "2345678", "EH1 EH3 EH6 EH10"),
        _gb("Bristol", 3, "117", "234", "BS1 BS6 BS7 BS8"),
        _gb("Sheffield", 3, "114", "234", "S1 S10 S11"),
        _gb("Cardiff", 2.5, "29", "2", "CF10 CF11 CF14 CF24"),
        _gb("Newcastle upon Tyne", 2.5, "191", "23456789", "NE1 NE2 NE6"),
        _gb("Nottingham", 2.5, "115", "26789", "NG1 NG5 NG7"),
        _gb("Leicester", 2, "116", "234", "LE1 LE2 LE3"),
        _gb("Belfast", 2, "28", "9", "BT1 BT7 BT9"),
    ),
    "US": (
        _us("New York", 20, "212 646 718 917", "100 101 102 112 113"),
        _us("Los Angeles", 10, "213 310 323 818", "900"),
        _us("Chicago", 7, "312 773", "606"),
        _us("Houston", 6, "713 281 832", "770"),
        _us("Phoenix", 4, "602 480", "850"),
        _us("Philadelphia", 4, "215 267", "191"),
        _us("San Antonio", 3, "210", "782"),
        _us("San Diego", 3, "619 858", "921"),
        _us("Dallas", 3, "214 469 972", "752"),
        _us("Austin", 3, "512 737", "787"),
        _us("Seattle", 3, "206", "981"),
        _us("Boston", 3, "617 857", "021"),
        _us("Denver", 2.5, "303 720", "802"),
        _us("Atlanta", 2.5, "404 678", "303"),
        _us("Miami", 2.5, "305 786", "331"),
        _us("Portland", 2, "503 971", "972"),
        _us("Minneapolis", 2, "612", "554"),
    ),
}

_CALLING_CODE = {"DE": "49", "GB": "44", "US": "1"}
_DE_MOBILE = (
    ("151", 8),
    ("152", 8),
    ("157", 8),
    ("159", 8),
    ("160", 7),
    ("162", 7),
    ("163", 7),
    ("170", 7),
    ("171", 7),
    ("172", 7),
    ("173", 7),
    ("174", 7),
    ("175", 7),
    ("176", 8),
    ("177", 7),
    ("178", 7),
    ("179", 7),
)
_GB_MOBILE = tuple(
    f"7{a}{b}{c}"
    for a in "45789"
    for b in "0123456789"
    for c in "0123456789"
    if not f"{a}{b}".startswith(("70", "91"))
    # ranges used by the Channel Islands and the Isle of Man, not the UK itself
    and f"{a}{b}{c}" not in ("457", "509", "524", "781", "797", "829", "839", "937")
)


@dataclass(frozen=True, slots=True)
class Phone:
    """A telephone number split into calling code, area code and subscriber part."""

    country: str
    area: str  # national destination code without trunk "0"
    subscriber: str
    mobile: bool

    @property
    def calling_code(self) -> str:
        """The country calling code without "+"."""
        return _CALLING_CODE[self.country]

    @property
    def e164(self) -> str:
        """The number in E.164 form, e.g. "+49301234567"."""
        return f"+{self.calling_code}{self.area}{self.subscriber}"


def _digits(rng: random.Random, first: str, length: int) -> str:
    rest = rng.randrange(10 ** (length - 1))
    return f"{rng.choice(first)}{rest:0{length - 1}d}"


def make_phone(rng: random.Random, city: City, *, mobile: bool) -> Phone:
    """Draw a plausible (libphonenumber-valid) number for someone living in city."""
    country = city.country
    if country == "DE" and mobile:
        area, length = rng.choice(_DE_MOBILE)
        return Phone("DE", area, _digits(rng, "23456789", length), True)
    if country == "GB" and mobile:
        prefix = rng.choice(_GB_MOBILE)
        return Phone("GB", prefix, _digits(rng, "0123456789", 6), True)
    if country == "US":
        area = rng.choice(city.area_codes)
        exchange = "555"
        while exchange == "555" or exchange[1:] == "11":
            exchange = _digits(rng, "23456789", 3)
        return Phone("US", area, exchange + f"{rng.randrange(10000):04d}", mobile)
    length = rng.choice(city.subscriber_len)
    return Phone(country, city.area_codes[0], _digits(rng, city.first_digits, length), False)


def make_postcode(rng: random.Random, city: City) -> str:
    """Draw a postcode that fits the city."""
    pick = rng.choice(city.postcodes)
    if city.country == "DE":
        lo, hi = pick.split("-")
        return f"{rng.randint(int(lo), int(hi)):05d}"
    if city.country == "GB":
        return f"{pick} {rng.randint(1, 9)}{rng.choice(_GB_LETTERS)}{rng.choice(_GB_LETTERS)}"
    return f"{pick}{rng.randrange(100):02d}"


def _group(s: str, sizes: tuple[int, ...]) -> str:
    parts: list[str] = []
    i = 0
    for size in sizes:
        if i >= len(s):
            break
        parts.append(s[i : i + size])
        i += size
    if i < len(s):
        parts[-1] += s[i:]
    return " ".join(parts)


def _pairs(s: str) -> str:
    """Group digits the German way: "1234567" -> "123 45 67"."""
    head = 3 if len(s) % 2 else 2
    rest = s[head:]
    return " ".join([s[:head], *(rest[i : i + 2] for i in range(0, len(rest), 2))])


def _gb_sub(p: Phone) -> str:
    if len(p.area) == 2:  # 020 7946 0123
        return _group(p.subscriber, (4, 4))
    if len(p.area) == 4:  # 07911 123456: area here is the mobile prefix
        return p.subscriber
    return _group(p.subscriber, (3, 4))  # 0161 496 0123


def format_phone(p: Phone, style: int = 0, *, international: bool = False) -> str:
    """Format a phone number; style 0 is the usual form, higher styles are variants."""
    cc, a, s = p.calling_code, p.area, p.subscriber
    if p.country == "US":
        x, y = s[:3], s[3:]
        if international:
            return (
                f"+1 {a} {x} {y}",
                f"+1 ({a}) {x}-{y}",
                f"+1-{a}-{x}-{y}",
                f"+1{a}{s}",
            )[style % 4]
        return (f"({a}) {x}-{y}", f"{a}-{x}-{y}", f"{a}.{x}.{y}", f"{a}{s}")[style % 4]
    if p.country == "GB":
        sub = _gb_sub(p)
        if international:
            return (
                f"+{cc} {a} {sub}",
                f"+{cc} (0){a} {sub}",
                f"00{cc} {a} {sub}",
                f"+{cc}{a}{s}",
            )[style % 4]
        return (f"0{a} {sub}", f"(0{a}) {sub}", f"0{a}{s}", f"0{a}-{s}")[style % 4]
    if international:
        return (
            f"+{cc} {a} {s}",
            f"00{cc} {a} {s}",
            f"+{cc} (0){a} {s}",
            f"+{cc}{a}{s}",
        )[style % 4]
    return (f"0{a} {s}", f"(0{a}) {_pairs(s)}", f"0{a}/{s}", f"0{a}-{s}")[style % 4]
