"""A multi-country company whose silos do not agree on how to name a person.

:func:`generate_multisilo` writes a CRM (records, with a country column) of people from seven
countries, shop orders placed under second e-mail addresses the CRM never saw, call-centre notes
that know a caller's name and national-format number but not their country, and consent events
(one of them a withdrawal carried only by the second e-mail of a typo'd order). Some people share
a household (address and landline). ``truth.csv`` maps every record and interaction to its true
person; ``persons.csv`` lists the persons with their households.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from faker import Faker

from custos.synthetic.clock import local_iso, random_moment
from custos.synthetic.geo import CITIES, City, Phone, format_phone, make_phone
from custos.synthetic.households import (
    HouseholdBuilder,
    Individual,
    birth_date_text,
    language_of,
    name_variant,
    phone_text,
    write_jsonl,
    write_persons,
)
from custos.synthetic.people import Address, PersonFactory
from custos.synthetic.texts import CALL_NOTES, ORDER_COMMENTS
from custos.synthetic.vocab import Vocab, ascii_fold, load_vocab, street_variant, typo
from custos.synthetic.world import (
    CONTACT_COLUMNS,
    SiloFile,
    start,
    write_csv,
    write_map,
    write_truth,
)

__all__ = ["MultiSiloManifest", "PlantedWithdrawal", "format_any", "generate_multisilo"]

_COUNTRY_WEIGHTS = {"DE": 35, "GB": 15, "US": 15, "NL": 12, "AT": 9, "CH": 7, "FR": 7}
_KIND_WEIGHTS = {
    "single": 86,
    "couple": 4,
    "couple_two_names": 2,
    "family": 3,
    "twins": 1.5,
    "father_son": 1.5,
    "flatmates": 2,
}
_CALLING_CODE = {"DE": "49", "GB": "44", "US": "1", "NL": "31", "AT": "43", "CH": "41", "FR": "33"}


# -- the countries geo.py does not know ----------------------------------------------------------
def _city(
    country: str, name: str, weight: float, area: str, length: int, first: str, plz: str
) -> City:
    return City(country, name, weight, (area,), (length,), first, (plz,))


EXTRA_CITIES: dict[str, tuple[City, ...]] = {
    "NL": (
        _city("NL", "Amsterdam", 30, "20", 7, "3456789", "1011-1109"),
        _city("NL", "Rotterdam", 22, "10", 7, "2345789", "3011-3089"),
        _city("NL", "Den Haag", 18, "70", 7, "3456", "2491-2597"),
        _city("NL", "Utrecht", 12, "30", 7, "2346", "3511-3585"),
        _city("NL", "Eindhoven", 8, "40", 7, "2", "5611-5658"),
        _city("NL", "Groningen", 7, "50", 7, "345", "9711-9747"),
        _city("NL", "Zwolle", 4, "38", 7, "4", "8011-8043"),
        _city("NL", "Maastricht", 4, "43", 7, "3", "6211-6229"),
        _city("NL", "Emmen", 3, "591", 6, "6", "7811-7833"),
        _city("NL", "Veendam", 2, "598", 6, "3456", "9641-9648"),
    ),
    "AT": (
        _city("AT", "Wien", 50, "1", 7, "23456789", "1010-1230"),
        _city("AT", "Graz", 14, "316", 6, "2345678", "8010-8055"),
        _city("AT", "Linz", 10, "732", 6, "2345678", "4020-4040"),
        _city("AT", "Salzburg", 8, "662", 6, "2345678", "5020-5026"),
        _city("AT", "Innsbruck", 7, "512", 6, "2345678", "6020-6080"),
        _city("AT", "Klagenfurt", 5, "463", 6, "2345678", "9020-9073"),
    ),
    "CH": (
        _city("CH", "Zürich", 30, "44", 7, "2345678", "8001-8057"),
        _city("CH", "Genève", 15, "22", 7, "2345678", "1201-1209"),
        _city("CH", "Basel", 12, "61", 7, "2345678", "4001-4059"),
        _city("CH", "Bern", 12, "31", 7, "2345678", "3003-3027"),
        _city("CH", "Lausanne", 10, "21", 7, "2345678", "1003-1018"),
        _city("CH", "Luzern", 6, "41", 7, "2345678", "6003-6006"),
        _city("CH", "St. Gallen", 5, "71", 7, "2345678", "9000-9016"),
    ),
    "FR": (
        _city("FR", "Paris", 40, "1", 8, "4", "75001-75020"),
        _city("FR", "Marseille", 12, "4", 8, "9", "13001-13016"),
        _city("FR", "Lyon", 12, "4", 8, "7", "69001-69009"),
        _city("FR", "Toulouse", 9, "5", 8, "6", "31000-31500"),
        _city("FR", "Bordeaux", 7, "5", 8, "5", "33000-33800"),
        _city("FR", "Lille", 7, "3", 8, "2", "59000-59800"),
        _city("FR", "Nantes", 7, "2", 8, "4", "44000-44300"),
        _city("FR", "Strasbourg", 6, "3", 8, "8", "67000-67200"),
    ),
}
_EXTRA_LOCALES = {"NL": "nl_NL", "AT": "de_AT", "CH": "de_CH", "FR": "fr_FR"}
_EXTRA_DOMAINS = {
    "NL": ("gmail.com", "hotmail.com", "ziggo.nl", "kpnmail.nl", "outlook.com", "live.nl"),
    "AT": ("gmx.at", "gmail.com", "aon.at", "chello.at", "outlook.com"),
    "CH": ("bluewin.ch", "gmail.com", "gmx.ch", "hispeed.ch", "outlook.com"),
    "FR": ("gmail.com", "orange.fr", "free.fr", "laposte.net", "sfr.fr", "hotmail.fr"),
}
#: Mobile prefixes (national destination code) and the first digits that follow.
_EXTRA_MOBILE = {
    "NL": (("6", 8, "12345"),),
    "AT": (
        ("664", 7, "0123456789"),
        ("676", 7, "0123456789"),
        ("650", 7, "0123456789"),
        ("660", 7, "0123456789"),
        ("699", 7, "0123456789"),
    ),
    "CH": tuple((a, 7, "0123456789") for a in ("76", "77", "78", "79")),
    "FR": (("6", 8, "01245678"), ("7", 8, "5678")),
}
_LETTERS = "ABCEGHJKLMNPRTVWXZ"


def _cumulative(weights: list[float]) -> tuple[float, ...]:
    total, acc, out = sum(weights), 0.0, []
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return tuple(out)


@lru_cache(maxsize=8)
def _extra_vocab(seed: int) -> dict[str, Vocab]:
    """Name and street lists for NL, AT, CH and FR, drawn from Faker (cached per seed)."""
    words = load_vocab(seed)["DE"].handle_words
    out: dict[str, Vocab] = {}
    for country, locale in _EXTRA_LOCALES.items():
        fake = Faker(locale)
        fake.seed_instance(seed)

        def plain(name: str) -> bool:
            return "." not in name and not name.endswith(" II")

        female = tuple(n for n in (str(fake.first_name_female()) for _ in range(400)) if plain(n))
        male = tuple(n for n in (str(fake.first_name_male()) for _ in range(400)) if plain(n))
        last = tuple(n for n in (str(fake.last_name()) for _ in range(800)) if plain(n))
        streets = tuple(str(fake.street_name()) for _ in range(300))
        cities = EXTRA_CITIES[country]
        domains = _EXTRA_DOMAINS[country]
        out[country] = Vocab(
            country=country,
            female=female,
            male=male,
            last=last,
            streets=streets,
            cities=cities,
            city_cum=_cumulative([c.weight for c in cities]),
            domains=domains,
            domain_cum=_cumulative([float(len(domains) - i) for i in range(len(domains))]),
            handle_words=words,
        )
    return out


def _digits(rng: random.Random, first: str, length: int) -> str:
    return rng.choice(first) + "".join(str(rng.randrange(10)) for _ in range(length - 1))


def _postcode(rng: random.Random, city: City) -> str:
    lo, hi = (int(x) for x in city.postcodes[0].split("-"))
    if city.country == "NL":
        return f"{rng.randint(lo, hi)} {rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
    if city.country == "AT" and city.name == "Wien":
        return f"{rng.randint(lo // 10, hi // 10) * 10}"
    if city.country == "FR" and hi - lo > 100:
        return f"{rng.randint(lo // 100, hi // 100) * 100:05d}"
    return f"{rng.randint(lo, hi):0{5 if city.country == 'FR' else 4}d}"


def street_line(a: Address, street: str | None = None) -> str:
    """Street and house number in the country's order (house first in GB, US and FR)."""
    name = a.street if street is None else street
    if a.country in ("GB", "US", "FR"):
        return f"{a.house}{', ' if a.country == 'FR' and a.house.endswith('0') else ' '}{name}"
    return f"{name} {a.house}"


