"""An outside check: synthetic identity data with ground truth, not derived from custos's generators.

Written for custos as an independent test of its identity resolution by an author who did not
read ``custos.synthetic`` (nor the rest of custos's generators): its own households (families,
twins, a father and son of one name with or without Jr/Sr, couples, flatmates, singles in six
countries, sharing a street, a landline, sometimes a family e-mail), its own nicknames, typos,
date and phone formats. Names, streets, cities and postcodes come from Faker's locale
vocabularies (MIT licence); phone numbers are drawn at random and kept only where
``phonenumbers`` calls them valid. Every person is synthetic; any likeness to a real one is
chance.

Two data sets, each a folder:

* ``households``: ``crm.csv`` (one record per person, some twice; a ``phone`` column - the
  mobile, else the landline, since custos takes one column per field - beside the ``mobile``
  and ``landline`` it was taken from, kept as extra contact columns) and ``orders.csv``
  (shop orders under a full name, a nickname now and then, the family e-mail or landline);
* ``multisilo``: ``crm.csv`` (one phone), ``orders.csv`` and ``calls.csv`` (call notes: a
  caller's name as said - "Mrs Smith", a first name alone, nothing -, a national number with
  no country, sometimes another member's landline or an unknown phone, an order number quoted);

each with ``truth.csv`` (source, record_id, person_id; call_kind on multisilo), ``persons.csv``
(person_id, household_id, household_kind, ...) and, for custos, one map file per silo
(:data:`MAPS`, as the outside check ingested them). ``bench/identity.py`` scores custos and
Splink on them as ``outside-households:SEED`` and ``outside-multisilo:SEED``.

    python bench/outside_people.py OUTDIR [--seed N]   # writes OUTDIR/households, OUTDIR/multisilo
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers as pn
from faker import Faker
from phonenumbers import PhoneNumberFormat as F
from phonenumbers import PhoneNumberType as T

LOCALE = {"US": "en_US", "GB": "en_GB", "DE": "de_DE", "FR": "fr_FR", "NL": "nl_NL", "ES": "es_ES"}
COUNTRY_NAMES = {
    "US": ["US", "USA", "United States"],
    "GB": ["GB", "UK", "United Kingdom"],
    "DE": ["DE", "Germany", "Deutschland"],
    "FR": ["FR", "France"],
    "NL": ["NL", "Netherlands"],
    "ES": ["ES", "Spain"],
}
DOMAINS = {
    "US": ["gmail.com", "yahoo.com", "outlook.com", "aol.com", "icloud.com", "comcast.net"],
    "GB": ["gmail.com", "hotmail.co.uk", "btinternet.com", "yahoo.co.uk", "sky.com"],
    "DE": ["web.de", "gmx.de", "t-online.de", "gmail.com", "posteo.de"],
    "FR": ["orange.fr", "free.fr", "laposte.net", "gmail.com", "sfr.fr"],
    "NL": ["ziggo.nl", "kpnmail.nl", "gmail.com", "hotmail.nl", "xs4all.nl"],
    "ES": ["gmail.com", "hotmail.es", "telefonica.net", "yahoo.es"],
}
# formal name -> nicknames (per locale group); used for ~12% of persons and for shop typos
NICK = {
    "en": {
        "William": ["Bill", "Will", "Billy"],
        "Katherine": ["Kate", "Katie", "Kathy"],
        "Robert": ["Bob", "Rob", "Bobby"],
        "Elizabeth": ["Liz", "Beth", "Lizzie"],
        "Margaret": ["Maggie", "Peggy"],
        "James": ["Jim", "Jimmy"],
        "Richard": ["Rick", "Dick"],
        "Michael": ["Mike"],
        "Thomas": ["Tom", "Tommy"],
        "Jennifer": ["Jen", "Jenny"],
        "Christopher": ["Chris"],
        "Alexander": ["Alex"],
        "Daniel": ["Dan", "Danny"],
        "Joseph": ["Joe"],
        "Patricia": ["Pat", "Trish"],
        "Susan": ["Sue"],
        "Rebecca": ["Becky"],
        "Edward": ["Ed", "Ted"],
        "Anthony": ["Tony"],
        "Victoria": ["Vicky"],
    },
    "de": {
        "Johannes": ["Hans"],
        "Josef": ["Sepp"],
        "Christine": ["Tina"],
        "Katharina": ["Kathi"],
        "Margarete": ["Grete"],
        "Elisabeth": ["Lisa", "Sissi"],
        "Alexander": ["Alex"],
        "Friedrich": ["Fritz"],
        "Franziska": ["Franzi"],
        "Gabriele": ["Gabi"],
        "Wolfgang": ["Wolf"],
        "Susanne": ["Susi"],
        "Matthias": ["Matze"],
    },
    "fr": {
        "Frédéric": ["Fred"],
        "Catherine": ["Cathy"],
        "Nicolas": ["Nico"],
        "Alexandre": ["Alex"],
        "Christophe": ["Chris"],
        "Isabelle": ["Isa"],
        "Emmanuel": ["Manu"],
        "Dominique": ["Dom"],
    },
    "nl": {
        "Johannes": ["Jan", "Hans"],
        "Cornelis": ["Kees"],
        "Jacobus": ["Koos"],
        "Hendrik": ["Henk"],
        "Petrus": ["Piet"],
        "Willem": ["Wim"],
        "Adrianus": ["Adrie"],
        "Gerardus": ["Gerard", "Gert"],
    },
    "es": {
        "Francisco": ["Paco", "Curro"],
        "José": ["Pepe"],
        "Dolores": ["Lola"],
        "Manuel": ["Manolo"],
        "Ignacio": ["Nacho"],
        "Guadalupe": ["Lupe"],
        "Concepción": ["Concha"],
        "Enrique": ["Quique"],
    },
}
LANG = {"US": "en", "GB": "en", "DE": "de", "FR": "fr", "NL": "nl", "ES": "es"}
FEMALE_FORMAL = {
    "Katherine",
    "Elizabeth",
    "Margaret",
    "Jennifer",
    "Patricia",
    "Susan",
    "Rebecca",
    "Victoria",
    "Christine",
    "Katharina",
    "Margarete",
    "Elisabeth",
    "Franziska",
    "Gabriele",
    "Susanne",
    "Catherine",
    "Isabelle",
    "Dominique",
    "Dolores",
    "Guadalupe",
    "Concepción",
}
# area / mobile prefixes (national significant number starts)
FIXED_PREFIX = {
    "US": ["956", "212", "415", "312", "713", "617", "206", "305", "404", "503"],
    "GB": ["20", "161", "121", "131", "113", "117", "1865", "1223"],
    "DE": ["30", "40", "89", "221", "69", "711", "5921", "4421", "182"],
    "FR": ["1", "2", "3", "4", "5"],
    "NL": ["20", "10", "30", "598", "70", "50"],
    "ES": ["91", "93", "96", "95", "94"],
}
MOBILE_PREFIX = {
    "US": FIXED_PREFIX["US"],
    "GB": ["7700", "7911", "7400", "7521", "7984"],
    "DE": ["151", "160", "170", "171", "172", "176", "179"],
    "FR": ["6", "7"],
    "NL": ["6"],
    "ES": ["6", "7"],
}


def ascii_fold(s: str) -> str:
    s = s.replace("ß", "ss").replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    s = unicodedata.normalize("NFKD", s)
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in s if not unicodedata.combining(c)).lower())


@dataclass
class Person:
    pid: str
    hid: str
    country: str
    first: str
    last: str
    gender: str
    dob: dt.date
    suffix: str | None = None  # "Jr" / "Sr"
    email: str | None = None
    email2: str | None = None
    mobile: pn.PhoneNumber | None = None
    role: str = "adult"  # adult, child, twin, flatmate
    parent_ids: list[str] = field(default_factory=list)
    crm_phone: str | None = None  # (multisilo) the phone the CRM record shows, as written
    crm_phone_num: pn.PhoneNumber | None = None  # ... and which number that is


@dataclass
class Household:
    hid: str
    country: str
    kind: str
    street: str
    postcode: str
    city: str
    landline: pn.PhoneNumber | None
    family_email: str | None
    members: list[Person] = field(default_factory=list)


class Gen:
    def __init__(self, seed: int, countries: list[str]) -> None:
        self.rng = random.Random(seed)
        self.countries = countries
        self.cweights: dict[str, int] = {}  # country -> weight of its households
        self.fakers = {c: Faker(LOCALE[c]) for c in countries}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 100 + i)
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self.pcount = 0
        self.hcount = 0

    # ---- atoms -------------------------------------------------------
    def phone(self, c: str, mobile: bool) -> pn.PhoneNumber:
        r = self.rng
        pref = MOBILE_PREFIX[c] if mobile else FIXED_PREFIX[c]
        want = (
            {T.MOBILE, T.FIXED_LINE_OR_MOBILE} if mobile else {T.FIXED_LINE, T.FIXED_LINE_OR_MOBILE}
        )
        for _ in range(2000):
            p = r.choice(pref)
            length = {"US": 10, "GB": 10, "FR": 9, "NL": 9, "ES": 9}.get(c) or r.choice(
                [10, 11] if mobile else [9, 10, 11]
            )
            nsn = p + "".join(r.choice("0123456789") for _ in range(length - len(p)))
            if c == "US":
                nsn = nsn[:3] + r.choice("23456789") + nsn[4:]
            num = pn.parse("+" + str(pn.country_code_for_region(c)) + nsn)
            if pn.is_valid_number(num) and pn.number_type(num) in want:
                e = pn.format_number(num, F.E164)
                if e not in self.used_phones:
                    self.used_phones.add(e)
                    return num
        raise RuntimeError(f"no phone for {c}")

    def fmt_phone(self, num: pn.PhoneNumber, c: str, style: str | None = None) -> str:
        r = self.rng
        style = style or r.choice(["e164", "intl", "national", "national", "compact", "00"])
        nat = pn.format_number(num, F.NATIONAL)
        if style == "e164":
            return pn.format_number(num, F.E164)
        if style == "intl":
            return pn.format_number(num, F.INTERNATIONAL)
        if style == "00":
            return "00" + pn.format_number(num, F.INTERNATIONAL)[1:]
        if style == "compact":
            return re.sub(r"\D", "", nat)
        return self.national_variant(num, c)

    def national_variant(self, num: pn.PhoneNumber, c: str) -> str:
        """national format as people write it: no country code"""
        r = self.rng
        nat = pn.format_number(num, F.NATIONAL)
        digits = re.sub(r"\D", "", nat)
        if c == "US":
            d = digits[-10:]
            return r.choice(
                [
                    f"({d[:3]}) {d[3:6]}-{d[6:]}",
                    f"{d[:3]}-{d[3:6]}-{d[6:]}",
                    f"{d[:3]}.{d[3:6]}.{d[6:]}",
                    nat,
                ]
            )
        if c == "DE":
            parts = nat.split(" ", 1)
            if len(parts) == 2:
                return r.choice(
                    [
                        nat,
                        parts[0] + "/" + parts[1].replace(" ", ""),
                        parts[0] + " " + parts[1].replace(" ", ""),
                        parts[0] + "-" + parts[1].replace(" ", ""),
                    ]
                )
        if c == "NL":
            return r.choice([nat, nat.replace(" ", "-", 1), digits])
        if c == "FR":
            return r.choice([nat, nat.replace(" ", "."), digits])
        return nat

    def dob(self, age_lo: float, age_hi: float) -> dt.date:
        today = dt.date(2024, 6, 1)
        days = self.rng.randint(int(age_lo * 365.25), int(age_hi * 365.25))
        return today - dt.timedelta(days=days)

    def first_name(self, c: str, gender: str, nick_p: float = 0.12) -> str:
        r = self.rng
        lang = LANG[c]
        if r.random() < nick_p:
            cands = [n for n in NICK[lang] if (n in FEMALE_FORMAL) == (gender == "F")]
            if cands:
                return r.choice(cands)
        f = self.fakers[c]
        name = f.first_name_female() if gender == "F" else f.first_name_male()
        return name.split(" ")[0] if r.random() < 0.8 else name

    def last_name(self, c: str) -> str:
        return self.fakers[c].last_name()

    def email_for(self, first: str, last: str, c: str, year: int, style: str | None = None) -> str:
        r = self.rng
        fa, la = ascii_fold(first), ascii_fold(last)
        for i in range(50):
            s = style or r.choice(["f.l", "fl", "f_l", "il", "fl##", "f.l##", "nick"])
            if s == "f.l":
                u = f"{fa}.{la}"
            elif s == "fl":
                u = f"{fa}{la}"
            elif s == "f_l":
                u = f"{fa}_{la}"
            elif s == "il":
                u = f"{fa[:1]}{la}"
            elif s == "fl##":
                u = f"{fa}{la}{year % 100:02d}"
            elif s == "f.l##":
                u = f"{fa}.{la}{r.randint(1, 999)}"
            else:
                u = f"{fa[:3]}{la[:4]}{r.randint(1, 99)}"
            if i > 5:
                u += str(r.randint(1, 9999))
            e = f"{u}@{r.choice(DOMAINS[c])}"
            if e not in self.used_emails:
                self.used_emails.add(e)
                return e
            style = None
        raise RuntimeError

    def new_person(
        self,
        h: Household,
        gender: str,
        age_lo: float,
        age_hi: float,
        first: str | None = None,
        last: str | None = None,
        role: str = "adult",
    ) -> Person:
        self.pcount += 1
        c = h.country
        p = Person(
            pid=f"P{self.pcount:05d}",
            hid=h.hid,
            country=c,
            first=first or self.first_name(c, gender),
            last=last or self.last_name(c),
            gender=gender,
            dob=self.dob(age_lo, age_hi),
            role=role,
        )
        age = (dt.date(2024, 6, 1) - p.dob).days / 365.25
        r = self.rng
        has_email = r.random() < (0.95 if age >= 18 else 0.7 if age >= 14 else 0.0)
        has_mobile = r.random() < (0.85 if age >= 18 else 0.7 if age >= 14 else 0.0)
        if has_email:
            p.email = self.email_for(p.first, p.last, c, p.dob.year)
            if r.random() < 0.3:
                p.email2 = self.email_for(p.first, p.last, c, p.dob.year)
        if has_mobile:
            p.mobile = self.phone(c, mobile=True)
        h.members.append(p)
        return p

    def household(self, kind: str, country: str | None = None) -> Household:
        r = self.rng
        self.hcount += 1
        c = (
            country
            or r.choices(self.countries, weights=[self.cweights[x] for x in self.countries])[0]
        )
        f = self.fakers[c]
        street = f.street_address()
        landline_p = {"flatmates": 0.4, "single": 0.35}.get(kind, 0.7)
        h = Household(
            hid=f"H{self.hcount:04d}",
            country=c,
            kind=kind,
            street=street,
            postcode=f.postcode(),
            city=f.city(),
            landline=self.phone(c, mobile=False) if r.random() < landline_p else None,
            family_email=None,
        )
        if kind == "single":
            self.new_person(h, r.choice("MF"), 19, 85)
        elif kind == "couple":
            shared = r.random() < 0.6
            a = self.new_person(h, "M", 24, 80)
            self.new_person(h, "F", max(20, 0), 80, last=a.last if shared else None)
        elif kind == "flatmates":
            for _ in range(r.randint(2, 4)):
                self.new_person(h, r.choice("MF"), 19, 35, role="flatmate")
        elif kind in ("family", "twins", "fatherson"):
            shared = r.random() < 0.75
            fa_first = None
            if kind == "fatherson":
                fa_first = r.choice(
                    [n for n in NICK[LANG[c]] if n not in FEMALE_FORMAL]
                    + [self.first_name(c, "M", 0)]
                )
            fa = self.new_person(h, "M", 45, 70, first=fa_first)
            mo = self.new_person(h, "F", 42, 68, last=fa.last if shared else None)
            kid_last = fa.last
            if kind == "fatherson":
                son = self.new_person(h, "M", 16, 25, first=fa.first, last=fa.last, role="child")
                son.parent_ids = [fa.pid, mo.pid]
                if r.random() < 0.6:  # marked Jr/Sr in (some of) the data
                    son.suffix, fa.suffix = "Jr", "Sr"
                nkids = r.randint(0, 1)
            elif kind == "twins":
                d = self.dob(8, 25)
                g1, g2 = r.choice("MF"), r.choice("MF")
                n1 = self.first_name(c, g1, 0)
                n2 = self.first_name(c, g2, 0)
                while ascii_fold(n2) == ascii_fold(n1):
                    n2 = self.first_name(c, g2, 0)
                if r.random() < 0.3:  # near names: Paul/Paula, Nicholas/Nicole
                    n1, n2 = r.choice(
                        [
                            ("Paul", "Paula"),
                            ("Nicholas", "Nicole"),
                            ("Jan", "Jana"),
                            ("Daniel", "Daniela"),
                            ("Simon", "Simone"),
                            ("Mario", "Maria"),
                            ("Louis", "Louise"),
                            ("Alexander", "Alexandra"),
                        ]
                    )
                    g1, g2 = "M", "F"
                for g, n in ((g1, n1), (g2, n2)):
                    k = self.new_person(h, g, 10, 10, first=n, last=kid_last, role="twin")
                    k.dob = d
                    age = (dt.date(2024, 6, 1) - d).days / 365.25
                    # twins of 14+ have personal e-mails (recreate with the fixed dob)
                    if age >= 14:
                        k.email = self.email_for(k.first, k.last, c, d.year)
                        k.mobile = k.mobile or (self.phone(c, True) if r.random() < 0.8 else None)
                    else:
                        k.email = None
                        k.mobile = None
                    k.parent_ids = [fa.pid, mo.pid]
                nkids = r.randint(0, 1)
            else:
                nkids = r.randint(1, 3)
            for _ in range(nkids):
                k = self.new_person(h, r.choice("MF"), 8, 25, last=kid_last, role="child")
                k.parent_ids = [fa.pid, mo.pid]
            if r.random() < 0.25:
                la = ascii_fold(fa.last)
                fam = {
                    "DE": f"familie.{la}",
                    "NL": f"fam.{la}",
                    "FR": f"famille.{la}",
                    "ES": f"familia.{la}",
                }.get(c, f"the.{la}s")
                e = f"{fam}@{r.choice(DOMAINS[c])}"
                if e not in self.used_emails:
                    self.used_emails.add(e)
                    h.family_email = e
        return h


# ---- typos -----------------------------------------------------------
def transpose(s: str, r: random.Random) -> str:
    if len(s) < 4:
        return s
    i = r.randint(1, len(s) - 3)
    return s[:i] + s[i + 1] + s[i] + s[i + 2 :]


def drop_char(s: str, r: random.Random) -> str:
    if len(s) < 5:
        return s
    i = r.randint(1, len(s) - 2)
    return s[:i] + s[i + 1 :]


def nickname(first: str, c: str, r: random.Random) -> str | None:
    n = NICK[LANG[c]].get(first)
    return r.choice(n) if n else None


def name_variant(
    first: str, c: str, r: random.Random, p_nick: float = 0.6, p_typo: float = 0.08
) -> str:
    nk = nickname(first, c, r)
    if nk and r.random() < p_nick:
        return nk
    x = r.random()
    if x < p_typo:
        return transpose(first, r)
    if x < p_typo * 1.5:
        return drop_char(first, r)
    return first


def fmt_date(d: dt.date, c: str, r: random.Random, styles: list[str] | None = None) -> str:
    s = r.choice(styles or ["iso", "iso", "dot", "slash", "long"])
    if s == "iso":
        return d.isoformat()
    if s == "dot":
        return d.strftime("%d.%m.%Y")
    if s == "slash":
        return d.strftime("%m/%d/%Y") if c == "US" else d.strftime("%d/%m/%Y")
    return d.strftime("%B %-d, %Y") if c in ("US", "GB") else d.strftime("%d.%m.%Y")


def street_variant(s: str, r: random.Random) -> str:
    if r.random() < 0.4:
        s = (
            s.replace("Straße", "Str.")
            .replace("straße", "str.")
            .replace("Street", "St")
            .replace("Road", "Rd")
            .replace("Avenue", "Ave")
            .replace("Laan", "ln")
            .replace("Calle", "C/")
        )
    if r.random() < 0.1:
        s = s.upper()
    return s


def full_name(first: str, last: str, suffix: str | None, c: str, r: random.Random) -> str:
    x = r.random()
    sfx = f" {suffix}." if suffix and r.random() < 0.7 else ""
    if x < 0.7:
        return f"{first} {last}{sfx}"
    if x < 0.85:
        return f"{last}, {first}"
    return f"{first} {last.upper()}{sfx}"


# ---- data sets --------------------------------------------------------
#: The shop export's columns (both data sets).
ORDER_COLUMNS = [
    "order_id",
    "order_date",
    "customer_name",
    "email",
    "phone",
    "ship_street",
    "ship_postcode",
    "ship_city",
    "ship_country",
    "birthday",
    "total",
]


def write_csv(
    path: Path, rows: list[dict[str, Any]], cols: list[str], delimiter: str = ","
) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, delimiter=delimiter, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in cols})


def write_persons(path: Path, hhs: list[Household]) -> None:
    rows = []
    for h in hhs:
        for p in h.members:
            rows.append(
                dict(
                    person_id=p.pid,
                    household_id=h.hid,
                    household_kind=h.kind,
                    country=h.country,
                    first=p.first,
                    last=p.last,
                    suffix=p.suffix or "",
                    dob=p.dob.isoformat(),
                    email=p.email,
                    email2=p.email2,
                    mobile=pn.format_number(p.mobile, F.E164) if p.mobile else "",
                    landline=pn.format_number(h.landline, F.E164) if h.landline else "",
                    family_email=h.family_email,
                    role=p.role,
                )
            )
    write_csv(path, rows, list(rows[0]))


def orders_for(
    g: Gen,
    h: Household,
    p: Person,
    n: int,
    truth: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    p_email2: float = 0.15,
    p_typo: float = 0.08,
) -> None:
    r = g.rng
    c = h.country
    age = (dt.date(2024, 6, 1) - p.dob).days / 365.25
    parents = [m for m in h.members if m.pid in p.parent_ids]
    for _ in range(n):
        oid = f"O-{len(orders) + 500001}"
        first = name_variant(p.first, c, r, p_nick=0.35, p_typo=p_typo)
        last = transpose(p.last, r) if r.random() < p_typo * 0.6 else p.last
        # e-mail
        if age < 16 or p.email is None:
            email = h.family_email or (
                r.choice(parents).email if parents and parents[0].email else None
            )
        elif p.email2 and r.random() < p_email2 / 0.3:
            email = p.email2
        elif h.family_email and r.random() < 0.2:
            email = h.family_email
        else:
            email = p.email if r.random() > 0.04 else None
        # phone
        x = r.random()
        ph = None
        if p.mobile and x < 0.6:
            ph = p.mobile
        elif h.landline and x < 0.85:
            ph = h.landline
        phone = g.fmt_phone(ph, c) if ph else None
        row = dict(
            order_id=oid,
            order_date=(dt.date(2023, 1, 1) + dt.timedelta(days=r.randint(0, 500))).isoformat(),
            customer_name=full_name(first, last, p.suffix, c, r),
            email=email,
            phone=phone,
            ship_street=street_variant(h.street, r),
            ship_postcode=h.postcode if r.random() > 0.03 else "",
            ship_city=h.city,
            ship_country=r.choice(COUNTRY_NAMES[c]),
            birthday=fmt_date(p.dob, c, r, ["iso", "dot", "slash"]) if r.random() < 0.15 else "",
            total=f"{r.uniform(9, 400):.2f}",
        )
        orders.append(row)
        truth.append(dict(source="shop", record_id=oid, person_id=p.pid))


def crm_row(
    g: Gen, h: Household, p: Person, cid: str, dup: bool = False, single_phone: bool = False
) -> dict[str, Any]:
    r = g.rng
    c = h.country
    first = name_variant(p.first, c, r, p_nick=0.5, p_typo=0.1) if dup else p.first
    last = p.last
    if p.suffix == "Jr" and r.random() < 0.5:
        last = f"{p.last} Jr."
    elif p.suffix == "Sr" and r.random() < 0.3:
        last = f"{p.last} Sr."
    dob = None if r.random() < (0.25 if dup else 0.08) else fmt_date(p.dob, c, r)
    email = p.email if not dup else (p.email2 or p.email)
    if dup and r.random() < 0.2:
        email = None
    row = dict(
        customer_id=cid,
        first_name=first,
        last_name=last,
        birth_date=dob,
        email=email,
        street=h.street if not dup else street_variant(h.street, r),
        postcode=h.postcode,
        city=h.city,
        country=r.choice(COUNTRY_NAMES[c]) if not single_phone else c,
        created=(dt.date(2018, 1, 1) + dt.timedelta(days=r.randint(0, 2000))).isoformat(),
    )
    if single_phone:
        ph = p.mobile or h.landline
        row["phone"] = (
            g.fmt_phone(
                ph, c, r.choice(["e164", "e164", "intl", "national", "national", "compact"])
            )
            if ph
            else None
        )
    else:
        row["mobile"] = g.fmt_phone(p.mobile, c) if p.mobile and r.random() > 0.05 else None
        row["landline"] = g.fmt_phone(h.landline, c) if h.landline and r.random() > 0.2 else None
    return row


def households_set(seed: int, out: Path, n_households: int = 270) -> list[Household]:
    g = Gen(seed, ["US", "GB", "DE", "FR", "NL", "ES"])
    g.cweights = {"US": 25, "GB": 20, "DE": 20, "FR": 12, "NL": 12, "ES": 11}
    r = g.rng
    kinds = ["family", "twins", "fatherson", "couple", "flatmates", "single"]
    hhs = [
        g.household(r.choices(kinds, weights=[27, 8, 7, 20, 9, 29])[0]) for _ in range(n_households)
    ]
    crm: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    for h in hhs:
        for p in h.members:
            cid = f"C{100000 + len(crm) + 1}"
            crm.append(crm_row(g, h, p, cid))
            truth.append(dict(source="crm", record_id=cid, person_id=p.pid))
            if r.random() < 0.08:
                cid = f"C{100000 + len(crm) + 1}"
                crm.append(crm_row(g, h, p, cid, dup=True))
                truth.append(dict(source="crm", record_id=cid, person_id=p.pid))
            orders_for(g, h, p, r.choice([1, 1, 2, 2, 3]), truth, orders)
    for row in crm:  # custos takes one phone per record: the mobile, else the landline
        row["phone"] = row.get("mobile") or row.get("landline")
    out.mkdir(parents=True, exist_ok=True)
    r.shuffle(crm)
    r.shuffle(orders)
    write_csv(
        out / "crm.csv",
        crm,
        [
            "customer_id",
            "first_name",
            "last_name",
            "birth_date",
            "email",
            "phone",
            "mobile",
            "landline",
            "street",
            "postcode",
            "city",
            "country",
            "created",
        ],
    )
    write_csv(
        out / "orders.csv",
        orders,
        ORDER_COLUMNS,
    )
    write_csv(out / "truth.csv", truth, ["source", "record_id", "person_id"])
    write_persons(out / "persons.csv", hhs)
    return hhs


NOTES = {
    "en": [
        "Customer asked where the parcel is{ref}. Promised a callback.",
        "Complaint about a damaged item{ref}, refund issued.",
        "Wants to change the delivery address{ref}.",
        "Asked about the loyalty points, very friendly.",
        "Caller upset about being charged twice{ref}. Escalated to billing.",
        "Question about the return label{ref}.",
    ],
    "de": [
        "Kunde fragt nach dem Paket{ref}. Rückruf zugesagt.",
        "Beschwerde über beschädigte Ware{ref}, Gutschrift erstellt.",
        "Möchte die Lieferadresse ändern{ref}.",
        "Fragt nach Bonuspunkten, sehr freundlich.",
        "Ärger wegen doppelter Abbuchung{ref}, an Buchhaltung weitergeleitet.",
    ],
    "fr": [
        "Le client demande où est son colis{ref}.",
        "Réclamation pour un article abîmé{ref}, remboursement fait.",
        "Souhaite changer l'adresse de livraison{ref}.",
        "Question sur les points de fidélité.",
    ],
    "nl": [
        "Klant vraagt waar het pakket is{ref}.",
        "Klacht over beschadigd artikel{ref}, terugbetaling gedaan.",
        "Wil het bezorgadres wijzigen{ref}.",
        "Vraag over spaarpunten.",
    ],
}


def multisilo_set(
    seed: int, out: Path, n_persons: int = 1500
) -> tuple[list[Household], dict[str, int]]:
    g = Gen(seed + 7, ["US", "GB", "DE", "FR", "NL"])
    g.cweights = {"US": 30, "GB": 20, "DE": 25, "FR": 12, "NL": 13}
    r = g.rng
    hhs: list[Household] = []
    while sum(len(h.members) for h in hhs) < n_persons:
        hhs.append(
            g.household(
                r.choices(
                    ["single", "couple", "family", "twins", "fatherson", "flatmates"],
                    weights=[38, 25, 25, 4, 3, 5],
                )[0]
            )
        )
    crm: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    person_orders: dict[str, list[str]] = {}
    for h in hhs:
        for p in h.members:
            cid = f"C{300000 + len(crm) + 1}"
            crm.append(crm_row(g, h, p, cid, single_phone=True))
            truth.append(dict(source="crm", record_id=cid, person_id=p.pid))
            p.crm_phone = crm[-1]["phone"]
            p.crm_phone_num = (p.mobile or h.landline) if crm[-1]["phone"] else None
            if r.random() < 0.6:
                n0 = len(orders)
                orders_for(
                    g, h, p, r.choice([1, 1, 2, 3]), truth, orders, p_email2=0.25, p_typo=0.15
                )
                person_orders[p.pid] = [o["order_id"] for o in orders[n0:]]
    # calls
    stats: dict[str, int] = {}
    for h in hhs:
        c = h.country
        lang = LANG[c] if LANG[c] in NOTES else "en"
        for p in h.members:
            if r.random() > 0.5:
                continue
            for _ in range(r.choice([1, 1, 1, 2])):
                # which phone?
                others_landline = (
                    h.landline is not None
                    and p.crm_phone_num != h.landline
                    and any(m.pid != p.pid and m.crm_phone_num == h.landline for m in h.members)
                )
                x = r.random()
                if others_landline and x < 0.35:
                    num, kind = h.landline, "other_member_landline"
                elif p.crm_phone_num is not None and x < 0.85:
                    num, kind = p.crm_phone_num, "own_crm_phone"
                elif x < 0.93:
                    num, kind = g.phone(c, mobile=True), "unknown_phone"
                else:
                    num, kind = None, "no_phone"
                stats[kind] = stats.get(kind, 0) + 1
                y = r.random()
                first = name_variant(p.first, c, r, p_nick=0.3, p_typo=0.05)
                title = {
                    "en": ("Mr", "Mrs"),
                    "de": ("Herr", "Frau"),
                    "fr": ("M.", "Mme"),
                    "nl": ("dhr.", "mevr."),
                }[LANG[c] if LANG[c] != "es" else "en"]
                if y < 0.55:
                    cname = f"{first} {p.last}"
                elif y < 0.7:
                    cname = f"{title[0] if p.gender == 'M' else title[1]} {p.last}"
                elif y < 0.8:
                    cname = f"{first[0]}. {p.last}"
                elif y < 0.9:
                    cname = first
                else:
                    cname = ""
                ref = ""
                if p.pid in person_orders and r.random() < 0.3:
                    ref = {
                        "en": " (order {})",
                        "de": " (Bestellung {})",
                        "fr": " (commande {})",
                        "nl": " (bestelling {})",
                    }[lang].format(r.choice(person_orders[p.pid]))
                cid = f"CALL-{len(calls) + 70001}"
                calls.append(
                    dict(
                        call_id=cid,
                        started_at=(
                            dt.datetime(2024, 1, 1) + dt.timedelta(minutes=r.randint(0, 200000))
                        ).isoformat(),
                        caller_name=cname,
                        caller_phone=g.national_variant(num, c) if num else "",
                        agent=f"agent{r.randint(1, 12)}",
                        note=r.choice(NOTES[lang]).format(ref=ref),
                        _kind=kind,
                    )
                )
                truth.append(dict(source="calls", record_id=cid, person_id=p.pid, call_kind=kind))
    out.mkdir(parents=True, exist_ok=True)
    r.shuffle(crm)
    r.shuffle(orders)
    write_csv(
        out / "crm.csv",
        crm,
        [
            "customer_id",
            "first_name",
            "last_name",
            "birth_date",
            "email",
            "phone",
            "street",
            "postcode",
            "city",
            "country",
            "created",
        ],
    )
    write_csv(
        out / "orders.csv",
        orders,
        ORDER_COLUMNS,
    )
    write_csv(
        out / "calls.csv",
        calls,
        ["call_id", "started_at", "caller_name", "caller_phone", "agent", "note"],
    )
    write_csv(out / "truth.csv", truth, ["source", "record_id", "person_id", "call_kind"])
    write_persons(out / "persons.csv", hhs)
    return hhs, stats


# ---- for custos ---------------------------------------------------------
# The map files the outside check ingested the silos with (custos takes one column per field:
# the households CRM's `phone` is its mobile, else its landline; both stay as contact columns).
_CRM = """\
fields:
  record_id: customer_id
  customer_id: customer_id
  first_name: first_name
  last_name: last_name
  date_of_birth: birth_date
  email: email
  phone: phone
  street: street
  postcode: postcode
  city: city
  country: country
