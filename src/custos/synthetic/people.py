"""Synthetic people: the "true" persons behind all generated records."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from custos.synthetic.geo import CITIES, City, Phone, make_phone, make_postcode
from custos.synthetic.vocab import COUNTRIES, Vocab, ascii_fold, load_vocab, weighted

__all__ = ["Address", "Person", "PersonFactory"]

_COUNTRY_CODES = tuple(c for c, _, _ in COUNTRIES)
_COUNTRY_CUM = (0.70, 0.90, 1.0)
_DOB_LO = date(1936, 1, 1).toordinal()
_DOB_HI = date(2007, 12, 31).toordinal()
_DOB_MODE = date(1978, 6, 1).toordinal()
CITY_BY_NAME = {(c.country, c.name): c for cities in CITIES.values() for c in cities}
_EMAIL_STYLES = (0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7, 8, 9)


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; street is the street name without the house number."""

    street: str
    house: str
    postcode: str
    city: str
    country: str

    def line(self, street: str | None = None) -> str:
        """Street and house number in the country's usual order."""
        name = self.street if street is None else street
        if self.country == "DE":
            return f"{name} {self.house}"
        return f"{self.house} {name}"


@dataclass(frozen=True, slots=True)
class Person:
    """One true synthetic person."""

    pid: str
    index: int
    country: str
    gender: str  # "f" or "m"
    first_name: str
    last_name: str
    dob: date
    email: str
    alt_email: str
    landline: Phone
    mobile: Phone
    prefers_mobile: bool
    address: Address
    handle: str | None
    customer_no: str

    @property
    def phone(self) -> Phone:
        """The person's main phone number."""
        return self.mobile if self.prefers_mobile else self.landline

    @property
    def language(self) -> str:
        """Preferred language code, "de" or "en"."""
        return "de" if self.country == "DE" else "en"

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"


@lru_cache(maxsize=16384)
def _clean_local(s: str) -> str:
    s = ascii_fold(s).lower()
    return "".join(ch for ch in s if ch.isalnum() or ch in "-") or "user"


