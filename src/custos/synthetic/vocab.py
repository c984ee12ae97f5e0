"""Vocabularies drawn once from Faker, plus the small string mutations used for messy data.

Faker is called a few thousand times per locale to fill name and street lists; the
generators then sample from those lists with :class:`random.Random`, which is far
faster than calling Faker per record and stays deterministic for a given seed and
Faker version.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from faker import Faker

from custos.synthetic.geo import CITIES, City

__all__ = [
    "COUNTRIES",
    "Vocab",
    "ascii_fold",
    "load_vocab",
    "street_variant",
    "typo",
    "weighted",
]

T = TypeVar("T")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


COUNTRIES: tuple[tuple[str, str, float], ...] = (
    ("DE", "de_DE", 0.70),
    ("GB", "en_GB", 0.20),
    ("US", "en_US", 0.10),
)

_DOMAINS: dict[str, tuple[tuple[str, float], ...]] = {
    "DE": (
        ("gmx.de", 22),
        ("web.de", 20),
        ("gmail.com", 22),
        ("t-online.de", 12),
        ("outlook.com", 8),
        ("yahoo.de", 5),
        ("posteo.de", 4),
        ("freenet.de", 4),
        ("gmx.net", 3),
    ),
    "GB": (
        ("gmail.com", 35),
        ("outlook.com", 15),
        ("hotmail.co.uk", 15),
        ("btinternet.com", 10),
        ("yahoo.co.uk", 10),
        ("sky.com", 8),
        ("icloud.com", 7),
    ),
    "US": (
        ("gmail.com", 40),
        ("yahoo.com", 18),
        ("outlook.com", 12),
        ("icloud.com", 12),
        ("hotmail.com", 10),
        ("aol.com", 8),
    ),
}

_DE_STREET_BASES = _words(
    "Haupt Bahnhof Schul Garten Dorf Berg Kirch Linden Wald Ring Goethe Schiller Mozart "
    "Friedhof Feld Wiesen Sonnen Rosen Birken Post Markt Mühlen Burg Park Industrie Brunnen "
    "Bach Blumen Lessing Beethoven Uhland Friedrich Wilhelm Kaiser Königs Luisen"
)
_DE_WEGE = _words("Amsel Birken Eichen Finken Lerchen Drossel Tannen Buchen Ahorn Meisen")
_EN_STREET_BASES = _words(
    "Church Station Park Victoria Mill High King Queen Manor Green School Grange Orchard "
    "Meadow Main Oak Maple Pine Cedar Elm Washington Lake Hill Sunset Lincoln Highland "
    "Madison Chestnut Willow"
)
_STREET_SUFFIX: dict[str, tuple[tuple[str, str], ...]] = {
    "GB": (
        ("Road", "Rd"),
        ("Street", "St"),
        ("Lane", "Ln"),
        ("Avenue", "Ave"),
        ("Close", "Cl"),
        ("Drive", "Dr"),
        ("Crescent", "Cres"),
        ("Grove", "Gr"),
        ("Gardens", "Gdns"),
        ("Terrace", "Ter"),
    ),
    "US": (
        ("Street", "St"),
        ("Avenue", "Ave"),
        ("Road", "Rd"),
        ("Boulevard", "Blvd"),
        ("Drive", "Dr"),
        ("Lane", "Ln"),
        ("Court", "Ct"),
        ("Place", "Pl"),
    ),
}
_DE_COMMON_LAST = _words(
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch "
    "Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann "
    "Hartmann Lange Schmitt Werner Schmitz Krause Meier Lehmann Köhler Weiß Jung Hahn Vogel"
)
_HANDLE_WORDS = _words(
    "sunny coffee tiger wolke kaffee blume stern katze fussball runner reader gamer "
    "bookworm traveller foodie coder pixel jazz rocket maple berlin hiker cyclist"
)

_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_NEIGHBOURS = {
    "a": "sq",
    "b": "vn",
    "c": "xv",
    "d": "sf",
    "e": "wr",
    "f": "dg",
    "g": "fh",
    "h": "gj",
    "i": "uo",
    "k": "jl",
    "l": "k",
    "m": "n",
    "n": "bm",
    "o": "ip",
    "r": "et",
    "s": "ad",
    "t": "rz",
    "u": "zi",
}


@dataclass(frozen=True, slots=True)
class Vocab:
    """Sampling lists for one country."""

    country: str
    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    streets: tuple[str, ...]
    cities: tuple[City, ...]
    city_cum: tuple[float, ...]
    domains: tuple[str, ...]
    domain_cum: tuple[float, ...]
    handle_words: tuple[str, ...]


def _cum(weights: list[float]) -> tuple[float, ...]:
    total = sum(weights)
    acc = 0.0
    out: list[float] = []
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return tuple(out)


def weighted(rng: random.Random, items: tuple[T, ...], cum: tuple[float, ...]) -> T:
    """Pick from items using precomputed cumulative weights (fast, no bisect import)."""
    r = rng.random()
    for item, c in zip(items, cum, strict=True):
        if r < c:
            return item
    return items[-1]


def _plain(name: str) -> bool:
    """Drop Faker oddities such as "Koch II", "Hans-H." or "auch Schlauchin"."""
    return "." not in name and name[:1].isupper() and not name.endswith((" II", " van"))


def _streets(fake: Faker, country: str, rng: random.Random) -> tuple[str, ...]:
    out: list[str] = []
    if country == "DE":
        for _ in range(500):
            name = str(fake.street_name())
            if name.endswith("str."):
                name = name[:-4] + "straße"
            out.append(name)
        out += [f"{b}straße" for b in _DE_STREET_BASES] * 4
        out += [f"{b}weg" for b in _DE_WEGE] * 3
        out += ["Am Markt", "Am Bahnhof", "Im Winkel", "An der Kirche"]
        return tuple(out)
    suffixes = [s for s, _ in _STREET_SUFFIX[country]]
    bases = [str(fake.last_name()) for _ in range(300)] + list(_EN_STREET_BASES) * 5
    for base in bases:
        out.append(f"{base} {rng.choice(suffixes)}")
    return tuple(out)


@lru_cache(maxsize=8)
def load_vocab(seed: int) -> dict[str, Vocab]:
    """Draw the per-country vocabularies from Faker seeded with seed (cached)."""
    rng = random.Random(seed ^ 0x5EED)
    out: dict[str, Vocab] = {}
    for country, locale, _ in COUNTRIES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        female = [str(fake.first_name_female()) for _ in range(1200)]
        male = [str(fake.first_name_male()) for _ in range(1200)]
        last = [name for name in (str(fake.last_name()) for _ in range(2000)) if _plain(name)]
        if country == "DE":  # Faker's de_DE list is flat; real German surnames are not
            last += _DE_COMMON_LAST * 15
        female = [name for name in female if _plain(name)]
        male = [name for name in male if _plain(name)]
        streets = _streets(fake, country, rng)
        cities = CITIES[country]
        domains = _DOMAINS[country]
        out[country] = Vocab(
            country=country,
            female=tuple(female),
            male=tuple(male),
            last=tuple(last),
            streets=streets,
            cities=cities,
            city_cum=_cum([c.weight for c in cities]),
            domains=tuple(d for d, _ in domains),
            domain_cum=_cum([w for _, w in domains]),
            handle_words=tuple(_HANDLE_WORDS),
        )
    return out


def ascii_fold(s: str) -> str:
    """Transliterate umlauts (ü -> ue, ß -> ss) and strip other accents."""
    s = s.translate(_FOLD)
    if s.isascii():
        return s
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


def typo(s: str, rng: random.Random) -> str:
    """Introduce one realistic keyboard typo (swap, drop, double or neighbour key)."""
    if len(s) < 4:
        return s + s[-1] if s else s
    i = rng.randrange(1, len(s) - 1)
    op = rng.randrange(4)
    if op == 0:
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    if op == 1:
        return s[:i] + s[i + 1 :]
    if op == 2:
        return s[:i] + s[i] + s[i:]
    near = _NEIGHBOURS.get(s[i].lower())
    if not near:
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    return s[:i] + rng.choice(near) + s[i + 1 :]


def street_variant(street: str, country: str, rng: random.Random) -> str:
    """Return an abbreviated or otherwise re-spelled variant of a street name."""
    if country == "DE":
        for long, short in (("straße", "str."), ("Straße", "Str.")):
            if street.endswith(long):
                return street[: -len(long)] + rng.choice((short, short, long.replace("ß", "ss")))
        return ascii_fold(street) if rng.random() < 0.5 else street
    for long, short in _STREET_SUFFIX[country]:
        if street.endswith(" " + long):
            return street[: -len(long)] + rng.choice((short, short + "."))
    return street