categories:
  created: behaviour
"""
MAPS = {
    "crm_hh": _CRM + "  mobile: contact\n  landline: contact\n",
    "crm_ms": _CRM,
    "orders": """\
kind: records
fields:
  record_id: order_id
  full_name: customer_name
  email: email
  phone: phone
  street: ship_street
  postcode: ship_postcode
  city: ship_city
  country: ship_country
  date_of_birth: birthday
categories:
  order_date: behaviour
  total: financial
""",
    "calls": """\
kind: interactions
channel: call
fields:
  record_id: call_id
  timestamp: started_at
  full_name: caller_name
  phone: caller_phone
  text: note
categories:
  agent: behaviour
""",
}
# data set -> its silos: (file, custos source, kind, map)
SILOS = {
    "households": [
        ("crm.csv", "crm", "records", "crm_hh"),
        ("orders.csv", "shop", "records", "orders"),
    ],
    "multisilo": [
        ("crm.csv", "crm", "records", "crm_ms"),
        ("orders.csv", "shop", "records", "orders"),
        ("calls.csv", "calls", "interactions", "calls"),
    ],
}


def write_set(kind: str, out: Path, seed: int) -> list[dict[str, str]]:
    """Write the data set ``kind`` (households or multisilo) into ``out`` with a map file per
    silo (``<map>.map.yaml``); return its silos (path, source, kind, map), in ingestion order."""
    if kind == "households":
        households_set(seed, out)
    elif kind == "multisilo":
        multisilo_set(seed, out)
    else:
        raise ValueError(f"unknown data set {kind!r}: households or multisilo")
    silos = []
    for file, source, silo_kind, map_name in SILOS[kind]:
        map_path = out / f"{map_name}.map.yaml"
        map_path.write_text(MAPS[map_name], encoding="utf-8")
        silos.append(
            {"path": str(out / file), "source": source, "kind": silo_kind, "map": str(map_path)}
        )
    return silos


def write(out_dir: Path, seed: int = 1) -> None:
    """Write both data sets: ``out_dir/households`` and ``out_dir/multisilo``."""
    for kind in SILOS:
        write_set(kind, out_dir / kind, seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    hh = households_set(a.seed, a.out / "households")
    print("households:", len(hh), "persons:", sum(len(h.members) for h in hh))
    ms, stats = multisilo_set(a.seed, a.out / "multisilo")
    print(
        "multisilo households:",
        len(ms),
        "persons:",
        sum(len(h.members) for h in ms),
        "calls:",
        stats,
    )


if __name__ == "__main__":
    main()