_SHORT_STREETS = {
    "AT": (("straße", "str."), ("gasse", "g."), ("Straße", "Str.")),
    "CH": (("strasse", "str."), ("Strasse", "Str."), ("gasse", "g.")),
    "NL": (("straat", "str."), ("laan", "ln."), ("weg", "wg.")),
    "FR": (("rue ", "r. "), ("avenue ", "av. "), ("boulevard ", "bd "), ("place ", "pl. ")),
}


def _street_variant(street: str, country: str, rng: random.Random) -> str:
    """An abbreviated spelling of a street, as people type it."""
    if country in CITIES:
        return street_variant(street, country, rng)
    for long, short in _SHORT_STREETS[country]:
        if long in street:
            return street.replace(long, short, 1)
    return ascii_fold(street) if rng.random() < 0.5 else street


def format_any(p: Phone, style: int = 0, international: bool = False) -> str:
    """Format a phone of any of the seven countries (DE, GB, US via :func:`format_phone`)."""
    if p.country in ("DE", "GB", "US"):
        return format_phone(p, style, international=international)
    cc, a, s = _CALLING_CODE[p.country], p.area, p.subscriber
    if p.country == "FR":
        body = " ".join(s[i : i + 2] for i in range(0, len(s), 2))
        if international:
            return (f"+33 {a} {body}", f"+33 (0){a} {body}", f"0033 {a} {body}", f"+33{a}{s}")[
                style % 4
            ]
        dots = ".".join(s[i : i + 2] for i in range(0, len(s), 2))
        return (f"0{a} {body}", f"0{a}{s}", f"0{a}.{dots}", f"0{a}-{body.replace(' ', '-')}")[
            style % 4
        ]
    body = f"{s[:3]} {s[3:5]} {s[5:]}" if p.country == "CH" else s
    if international:
        return (f"+{cc} {a} {body}", f"00{cc} {a} {body}", f"+{cc} (0){a} {body}", f"+{cc}{a}{s}")[
            style % 4
        ]
    slash = "/" if p.country == "AT" else "-"
    return (f"0{a} {body}", f"0{a}{slash}{s}", f"(0{a}) {body}", f"0{a}{s}")[style % 4]


