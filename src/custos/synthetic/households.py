"""Synthetic households: people who share an address and a landline, written into several silos.

The hard cases of identity resolution live in households: twins with one birth date, a father
and a son of one name, couples with one surname and one family e-mail, flatmates who share a
flat, a landline and sometimes a birthday. :func:`generate_households` writes such households
into four silos the way real systems hold them (a CRM CSV with German headers and a country
column, a web-shop JSON Lines export with nested objects, a German loyalty-card Parquet file
without a country column, a postal catalogue list), with nicknames, typos, initials, national
phone numbers and missing fields, and ``truth.csv`` / ``persons.csv`` with the true persons.

The helpers here (:class:`HouseholdBuilder`, :func:`name_variant`, :func:`phone_text`, …) are
shared with :mod:`custos.synthetic.multisilo`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from custos.synthetic.geo import City, Phone, format_phone, make_phone
from custos.synthetic.people import Address, PersonFactory
from custos.synthetic.vocab import Vocab, ascii_fold, street_variant, typo
from custos.synthetic.world import SiloFile, start, write_csv, write_map, write_truth

__all__ = [
    "HOUSEHOLD_KINDS",
    "HouseholdBuilder",
    "HouseholdManifest",
    "Individual",
    "birth_date_text",
    "generate_households",
    "language_of",
    "name_variant",
    "phone_text",
    "write_jsonl",
    "write_persons",
]

HOUSEHOLD_KINDS = (
    "single",
    "family",
    "twins",
    "couple",
    "couple_two_names",
    "father_son",
    "flatmates",
)
_KIND_WEIGHTS = (22, 16, 16, 12, 8, 12, 14)
_COUNTRY_WEIGHTS = {"DE": 55, "GB": 20, "US": 25}
_TODAY = date(2026, 6, 30)


def language_of(country: str) -> str:
    """The name vocabulary used for nicknames and twin names: de, en, nl or fr."""
    if country in ("DE", "AT", "CH"):
        return "de"
    return {"NL": "nl", "FR": "fr"}.get(country, "en")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _table(text: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for entry in text.split(";"):
        name, _, short = entry.strip().partition(":")
        out[name] = tuple(short.split())
    return out


#: Formal first name → the short forms people use for themselves (in shops, on the phone).
NICKNAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": _table(
        "William:Bill Will Billy; Robert:Bob Rob Bobby; Elizabeth:Liz Beth Lizzie; "
        "Richard:Rick Dick Rich; James:Jim Jimmy Jamie; Margaret:Maggie Peggy Meg; "
        "Katherine:Kate Kathy Katie; Thomas:Tom Tommy; Michael:Mike Mick; Jennifer:Jen Jenny; "
        "Joseph:Joe Joey; Christopher:Chris; Alexander:Alex; Daniel:Dan Danny; Anthony:Tony; "
        "Edward:Ed Ted Eddie; Patricia:Pat Trish; Susan:Sue Susie; Deborah:Debbie Deb; "
        "Rebecca:Becky; Victoria:Vicky Tori; Samuel:Sam; Benjamin:Ben; Andrew:Andy Drew; "
        "Matthew:Matt; Nicholas:Nick; Jonathan:Jon; Charles:Charlie Chuck; Steven:Steve; "
        "Timothy:Tim; Jessica:Jess; Samantha:Sam; Abigail:Abby; Frederick:Fred Freddie"
    ),
    "de": _table(
        "Johannes:Hans Johann Jo; Josef:Sepp Joe; Friedrich:Fritz; Katharina:Kathi Katja Kati; "
        "Elisabeth:Lisa Elli Liesel; Margarete:Grete; Wolfgang:Wolf; Andreas:Andi; "
        "Stefanie:Steffi; Franziska:Franzi; Susanne:Susi; Barbara:Babsi Bärbel; "
        "Maximilian:Max; Gabriele:Gabi; Christine:Tine; Heinrich:Heinz; Bernhard:Bernd; "
        "Wilhelm:Willi; Magdalena:Lena; Matthias:Matze; Christoph:Chris; Alexandra:Alex; "
        "Michael:Micha; Thomas:Tom; Alexander:Alex; Daniela:Dani; "
        "Christian:Chris; Nikolaus:Klaus; Theresa:Resi; Ulrich:Uli; Rudolf:Rudi"
    ),
    "nl": _table(
        "Johannes:Jan Hans; Cornelis:Kees; Wilhelmina:Mien; Hendrik:Henk; Pieter:Piet; "
        "Jacobus:Koos; Gerardus:Gerard; Catharina:Karin; Willem:Wim; Johanna:Anneke"
    ),
    "fr": _table(
        "Frédéric:Fred; Alexandre:Alex; Nicolas:Nico; Dominique:Dom; Christophe:Chris; "
        "Catherine:Cathy; Isabelle:Isa; Stéphanie:Steph; Guillaume:Guillou; Mathieu:Matt"
    ),
}
_FEMALE_FORMAL = frozenset(
    _words(
        "Elizabeth Margaret Katherine Jennifer Patricia Susan Deborah Rebecca Victoria Jessica "
        "Samantha Abigail Katharina Elisabeth Margarete Stefanie Franziska Susanne Barbara "
        "Gabriele Christine Magdalena Alexandra Daniela Theresa Wilhelmina Catharina Johanna "
        "Catherine Isabelle Stéphanie"
    )
)


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((a, b) for a, _, b in (p.partition("/") for p in text.split()))


#: Boy/girl twins with near names (first: male, second: female).
NEAR_TWINS: dict[str, tuple[tuple[str, str], ...]] = {
    "de": _pairs(
        "Paul/Paula Jan/Jana Daniel/Daniela Christian/Christiane Michael/Michaela "
        "Simon/Simone Julian/Juliane Carl/Carla Alexander/Alexandra Stefan/Stefanie "
        "Andreas/Andrea Karl/Karla Gabriel/Gabriele Mario/Maria"
    ),
    "en": _pairs(
        "Paul/Paula Daniel/Danielle Christian/Christina Alexander/Alexandra Robert/Roberta "
        "Eric/Erica Louis/Louise Joseph/Josephine Julian/Julia Nicholas/Nicole "
        "Stephen/Stephanie Patrick/Patricia Francis/Frances Jesse/Jessie"
    ),
    "nl": _pairs("Johan/Johanna Daniël/Daniëlle Paul/Paula Jan/Jana"),
    "fr": _pairs("Jean/Jeanne Louis/Louise Daniel/Danielle Michel/Michelle Denis/Denise"),
}
#: Same-sex twins with unrelated names, as many parents choose them.
OTHER_TWINS: dict[str, tuple[tuple[str, str], ...]] = {
    "de": _pairs("Max/Moritz Hanna/Anna Lukas/Jonas Emma/Mia Felix/Leon Lena/Sophie"),
    "en": _pairs("Oliver/Harry Fred/George Amelia/Isla Jack/Noah Lily/Grace Ethan/Mason"),
    "nl": _pairs("Sem/Lucas Julia/Tess"),
    "fr": _pairs("Hugo/Louis Léa/Chloé"),
}
#: First names a father often passes on to his son.
FATHER_NAMES: dict[str, tuple[str, ...]] = {
    "de": _words("Thomas Michael Peter Klaus Stefan Wolfgang Jürgen Hans Frank Andreas"),
    "en": _words("John Robert William James Richard David Charles Thomas Michael George"),
    "nl": _words("Jan Pieter Hendrik Willem"),
    "fr": _words("Jean Pierre Michel Philippe"),
}
_SUFFIXES = {"de": ("jun.", "junior", "jr."), "en": ("Jr.", "Jr", "Junior")}
_SENIOR = {"de": ("sen.", "senior"), "en": ("Sr.", "Sr", "Senior")}


@dataclass(frozen=True, slots=True)
class Individual:
    """One true person of a household, with what the silos may know about them."""

    pid: str
    household: str
    kind: str  # the household's kind, one of HOUSEHOLD_KINDS
    role: str  # single | parent | child | twin | spouse | father | son | flatmate
    country: str
    gender: str  # "f" | "m"
    first_name: str
    last_name: str
    dob: date
    address: Address
    landline: Phone  # shared by the household
    mobile: Phone | None  # personal, when the person has one
    email: str | None  # personal, when the person has one
    alt_email: str  # a second personal address, used in shops
    household_email: str | None  # a shared family address this person uses, if any
    suffix: str | None = None  # "junior" / "senior" for a father and son of one name

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"


def _years(d: date, years: int) -> date:
    """The same day ``years`` later (28 February for a 29th in a common year)."""
    return d.replace(year=d.year + years, day=min(d.day, 28) if d.month == 2 else d.day)


_Spec = tuple[str, str, str, date]  # gender, first name, last name, birth date
AddressFn = Callable[[str], tuple[Address, City]]
MobileFn = Callable[[City], Phone]


@dataclass
class _Home:
    hid: str
    kind: str
    country: str
    address: Address
    city: City
    landline: Phone
    email: str | None


class HouseholdBuilder:
    """Draws households of a given kind in a given country.

    ``address`` and ``mobile`` default to the factory's address and :func:`make_phone`; the
    multi-silo generator passes its own for countries that :mod:`geo` does not know."""

    def __init__(
        self,
        factory: PersonFactory,
        *,
        address: AddressFn | None = None,
        mobile: MobileFn | None = None,
    ) -> None:
        self.factory = factory
        self.rng = factory.rng
        self.vocab: dict[str, Vocab] = factory.vocab
        self._address: AddressFn = address or factory.address
        self._mobile: MobileFn = mobile or (lambda city: make_phone(self.rng, city, mobile=True))
        self._index = 0
        self._homes = 0
        self._family_emails: set[str] = set()

    # -- pieces ------------------------------------------------------------------------------
    def _first(self, country: str, gender: str) -> str:
        rng, v = self.rng, self.vocab[country]
        if rng.random() < 0.2:  # common formal names, so that nicknames have something to do
            formal = [
                n
                for n in NICKNAMES[language_of(country)]
                if (n in _FEMALE_FORMAL) == (gender == "f")
            ]
            return rng.choice(formal)
        return rng.choice(v.female if gender == "f" else v.male)

    def _last(self, country: str, avoid: Iterable[str] = ()) -> str:
        taken = set(avoid)
        while True:
            last = self.rng.choice(self.vocab[country].last)
            if last not in taken:
                return last

    def _born(self, lo: date, hi: date) -> date:
        return date.fromordinal(self.rng.randint(lo.toordinal(), max(lo, hi).toordinal()))

    def _child_dob(self, parent: date) -> date:
        lo = _years(parent, 20)
        hi = min(_years(parent, 40), date(2008, 6, 30))
        return self._born(lo, hi)

    def _family_email(self, country: str, last: str, firsts: tuple[str, str]) -> str:
        rng = self.rng
        v = self.vocab[country]
        name = "".join(c for c in ascii_fold(last).lower() if c.isalnum())
        a, b = ("".join(c for c in ascii_fold(f).lower() if c.isalnum()) for f in firsts)
        if language_of(country) == "de":
            local = rng.choice((f"familie.{name}", f"fam.{name}", f"{name}.familie", f"{a}und{b}"))
        else:
            local = rng.choice((f"the{name}s", f"{name}family", f"{a}and{b}", f"{name}.home"))
        domain = rng.choice(v.domains)
        email = f"{local}@{domain}"
        while email in self._family_emails:
            email = f"{local}{rng.randint(2, 99)}@{domain}"
        self._family_emails.add(email)
        return email

    def _home(self, kind: str, country: str) -> _Home:
        self._homes += 1
        address, city = self._address(country)
        landline = make_phone(self.rng, city, mobile=False)
        return _Home(f"H{self._homes:06d}", kind, country, address, city, landline, None)

    def _member(
        self,
        home: _Home,
        role: str,
        gender: str,
        first: str,
        last: str,
        dob: date,
        *,
        shares_email: bool = False,
        suffix: str | None = None,
    ) -> Individual:
        rng, f = self.rng, self.factory
        self._index += 1
        age = (_TODAY - dob).days // 365
        mobile = self._mobile(home.city) if rng.random() < (0.55 if age > 75 else 0.87) else None
        has_email = rng.random() < (0.55 if age > 75 else 0.83)
        email = f.email(first, last, dob, home.country, self._index) if has_email else None
        alt = f.email(first, last, dob, home.country, self._index)
        return Individual(
            pid=f"P{self._index:07d}",
            household=home.hid,
            kind=home.kind,
            role=role,
            country=home.country,
            gender=gender,
            first_name=first,
            last_name=last,
            dob=dob,
            address=home.address,
            landline=home.landline,
            mobile=mobile,
            email=email,
            alt_email=alt,
            household_email=home.email if shares_email else None,
            suffix=suffix,
        )

    def _pair(self, country: str, *, one_name: bool, old: bool) -> list[_Spec]:
        """Two adults living together: (gender, first name, last name, birth date) each."""
        rng = self.rng
        a_dob = self._born(date(1940, 1, 1), date(1984, 12, 31) if old else date(2002, 12, 31))
        b_dob = self._born(
            _years(a_dob, -6),
            min(_years(a_dob, 6), date(2004, 12, 31)),
        )
        ga = "m" if rng.random() < 0.5 else "f"
        gb = ("f" if ga == "m" else "m") if rng.random() < 0.92 else ga
        a_first = self._first(country, ga)
        b_first = self._first(country, gb)
        while b_first == a_first:
            b_first = self._first(country, gb)
        a_last = self._last(country)
        b_last = a_last if one_name else self._last(country, (a_last,))
        return [(ga, a_first, a_last, a_dob), (gb, b_first, b_last, b_dob)]

    def _adults(self, home: _Home, role: str, specs: list[_Spec]) -> list[Individual]:
        """Members for the adults of ``specs``; a couple shares a family e-mail now and then."""
        if len(specs) == 2 and self.rng.random() < 0.3:
            home.email = self._family_email(home.country, specs[0][2], (specs[0][1], specs[1][1]))
        share = home.email is not None and len(specs) == 2
        return [self._member(home, role, *spec, shares_email=share) for spec in specs]

    # -- households --------------------------------------------------------------------------
    def household(self, kind: str, country: str) -> list[Individual]:
        """Draw one household of ``kind`` (one of :data:`HOUSEHOLD_KINDS`) in ``country``."""
        rng = self.rng
        home = self._home(kind, country)
        lang = language_of(country)
        if kind == "single":
            gender = "f" if rng.random() < 0.51 else "m"
            spec = (gender, self._first(country, gender), self._last(country), self.factory.dob())
            return [self._member(home, "single", *spec)]
        if kind in ("couple", "couple_two_names"):
            pair = self._pair(country, one_name=kind == "couple", old=False)
            return self._adults(home, "spouse", pair)
        if kind == "flatmates":
            return self._flatmates(home)
        parents = self._pair(country, one_name=rng.random() < 0.8, old=True)
        family_name, parent_dob = parents[0][2], parents[0][3]
        if kind == "family":
            adults = self._adults(home, "parent", parents)
            children: list[Individual] = []
            names = {p.first_name for p in adults}
            for _ in range(rng.choice((1, 1, 2, 2, 3))):
                gender = "f" if rng.random() < 0.5 else "m"
                first = self._first(country, gender)
                while first in names:
                    first = self._first(country, gender)
                names.add(first)
                dob = self._child_dob(parent_dob)
                while any(abs((dob - ch.dob).days) < 300 for ch in children):
                    dob = self._child_dob(parent_dob)
                children.append(self._member(home, "child", gender, first, family_name, dob))
            return adults + children
        if kind == "twins":
            dob = self._child_dob(parent_dob)
            r = rng.random()
            if r < 0.45:
                (a, b), genders = rng.choice(NEAR_TWINS[lang]), ("m", "f")
            elif r < 0.7:
                (a, b) = rng.choice(OTHER_TWINS[lang])
                genders = ("f", "f") if a in _GIRLS else ("m", "m")
            else:
                genders = (rng.choice("fm"), rng.choice("fm"))
                a, b = self._first(country, genders[0]), self._first(country, genders[1])
                while b == a:
                    b = self._first(country, genders[1])
            # Twins often live with their parents, sometimes on their own.
            adults = self._adults(home, "parent", rng.sample(parents, rng.choice((0, 1, 2, 2))))
            return [
                *adults,
                self._member(home, "twin", genders[0], a, family_name, dob),
                self._member(home, "twin", genders[1], b, family_name, dob),
            ]
        if kind == "father_son":
            first = rng.choice(FATHER_NAMES[lang])
            mother = (
                [("f", self._first(country, "f"), parents[1][2], parents[1][3])]
                if rng.random() < 0.6
                else []
            )
            father = ("m", first, family_name, parent_dob)
            adults = self._adults(home, "parent", [father, *mother])
            adults[0] = replace(adults[0], role="father", suffix="senior")
            son_dob = self._child_dob(parent_dob)
            son = self._member(home, "son", "m", first, family_name, son_dob, suffix="junior")
            return [adults[0], son, *adults[1:]]
        raise ValueError(f"unknown household kind {kind!r}")

    def _flatmates(self, home: _Home) -> list[Individual]:
        rng, c = self.rng, home.country
        n = rng.choice((2, 2, 3, 3, 4))
        born = self._born(date(1986, 1, 1), date(2005, 12, 31))
        out: list[Individual] = []
        firsts: set[str] = set()
        lasts: list[str] = []
        same_birthday = rng.random() < 0.2
        for i in range(n):
            gender = "f" if rng.random() < 0.5 else "m"
            first = self._first(c, gender)
            while first in firsts:
                first = self._first(c, gender)
            firsts.add(first)
            last = self._last(c, lasts)
            lasts.append(last)
            if i == 1 and same_birthday:
                dob = out[0].dob
            else:
                dob = self._born(_years(born, -3), _years(born, 3))
            out.append(self._member(home, "flatmate", gender, first, last, dob))
        return out


_GIRLS = frozenset(_words("Hanna Emma Lena Amelia Lily Julia Léa"))


# -- shared noise --------------------------------------------------------------------------------
def name_variant(
    rng: random.Random, first: str, country: str, *, nickname: float = 0.0, typos: float = 0.0
) -> str:
    """A first name as someone wrote it: sometimes a nickname, a typo or an initial."""
    short = NICKNAMES[language_of(country)].get(first)
    if short and rng.random() < nickname:
        return rng.choice(short)
    if rng.random() < typos:
        return typo(first, rng)
    return first


def _with_suffix(p: Individual, last: str, rng: random.Random, rate: float) -> str:
    if p.suffix is None or rng.random() >= rate:
        return last
    lang = "de" if language_of(p.country) == "de" else "en"
    words = _SUFFIXES[lang] if p.suffix == "junior" else _SENIOR[lang]
    return f"{last} {rng.choice(words)}"


def birth_date_text(rng: random.Random, dob: date, country: str, *, swap: float = 0.0) -> str:
    """A birth date as a clerk in ``country`` types it: DD.MM.YYYY in German-speaking
    countries, DD/MM/YYYY (MM/DD/YYYY in the US) where that cannot be misread, else ISO.
    With probability ``swap`` day and month are swapped (a typing error), written ISO."""
    d, m, y = dob.day, dob.month, dob.year
    if d <= 12 and d != m and rng.random() < swap:
        return f"{y}-{d:02d}-{m:02d}"
    if country in ("DE", "AT", "CH"):
        return f"{d:02d}.{m:02d}.{y}"
    if d > 12 or d == m:
        return f"{m:02d}/{d:02d}/{y}" if country == "US" else f"{d:02d}/{m:02d}/{y}"
    return dob.isoformat()


PhoneFormat = Callable[[Phone, int, bool], str]


def _format(phone: Phone, style: int, international: bool) -> str:
    return format_phone(phone, style, international=international)


def phone_text(
    rng: random.Random, phone: Phone, intl_rate: float = 0.3, fmt: PhoneFormat = _format
) -> str:
    """A phone number as typed: national (several spellings) or international, and now and
    then the hybrid "(0)30-1234567" that some forms produce."""
    r = rng.random()
    if r < intl_rate:
        return fmt(phone, rng.randrange(4) if rng.random() < 0.3 else 0, True)
    if r < intl_rate + 0.03 and phone.country in ("DE", "AT", "CH") and not phone.mobile:
        return f"(0){phone.area}-{phone.subscriber}"
    return fmt(phone, 0 if rng.random() < 0.5 else rng.randrange(4), False)


def write_jsonl(path: Path, rows: Iterable[dict[str, object]]) -> int:
    """Write JSON Lines; returns the number of rows."""
    n = 0
    with path.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
            n += 1
    return n


PERSONS_HEADER = (
    "person_id",
    "household_id",
    "household_kind",
    "role",
    "country",
    "gender",
    "first_name",
    "last_name",
    "date_of_birth",
    "has_mobile",
    "has_email",
)


def write_persons(path: Path, persons: Iterable[Individual]) -> Path:
    """Write persons.csv: every true person with household, kind and role (for analysis)."""
    write_csv(
        path,
        PERSONS_HEADER,
        (
            (
                p.pid,
                p.household,
                p.kind,
                p.role,
                p.country,
                p.gender,
                p.first_name,
                p.last_name,
                p.dob.isoformat(),
                int(p.mobile is not None),
                int(p.email is not None),
            )
            for p in persons
        ),
    )
    return path


# -- the silos of the household data set ---------------------------------------------------------
@dataclass(frozen=True)
class HouseholdManifest:
    """What generate_households wrote: silo files, truth, and the true persons."""

    out_dir: Path
    files: list[SiloFile]
    households: int
    people: int
    truth_path: Path
    persons_path: Path
    persons: tuple[Individual, ...]
    counts: dict[str, int] = field(default_factory=dict)  # rows per source
    kinds: dict[str, int] = field(default_factory=dict)  # households per kind

    def file(self, source: str) -> SiloFile:
        """The silo file of a source."""
        for f in self.files:
            if f.source == source:
                return f
        raise KeyError(f"no silo file for source {source!r}")


_LAND = {
    "DE": ("Deutschland", "Deutschland", "DE", "Germany"),
    "GB": ("UK", "United Kingdom", "GB", "Großbritannien"),
    "US": ("USA", "USA", "US", "United States"),
}
_CATALOGUE_LAND = {"DE": "Germany", "GB": "United Kingdom", "US": "United States"}
CRM_HEADER = (
    "Kundennr",
    "Anrede",
    "Vorname",
    "Nachname",
    "Geburtsdatum",
    "E-Mail",
    "Telefon",
    "Strasse",
    "PLZ",
    "Ort",
    "Country",
)
_CRM_MAP = dict(
    zip(
        ("record_id", "first_name", "last_name", "date_of_birth", "email", "phone", "street"),
        ("Kundennr", "Vorname", "Nachname", "Geburtsdatum", "E-Mail", "Telefon", "Strasse"),
        strict=True,
    )
) | {"postcode": "PLZ", "city": "Ort", "country": "Country"}
_SHOP_MAP = {
    "record_id": "customer_id",
    "first_name": "profile.first_name",
    "last_name": "profile.last_name",
    "date_of_birth": "profile.birthday",
    "email": "contact.email",
    "phone": "contact.phone",
    "street": "address.line1",
    "postcode": "address.postal_code",
    "city": "address.city",
    "country": "address.country",
}
_LOYALTY_MAP = {
    "record_id": "karten_nr",
    "full_name": "name",
    "date_of_birth": "geburtsdatum",
    "email": "email",
    "phone": "telefon",
    "street": "strasse",
    "postcode": "plz",
    "city": "ort",
}
_CATALOGUE_MAP = {
    "record_id": "request_id",
    "full_name": "name",
    "street": "address_line",
    "postcode": "postcode",
    "city": "town",
    "country": "country",
    "phone": "phone",
    "email": "email",
}
_SOURCE_RATES = (("crm", 0.85), ("shop", 0.65), ("loyalty", 0.5), ("catalogue", 0.25))


class _Silos:
    """Collects the rows of the four household silos and the truth table."""

    def __init__(self, out: Path, rng: random.Random) -> None:
        self.out = out
        self.rng = rng
        self.truth: list[tuple[str, str, str]] = []
        self.crm: list[list[str]] = []
        self.shop: list[dict[str, object]] = []
        self.loyalty: dict[str, list[object]] = {c: [] for c in _LOYALTY_MAP.values()}
        self.catalogue: list[list[str]] = []

    def _phone(self, p: Individual, mobile_rate: float, intl: float) -> str:
        phone = p.mobile if p.mobile is not None and self.rng.random() < mobile_rate else None
        return phone_text(self.rng, phone or p.landline, intl)

    def _email(self, p: Individual, household_rate: float) -> str:
        rng = self.rng
        if p.household_email and (p.email is None or rng.random() < household_rate):
            return p.household_email
        return p.email or ""

    def add_crm(self, p: Individual) -> None:
        rng = self.rng
        rid = f"K-{100_000 + len(self.crm) * 3 + rng.randint(0, 2)}"
        first = p.first_name
        r = rng.random()
        if r < 0.03:
            first = f"{first[0]}."
        elif r < 0.06:
            first = typo(first, rng)
        last = _with_suffix(p, p.last_name, rng, 0.35)
        if rng.random() < 0.03:
            last = typo(last, rng)
        email = self._email(p, 0.3)
        if email and rng.random() < 0.05:
            email = email.upper()
        street = p.address.line()
        if rng.random() < 0.3:
            street = p.address.line(street_variant(p.address.street, p.country, rng))
        lang = language_of(p.country)
        salutation = (
            ("Frau" if p.gender == "f" else "Herr")
            if lang == "de"
            else (rng.choice(("Ms", "Mrs")) if p.gender == "f" else "Mr")
        )
        self.crm.append(
            [
                rid,
                salutation if rng.random() < 0.8 else "",
                first,
                last,
                "" if rng.random() < 0.05 else birth_date_text(rng, p.dob, p.country, swap=0.02),
                email,
                "" if rng.random() < 0.04 else self._phone(p, 0.5, 0.25),
                street,
                p.address.postcode,
                p.address.city,
                rng.choice(_LAND[p.country]),
            ]
        )
        self.truth.append(("crm", rid, p.pid))

    def add_shop(self, p: Individual) -> None:
        rng = self.rng
        # An odd multiplier modulo 2**40 is a bijection: ids look random and never collide.
        rid = f"cus_{(len(self.shop) + 1) * 0x9E3779B1 % 2**40:010x}"
        email = self._email(p, 0.6) if rng.random() < 0.8 else p.alt_email
        email = email or p.alt_email
        first = name_variant(rng, p.first_name, p.country, nickname=0.35, typos=0.04)
        last = p.last_name if rng.random() >= 0.04 else typo(p.last_name, rng)
        if p.country == "DE" and rng.random() < 0.25:
            first, last = ascii_fold(first), ascii_fold(last)
        elif rng.random() < 0.03:
            first, last = first.lower(), last.lower()
        if p.suffix == "junior" and language_of(p.country) == "de" and rng.random() < 0.1:
            first = f"{first} junior"
        else:
            last = _with_suffix(p, last, rng, 0.3)
        phone = None
        if rng.random() < 0.6:
            phone = self._phone(p, 0.8, 0.5)
        self.shop.append(
            {
                "customer_id": rid,
                "created_at": f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-"
                f"{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
                "profile": {
                    "first_name": first,
                    "last_name": last,
                    "birthday": p.dob.isoformat() if rng.random() < 0.65 else None,
                },
                "contact": {"email": email, "phone": phone},
                "address": {
                    "line1": p.address.line(),
                    "postal_code": p.address.postcode,
                    "city": p.address.city,
                    "country": p.country,
                },
                "newsletter": rng.random() < 0.4,
            }
        )
        self.truth.append(("shop", rid, p.pid))

    def add_loyalty(self, p: Individual) -> None:
        rng = self.rng
        rid = f"{2_000_000_000 + (len(self.truth) * 7_919) % 999_999_937}"
        first = name_variant(rng, p.first_name, p.country, nickname=0.15, typos=0.03)
        last = _with_suffix(p, p.last_name, rng, 0.2)
        name = f"{last}, {first}" if rng.random() < 0.5 else f"{first} {last}"
        phone = None if rng.random() < 0.2 else self._phone(p, 0.5, 0.1)
        values: dict[str, object] = {
            "karten_nr": rid,
            "name": name,
            "geburtsdatum": p.dob if rng.random() < 0.9 else None,
            "email": (p.email or None) if rng.random() < 0.3 else None,
            "telefon": phone,
            "strasse": p.address.line(),
            "plz": p.address.postcode,
            "ort": p.address.city,
        }
        for column, value in values.items():
            self.loyalty[column].append(value)
        self.truth.append(("loyalty", rid, p.pid))

    def add_catalogue(self, p: Individual) -> None:
        rng = self.rng
        rid = f"CAT-{len(self.catalogue) + 50_001}"
        lang = language_of(p.country)
        title = (
            ("Frau" if p.gender == "f" else "Herr")
            if lang == "de"
            else ("Mrs" if p.gender == "f" else "Mr")
        )
        last = _with_suffix(p, p.last_name, rng, 0.3)
        r = rng.random()
        if r < 0.6:
            name = f"{p.first_name} {last}"
        elif r < 0.8:
            name = f"{p.first_name[0]}. {last}"
        else:
            name = f"{title} {name_variant(rng, p.first_name, p.country, nickname=0.3)} {last}"
        self.catalogue.append(
            [
                rid,
                name,
                p.address.line(),
                p.address.city,
                p.address.postcode,
                _CATALOGUE_LAND[p.country],
                self._phone(p, 0.3, 0.2) if rng.random() < 0.25 else "",
                (p.email or "") if rng.random() < 0.15 else "",
            ]
        )
        self.truth.append(("catalogue", rid, p.pid))

    def write(self) -> list[SiloFile]:
        out = self.out
        crm = out / "crm_kontakte.csv"
        n_crm = write_csv(crm, CRM_HEADER, self.crm)
        crm_map = write_map(out / "crm.map.yaml", _CRM_MAP, kind="records")
        shop = out / "shop_customers.jsonl"
        n_shop = write_jsonl(shop, self.shop)
        shop_map = write_map(out / "shop.map.yaml", _SHOP_MAP, kind="records")
        loyalty = out / "kundenkarte.parquet"
        types = {"geburtsdatum": pa.date32()}
        table = pa.table(
            {c: pa.array(v, type=types.get(c, pa.string())) for c, v in self.loyalty.items()}
        )
        pq.write_table(table, loyalty, compression="snappy")
        # A German loyalty programme: one country, so its numbers are read as German.
        loyalty_map = write_map(
            out / "loyalty.map.yaml", _LOYALTY_MAP, kind="records", phone_region="DE"
        )
        catalogue = out / "catalogue_requests.csv"
        header = ("request_id", "name", "address_line", "town", "postcode", "country")
        n_cat = write_csv(catalogue, (*header, "phone", "email"), self.catalogue)
        cat_map = write_map(out / "catalogue.map.yaml", _CATALOGUE_MAP, kind="records")
        return [
            SiloFile(crm, "crm", "records", crm_map, n_crm),
            SiloFile(shop, "shop", "records", shop_map, n_shop),
            SiloFile(loyalty, "loyalty", "records", loyalty_map, table.num_rows),
            SiloFile(catalogue, "catalogue", "records", cat_map, n_cat),
        ]


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _sources(p: Individual, rng: random.Random) -> list[str]:
    """Two or more silos for a person; the shop needs an e-mail, the loyalty card Germany."""
    available = ["crm", "catalogue"]
    available += ["shop"] if p.email or p.household_email else []
    available += ["loyalty"] if p.country == "DE" else []
    chosen = [s for s, rate in _SOURCE_RATES if s in available and rng.random() < rate]
    rest = [s for s in available if s not in chosen]
    rng.shuffle(rest)
    return chosen + rest[: max(0, 2 - len(chosen))]


def generate_households(
    out_dir: Path, *, households: int = 300, seed: int = 13
) -> HouseholdManifest:
    """Write ``households`` synthetic households into four silos; return the manifest.

    Files: crm_kontakte.csv (German headers, a Country column), shop_customers.jsonl (nested
    objects), kundenkarte.parquet (German loyalty cards, no country column: its map sets
    ``phone_region: DE``), catalogue_requests.csv; a map file for each; truth.csv (source,
    record_id, person_id) and persons.csv (person, household, kind, role). The first seven
    households are one of each kind, so even a small data set has every kind.
    """
    if households < len(HOUSEHOLD_KINDS):
        raise ValueError(f"generate_households needs at least {len(HOUSEHOLD_KINDS)} households")
    out, rng = start(out_dir, seed)
    builder = HouseholdBuilder(PersonFactory(seed, rng))
    kind_weights = dict(zip(HOUSEHOLD_KINDS, _KIND_WEIGHTS, strict=True))
    persons: list[Individual] = []
    kinds: dict[str, int] = dict.fromkeys(HOUSEHOLD_KINDS, 0)
    for i in range(households):
        kind = HOUSEHOLD_KINDS[i] if i < len(HOUSEHOLD_KINDS) else _pick(rng, kind_weights)
        kinds[kind] += 1
        persons += builder.household(kind, _pick(rng, _COUNTRY_WEIGHTS))
    silos = _Silos(out, rng)
    add = {
        "crm": silos.add_crm,
        "shop": silos.add_shop,
        "loyalty": silos.add_loyalty,
        "catalogue": silos.add_catalogue,
    }
    plan = [(p, s) for p in persons for s in _sources(p, rng)]
    # A few people are in the CRM twice (entered again by another clerk) or hold a second
    # shop account; then the rows are shuffled, as exports are ordered by anything but person.
    plan += [(p, s) for p, s in plan if s in ("crm", "shop") and rng.random() < 0.04]
    rng.shuffle(plan)
    for p, source in plan:
        add[source](p)
    files = silos.write()
    truth_path = write_truth(out, silos.truth)
    persons_path = write_persons(out / "persons.csv", persons)
    return HouseholdManifest(
        out_dir=out,
        files=files,
        households=households,
        people=len(persons),
        truth_path=truth_path,
        persons_path=persons_path,
        persons=tuple(persons),
        counts={f.source: f.rows for f in files},
        kinds=kinds,
    )