class PersonFactory:
    """Makes persons from Faker-drawn vocabularies and a private random.Random.

    With ``unique_suffix`` every e-mail local part ends in a number derived from the
    person's index, which makes e-mails unique by construction without remembering
    them (used for the streaming benchmark writer). Otherwise uniqueness is enforced
    with a set, which allows more natural addresses such as "anna.mueller@gmx.de".
    """

    def __init__(self, seed: int, rng: random.Random, *, unique_suffix: bool = False) -> None:
        self.vocab: dict[str, Vocab] = load_vocab(seed)
        self.rng = rng
        self.unique_suffix = unique_suffix
        self._emails: set[str] = set()
        self._handles: set[str] = set()

    def country(self) -> str:
        """Draw a country: about 70% DE, 20% GB, 10% US."""
        return weighted(self.rng, _COUNTRY_CODES, _COUNTRY_CUM)

    def address(self, country: str) -> tuple[Address, City]:
        """Draw a fresh address in country; also returns the city record."""
        rng = self.rng
        v = self.vocab[country]
        city = weighted(rng, v.cities, v.city_cum)
        street = rng.choice(v.streets)
        if country == "DE":
            house = str(rng.randint(1, 120) if rng.random() < 0.85 else rng.randint(1, 12))
            if rng.random() < 0.08:
                house += rng.choice("abc")
        elif country == "GB":
            house = str(rng.randint(1, 180))
        else:
            house = str(rng.randint(1, 99) * rng.choice((1, 10, 100)) + rng.randint(0, 9))
        return Address(street, house, make_postcode(rng, city), city.name, country), city

    def _local(self, first: str, last: str, dob: date, style: int, number: int | None) -> str:
        rng = self.rng
        f, lname = _clean_local(first), _clean_local(last)
        if style == 0:
            base, digits = f"{f}.{lname}", ""
        elif style == 1:
            base, digits = f"{f[0]}{rng.choice(('.', ''))}{lname}", ""
        elif style == 2:
            base, digits = f"{f}_{lname}", ""
        elif style == 3:
            base, digits = f"{f}{lname}", f"{rng.randrange(100):02d}"
        elif style == 4:
            base, digits = f"{f}.{lname}", str(dob.year)
        elif style == 5:
            base, digits = f"{lname}.{f}", ""
        elif style == 6:
            base, digits = f"{f}{lname[0]}", str(rng.randint(1, 999))
        elif style == 7:
            word = rng.choice(self.vocab["DE"].handle_words)
            base, digits = f"{word}{rng.choice(('', '.', '_'))}{f}", str(rng.randint(1, 99))
        elif style == 8:
            base, digits = f, f"{dob.year % 100:02d}"
        else:
            base, digits = f"{lname}{f[0]}", ""
        if number is not None:
            return f"{base}{rng.choice(('', '', '.', '_'))}{number}"
        return base + digits

    def email(self, p_first: str, last: str, dob: date, country: str, index: int) -> str:
        """Build a unique e-mail address for a person."""
        rng = self.rng
        v = self.vocab[country]
        number = None
        if self.unique_suffix:
            number = (index * 7919 + 104_729) % 1_000_003 if index < 1_000_003 else index
        while True:
            local = self._local(p_first, last, dob, rng.choice(_EMAIL_STYLES), number)
            addr = f"{local}@{weighted(rng, v.domains, v.domain_cum)}"
            if self.unique_suffix:
                return addr
            if addr not in self._emails:
                self._emails.add(addr)
                return addr
            number = rng.randint(2, 9999)

    def handle(self, first: str, last: str, dob: date) -> str:
        """Build a unique social-media handle (without "@")."""
        rng = self.rng
        f, lname = _clean_local(first).replace("-", ""), _clean_local(last).replace("-", "")
        words = self.vocab["DE"].handle_words
        while True:
            style = rng.randrange(5)
            if style == 0:
                h = f"{f}{lname}"
            elif style == 1:
                h = f"{f}_{lname}"
            elif style == 2:
                h = f"{f}{dob.year % 100:02d}"
            elif style == 3:
                h = f"{rng.choice(words)}_{f}"
            else:
                h = f"the{f}{lname[:1]}"
            h = h[:12]
            if h in self._handles:
                h = f"{h}{rng.randint(1, 999)}"
            if h not in self._handles:
                self._handles.add(h)
                return h

    def dob(self) -> date:
        """Draw a date of birth (ages roughly 18 to 90, most between 30 and 60)."""
        return date.fromordinal(int(self.rng.triangular(_DOB_LO, _DOB_HI, _DOB_MODE)))

    def person(
        self, index: int, *, handle_rate: float = 0.4, family_of: Person | None = None
    ) -> Person:
        """Draw a new person; with family_of, a relative sharing address and landline."""
        rng = self.rng
        country = family_of.country if family_of else self.country()
        v = self.vocab[country]
        gender = "f" if rng.random() < 0.51 else "m"
        first = rng.choice(v.female if gender == "f" else v.male)
        dob = self.dob()
        if family_of is None:
            last = rng.choice(v.last)
            address, city = self.address(country)
            landline = make_phone(rng, city, mobile=False)
        else:
            last, address, landline = family_of.last_name, family_of.address, family_of.landline
            city = CITY_BY_NAME[(country, address.city)]
            while first == family_of.first_name:
                first = rng.choice(v.female if gender == "f" else v.male)
            while abs((dob - family_of.dob).days) < 200:
                dob = self.dob()
        email = self.email(first, last, dob, country, index)
        alt = email
        while alt == email:
            alt = self.email(first, last, dob, country, index)
        handle = self.handle(first, last, dob) if rng.random() < handle_rate else None
        return Person(
            pid=f"P{index + 1:07d}",
            index=index,
            country=country,
            gender=gender,
            first_name=first,
            last_name=last,
            dob=dob,
            email=email,
            alt_email=alt,
            landline=landline,
            mobile=make_phone(rng, city, mobile=True),
            prefers_mobile=family_of is None and rng.random() < 0.55,
            address=address,
            handle=handle,
            customer_no=f"C-{index + 1_000_000:07d}",
        )