def _builder(seed: int, rng: random.Random) -> HouseholdBuilder:
    factory = PersonFactory(seed, rng)
    extra = _extra_vocab(seed)
    # A new dict on this factory only: the cached vocabularies stay as they are.
    factory.vocab = {**factory.vocab, **extra}
    known = factory.address

    def address(country: str) -> tuple[Address, City]:
        if country in CITIES:
            return known(country)
        v = extra[country]
        city = v.cities[-1]
        r = rng.random()
        for c, cum in zip(v.cities, v.city_cum, strict=True):
            if r < cum:
                city = c
                break
        house = str(rng.randint(1, 180)) + (rng.choice("abc") if rng.random() < 0.06 else "")
        return Address(rng.choice(v.streets), house, _postcode(rng, city), city.name, country), city

    def mobile(city: City) -> Phone:
        if city.country in CITIES:
            return make_phone(rng, city, mobile=True)
        area, length, first = rng.choice(_EXTRA_MOBILE[city.country])
        return Phone(city.country, area, _digits(rng, first, length), True)

    return HouseholdBuilder(factory, address=address, mobile=mobile)


# -- the manifest ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlantedWithdrawal:
    """A marketing_email withdrawal sent from an e-mail that only one (typo'd) order carries."""

    person_id: str
    crm_record_id: str  # the person's CRM record, which holds a grant for the purpose
    order_id: str  # the one order that carries the e-mail
    email: str
    purpose: str = "marketing_email"


@dataclass(frozen=True)
class MultiSiloManifest:
    """What generate_multisilo wrote."""

    out_dir: Path
    files: list[SiloFile]
    people: int
    truth_path: Path
    persons_path: Path
    persons: tuple[Individual, ...]
    withdrawals: tuple[PlantedWithdrawal, ...]
    #: (record id, CSV line) of the rows with a deliberately unreadable field (in the truth too)
    broken_rows: list[tuple[str, int]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def file(self, source: str, kind: str | None = None) -> SiloFile:
        """The silo file of a source (and kind: "crm" has records and consents)."""
        for f in self.files:
            if f.source == source and (kind is None or f.kind == kind):
                return f
        raise KeyError(f"no silo file for source {source!r} kind {kind!r}")


# -- the silos ---------------------------------------------------------------------------------
_LAND = {
    "DE": ("Deutschland", "Germany", "DE"),
    "GB": ("United Kingdom", "UK", "GB"),
    "US": ("USA", "United States", "US"),
    "NL": ("Netherlands", "Niederlande", "NL"),
    "AT": ("Österreich", "Austria", "AT"),
    "CH": ("Schweiz", "Switzerland", "CH"),
    "FR": ("France", "Frankreich", "FR"),
}
CRM_HEADER = (
    "customer_no",
    "salutation",
    "first_name",
    "last_name",
    *CONTACT_COLUMNS,
)
_CRM_MAP = {"record_id": "customer_no", "customer_id": "customer_no"}
_ORDERS_MAP = {
    "record_id": "order_id",
    "timestamp": "created_at",
    "full_name": "buyer.name",
    "email": "buyer.email",
    "street": "shipping.street",
    "postcode": "shipping.zip",
    "city": "shipping.city",
    "country": "shipping.country",
    "phone": "shipping.phone",
    "text": "note",
}
_CALLS_MAP = {
    "record_id": "call_id",
    "timestamp": "started_at",
    "full_name": "caller",
    "phone": "phone_number",
    "text": "notes",
}
_CONSENTS_MAP = {"customer_id": "customer_no"}
_BROKEN = ("bad_email", "bad_date", "bad_phone")
_START, _END = date(2025, 1, 1), date(2026, 10, 31)
_PURPOSES = ("marketing_email", "personalization", "analytics", "third_party_sharing")
_ORDER_COUNTS = (1, 1, 1, 2, 2, 3, 4)


def _when(moment: datetime, p: Individual) -> str:
    # clock.py knows the rules of DE, GB and the US cities; the rest of Europe keeps CET's.
    if p.country in ("NL", "AT", "CH", "FR"):
        return local_iso(moment, "DE")
    return local_iso(moment, p.country, p.address.city)


def _title(p: Individual, lang: str) -> str:
    if lang == "de":
        return "Frau" if p.gender == "f" else "Herr"
    return "Ms" if p.gender == "f" else "Mr"


class _Company:
    def __init__(self, out: Path, rng: random.Random, persons: list[Individual]) -> None:
        self.out, self.rng, self.persons = out, rng, persons
        self.truth: list[tuple[str, str, str]] = []
        self.crm_no: dict[str, str] = {}
        self.order_email: dict[str, str] = {}
        self.orders_of: dict[str, list[str]] = {}

    def _phone(self, p: Individual, mobile_rate: float, intl: float) -> str:
        phone = p.mobile if p.mobile is not None and self.rng.random() < mobile_rate else None
        return phone_text(self.rng, phone or p.landline, intl, format_any)

    def crm(self) -> tuple[SiloFile, list[tuple[str, int]]]:
        rng = self.rng
        members = [p for p in self.persons if rng.random() < 0.92]
        rows: list[tuple[Individual, str]] = [(p, "primary") for p in members]
        rows += [(p, "duplicate") for p in members if rng.random() < 0.03]
        rows += [(p, kind) for kind, p in zip(_BROKEN, rng.sample(members, 3), strict=True)]
        rng.shuffle(rows)
        table: list[list[str]] = []
        broken: list[tuple[str, int]] = []
        for i, (p, kind) in enumerate(rows):
            rid = f"C{300_000 + i * 2 + rng.randint(0, 1)}"
            if kind == "primary" and p.pid not in self.crm_no:
                self.crm_no[p.pid] = rid
            lang = language_of(p.country)
            first = p.first_name
            if rng.random() < 0.02:
                first = f"{first[0]}."
            last = p.last_name if rng.random() >= 0.03 else typo(p.last_name, rng)
            if p.suffix and rng.random() < 0.3:
                last += " Jr." if p.suffix == "junior" else " Sr."
            email = p.email or p.household_email or ""
            if p.household_email and rng.random() < 0.3:
                email = p.household_email
            if kind == "duplicate" and rng.random() < 0.5:
                email = p.alt_email
            dob = "" if rng.random() < 0.04 else birth_date_text(rng, p.dob, p.country, swap=0.01)
            street = street_line(p.address)
            if rng.random() < 0.25:
                street = street_line(p.address, _street_variant(p.address.street, p.country, rng))
            values = [
                rid,
                _title(p, lang) if rng.random() < 0.7 else "",
                first,
                last,
                email,
                "" if rng.random() < 0.05 else self._phone(p, 0.6, 0.35),
                dob,
                street,
                p.address.postcode,
                p.address.city,
                rng.choice(_LAND[p.country]),
            ]
            if kind == "bad_email":
                values[4] = f"{ascii_fold(p.first_name).lower()} at home"
            elif kind == "bad_date":
                values[6] = "31.02.1985"
            elif kind == "bad_phone":
                values[5] = "call me"
            table.append(values)
            if kind in _BROKEN:
                broken.append((rid, i + 2))
            # A broken row is still the person's: custos stores it without the bad field or
            # quarantines it (then it scores as a record in no profile).
            self.truth.append(("crm", rid, p.pid))
        path = self.out / "crm_customers.csv"
        n = write_csv(path, CRM_HEADER, table)
        map_path = write_map(self.out / "crm.map.yaml", _CRM_MAP, kind="records")
        return SiloFile(path, "crm", "records", map_path, n), broken

    def orders(self, planted: set[str]) -> SiloFile:
        rng = self.rng
        events: list[tuple[datetime, int, Individual, str, bool]] = []
        for p in self.persons:
            if p.pid in planted:
                # One order, under the second e-mail, with the surname mistyped.
                self.order_email[p.pid] = p.alt_email
                moment = random_moment(rng, _START, date(2025, 12, 31))
                events.append((moment, len(events), p, p.alt_email, True))
                continue
            if rng.random() >= 0.55:
                continue
            account = p.alt_email if rng.random() < 0.6 else (p.email or p.household_email)
            account = account or p.alt_email
            self.order_email[p.pid] = account
            for _ in range(rng.choice(_ORDER_COUNTS)):
                moment = random_moment(rng, _START, _END)
                events.append((moment, len(events), p, account, False))
        events.sort(key=lambda e: (e[0], e[1]))
        rows: list[dict[str, object]] = []
        for i, (moment, _, p, email, is_planted) in enumerate(events):
            oid = f"O-{500_001 + i}"
            self.orders_of.setdefault(p.pid, []).append(oid)
            first = name_variant(rng, p.first_name, p.country, nickname=0.15, typos=0.05)
            last = p.last_name
            while last == p.last_name and (is_planted or rng.random() < 0.1):
                last = typo(p.last_name, rng)
            if rng.random() < 0.15:
                first, last = ascii_fold(first), ascii_fold(last)
            name = f"{last}, {first}" if rng.random() < 0.2 else f"{first} {last}"
            shipping = None
            if is_planted or rng.random() < 0.6:
                shipping = {
                    "name": name,
                    "street": street_line(p.address),
                    "zip": p.address.postcode,
                    "city": p.address.city,
                    "country": p.country,
                    "phone": self._phone(p, 0.85, 0.3) if rng.random() < 0.4 else None,
                }
                if is_planted:
                    shipping["phone"] = None
            lang = language_of(p.country)
            comment = ORDER_COMMENTS["de" if lang == "de" else "en"]
            items = rng.choice((1, 1, 1, 2, 2, 3, 5))
            rows.append(
                {
                    "order_id": oid,
                    "created_at": _when(moment, p),
                    "buyer": {
                        "name": name,
                        "email": email.upper() if rng.random() < 0.05 else email,
                    },
                    "shipping": shipping,
                    "total": round(sum(rng.lognormvariate(3.0, 0.6) for _ in range(items)), 2),
                    "currency": {"GB": "GBP", "US": "USD", "CH": "CHF"}.get(p.country, "EUR"),
                    "items": items,
                    "note": rng.choice(comment) if rng.random() < 0.2 else None,
                }
            )
            self.truth.append(("orders", oid, p.pid))
        path = self.out / "shop_orders.jsonl"
        n = write_jsonl(path, rows)
        map_path = write_map(
            self.out / "orders.map.yaml", _ORDERS_MAP, kind="interactions", channel="order"
        )
        return SiloFile(path, "orders", "interactions", map_path, n)

    def _caller(self, p: Individual, lang: str) -> str:
        rng = self.rng
        first = name_variant(rng, p.first_name, p.country, nickname=0.15)
        r = rng.random()
        if r < 0.3:
            return f"{_title(p, lang)} {first} {p.last_name}"
        if r < 0.55:
            return f"{first} {p.last_name}"
        if r < 0.68:
            return f"{p.last_name}, {first}"
        if r < 0.78:
            return f"{first[0]}. {p.last_name}"
        if r < 0.9:
            return f"{_title(p, lang)} {p.last_name}"
        return ""

    def calls(self, planted: set[str]) -> SiloFile:
        rng = self.rng
        in_crm = [p for p in self.persons if p.pid in self.crm_no]
        calls: list[tuple[datetime, int, Individual, list[str]]] = []
        for i in range(max(1, len(self.persons) // 3)):
            p = rng.choice(in_crm) if in_crm and rng.random() < 0.85 else rng.choice(self.persons)
            moment = random_moment(rng, _START, _END, office_hours=True)
            lang = "de" if language_of(p.country) == "de" else "en"
            r = rng.random()
            if r < 0.05:
                phone = ""  # number withheld
            else:
                own = p.mobile if p.mobile is not None and r < 0.75 else p.landline
                # The switchboard shows what the caller's network sends: the national form
                # mostly, international for calls from abroad.
                phone = format_any(own, rng.randrange(4), rng.random() < 0.1)
            caller = self._caller(p, lang)
            orders = self.orders_of.get(p.pid)
            email = p.email or p.household_email or ("" if p.pid in planted else p.alt_email)
            fill = {
                "name": f"{p.first_name} {p.last_name}",
                "title": f"{_title(p, lang)} {p.last_name}",
                "first": p.first_name,
                "phone": phone or format_any(p.landline),
                "email": email or "-",
                "order": rng.choice(orders) if orders else f"O-{rng.randint(500_001, 509_999)}",
                "amount": f"{rng.lognormvariate(3.5, 0.6):.2f} EUR",
                "date": (moment.date() - timedelta(days=rng.randint(1, 40))).isoformat(),
            }
            notes = rng.choice(CALL_NOTES[lang]).format(**fill)
            if caller and rng.random() < 0.3:
                notes = f"{'Anrufer' if lang == 'de' else 'Caller'}: {caller}. {notes}"
            agent = f"agent{rng.randint(1, 30):02d}"
            duration = str(int(rng.lognormvariate(5.3, 0.6)))
            calls.append((moment, i, p, [agent, caller, phone, duration, notes]))
        calls.sort(key=lambda c: (c[0], c[1]))
        rows: list[list[str]] = []
        for i, (moment, _, p, row) in enumerate(calls):
            cid = f"CALL-{700_001 + i}"
            rows.append([cid, _when(moment, p), *row])
            self.truth.append(("calls", cid, p.pid))
        path = self.out / "call_notes.csv"
        header = ("call_id", "started_at", "agent", "caller", "phone_number", "duration_s")
        n = write_csv(path, (*header, "notes"), rows)
        map_path = write_map(
            self.out / "calls.map.yaml", _CALLS_MAP, kind="interactions", channel="call"
        )
        return SiloFile(path, "calls", "interactions", map_path, n)

    def consents(self, planted: list[Individual]) -> tuple[SiloFile, list[PlantedWithdrawal]]:
        rng = self.rng
        events: list[tuple[datetime, int, Individual, list[str]]] = []
        marked = {p.pid for p in planted}
        for p in self.persons:
            cno = self.crm_no.get(p.pid)
            if p.pid in marked:
                assert cno is not None and p.email is not None
                granted = random_moment(rng, date(2024, 3, 1), date(2024, 12, 31))
                events.append(
                    (granted, len(events), p, [p.email, cno, "marketing_email", "granted", "form"])
                )
                withdrawn = random_moment(rng, date(2026, 1, 1), date(2026, 6, 30))
                events.append(
                    (
                        withdrawn,
                        len(events),
                        p,
                        [p.alt_email, "", "marketing_email", "withdrawn", "unsubscribe_link"],
                    )
                )
                continue
            if cno is not None and rng.random() < 0.55:
                email = p.email or p.household_email or ""
                for purpose in rng.sample(_PURPOSES, rng.choice((1, 1, 2, 3))):
                    moment = random_moment(rng, date(2024, 3, 1), date(2026, 6, 30))
                    status = "granted" if rng.random() < 0.7 else "denied"
                    events.append((moment, len(events), p, [email, cno, purpose, status, "form"]))
                    if status == "granted" and rng.random() < 0.08:
                        later = random_moment(rng, moment.date() + timedelta(days=1), _END)
                        row = [email, cno, purpose, "withdrawn", "call"]
                        events.append((later, len(events), p, row))
            elif p.pid in self.order_email and rng.random() < 0.3:
                moment = random_moment(rng, _START, _END)
                row = [self.order_email[p.pid], "", "marketing_email", "granted", "checkout"]
                events.append((moment, len(events), p, row))
        events.sort(key=lambda e: (e[0], e[1]))
        rows = [[*v[:4], _when(m, p), v[4]] for m, _, p, v in events]
        path = self.out / "consents.csv"
        header = ("email", "customer_no", "purpose", "status", "timestamp", "method")
        n = write_csv(path, header, rows)
        map_path = write_map(self.out / "consents.map.yaml", _CONSENTS_MAP, kind="consents")
        withdrawals = [
            PlantedWithdrawal(p.pid, self.crm_no[p.pid], self.orders_of[p.pid][0], p.alt_email)
            for p in planted
        ]
        return SiloFile(path, "crm", "consents", map_path, n), withdrawals


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def generate_multisilo(out_dir: Path, *, people: int = 2000, seed: int = 17) -> MultiSiloManifest:
    """Write the multi-silo company into out_dir and return its manifest.

    Files: crm_customers.csv (records, country column), shop_orders.jsonl (interactions; second
    e-mails, typos, a shipping address on most), call_notes.csv (interactions; caller name and
    national number, no country), consents.csv (kind consents); a map file for each; truth.csv
    (records and interactions, not consents) and persons.csv. Deterministic per seed.
    """
    if people < 50:
        raise ValueError("generate_multisilo needs at least 50 people")
    out, rng = start(out_dir, seed)
    builder = _builder(seed, rng)
    persons: list[Individual] = []
    countries = list(_COUNTRY_WEIGHTS)
    while len(persons) < people:
        # Every country early on, so that even a small company has all seven.
        n = len(persons)
        country = countries[n] if n < len(countries) else _pick(rng, _COUNTRY_WEIGHTS)
        persons += builder.household(_pick(rng, _KIND_WEIGHTS), country)
    persons = persons[:people]
    company = _Company(out, rng, persons)
    crm, broken = company.crm()
    eligible = [p for p in persons if p.pid in company.crm_no and p.email is not None]
    planted = rng.sample(eligible, max(1, people // 1000))
    planted_ids = {p.pid for p in planted}
    orders = company.orders(planted_ids)
    calls = company.calls(planted_ids)
    consents, withdrawals = company.consents(planted)
    truth_path = write_truth(out, company.truth)
    persons_path = write_persons(out / "persons.csv", persons)
    files = [crm, orders, calls, consents]
    return MultiSiloManifest(
        out_dir=out,
        files=files,
        people=len(persons),
        truth_path=truth_path,
        persons_path=persons_path,
        persons=tuple(persons),
        withdrawals=tuple(withdrawals),
        broken_rows=broken,
        counts={f"{f.source}/{f.kind}": f.rows for f in files},
    )
