"""Interaction and consent silos: shop orders, call notes, social posts, consent events."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import orjson

from custos.synthetic.clock import local_iso, random_moment
from custos.synthetic.geo import format_phone
from custos.synthetic.people import Person
from custos.synthetic.texts import CALL_NOTES, ORDER_COMMENTS, SOCIAL_POSTS
from custos.synthetic.vocab import ascii_fold
from custos.synthetic.world import SiloFile, World, phone_variant, write_csv, write_map

__all__ = ["write_calls", "write_consents", "write_orders", "write_social"]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


START = date(2025, 1, 1)
END = date(2026, 10, 31)
#: The event planted in the social posts: from this day (a price rise announced in Germany),
#: customers living in this country post mostly negative; everyone else as before.
PLANTED_EVENT = (date(2026, 3, 2), "DE")
_MOODS = ("positive",) * 7 + ("neutral",) * 7 + ("negative",) * 6
_MOODS_AFTER = ("positive",) * 2 + ("neutral",) * 5 + ("negative",) * 13
_ORDER_COUNTS = (0,) * 15 + (1,) * 25 + (2,) * 25 + (3,) * 17 + (4,) * 10 + (5,) * 5 + (6,) * 3
_MONTHS_EN = _words(
    "January February March April May June July August September October November December"
)
PURPOSES = ("marketing_email", "personalization", "analytics", "third_party_sharing")
_METHODS = ("form",) * 7 + ("checkout",) * 7 + ("call",) * 2 + ("api",) * 4


def _language(p: Person, rng: random.Random, other_rate: float) -> str:
    lang = p.language
    if rng.random() < other_rate:
        return "en" if lang == "de" else "de"
    return lang


def write_orders(w: World) -> SiloFile:
    """Write shop_orders.jsonl (+ orders.map.yaml); about 2 orders per shop account."""
    rng = w.rng
    events: list[tuple[datetime, int, Person, str, float, int, str | None]] = []
    for p, typed in w.shop_accounts:
        clean = typed.strip().lower()
        for _ in range(rng.choice(_ORDER_COUNTS)):
            moment = random_moment(rng, START, END)
            r = rng.random()
            if r < 0.86:
                email = clean
            elif r < 0.93:
                email = typed
            else:
                email = p.alt_email if clean == p.email else p.email
            items = rng.choice((1, 1, 1, 2, 2, 3, 4, 6))
            amount = round(sum(rng.lognormvariate(3.0, 0.6) for _ in range(items)), 2)
            lang = _language(p, rng, 0.1)
            comment = rng.choice(ORDER_COMMENTS[lang]) if rng.random() < 0.3 else None
            events.append((moment, len(events), p, email, amount, items, comment))
    events.sort(key=lambda e: (e[0], e[1]))
    path = w.out_dir / "shop_orders.jsonl"
    with path.open("wb") as fh:
        for i, (moment, _, p, email, amount, items, comment) in enumerate(events):
            oid = f"O-{100_001 + i}"
            w.orders_by_pid.setdefault(p.pid, []).append(oid)
            record = {
                "order_id": oid,
                "ordered_at": local_iso(moment, p.country, p.address.city),
                "buyer_email": email,
                "amount": amount,
                "items": items,
                "comment": comment,
            }
            fh.write(orjson.dumps(record) + b"\n")
            w.true("orders", oid, p)
    fields = {"record_id": "order_id", "timestamp": "ordered_at", "email": "buyer_email"}
    fields["text"] = "comment"
    map_path = write_map(
        w.out_dir / "orders.map.yaml", fields, kind="interactions", channel="order"
    )
    return SiloFile(path, "orders", "interactions", map_path, len(events))


def _title(p: Person, lang: str) -> str:
    if lang == "de":
        return f"{'Frau' if p.gender == 'f' else 'Herr'} {p.last_name}"
    return f"{'Mrs' if p.gender == 'f' else 'Mr'} {p.last_name}"


def _caller_name(p: Person, lang: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return p.full_name
    if r < 0.65:
        return _title(p, lang)
    if r < 0.75:
        return f"{p.last_name}, {p.first_name}"
    if r < 0.85:
        return p.last_name
    if r < 0.9:
        return ascii_fold(p.full_name)
    return ""


def _amount(lang: str, country: str, value: float) -> str:
    if lang == "de":
        return f"{value:.2f} €".replace(".", ",")
    symbol = {"GB": "£", "US": "$"}.get(country, "€")
    return f"{symbol}{value:.2f}"


def _date(lang: str, d: date) -> str:
    if lang == "de":
        return f"{d.day:02d}.{d.month:02d}.{d.year}"
    return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}"


def write_calls(w: World) -> SiloFile:
    """Write call_notes.csv (+ calls.map.yaml); about one call per three people."""
    rng = w.rng
    in_crm = [p for p in w.persons if p.pid in w.crm_no]
    calls: list[tuple[datetime, int, Person, list[str]]] = []
    for i in range(len(w.persons) // 3):
        p = rng.choice(in_crm) if in_crm and rng.random() < 0.85 else rng.choice(w.persons)
        moment = random_moment(rng, START, END, office_hours=True)
        lang = _language(p, rng, 0.04)
        orders = w.orders_by_pid.get(p.pid)
        before = moment.date() - timedelta(days=rng.randint(1, 40))
        fill = {
            "name": p.full_name,
            "title": _title(p, lang),
            "first": p.first_name,
            "phone": format_phone(p.phone, rng.randrange(2), international=rng.random() < 0.3),
            "email": p.email,
            "order": rng.choice(orders) if orders else f"O-{rng.randint(100_001, 104_000)}",
            "amount": _amount(lang, p.country, round(rng.lognormvariate(3.5, 0.6), 2)),
            "date": _date(lang, before),
        }
        notes = rng.choice(CALL_NOTES[lang]).format(**fill)
        r = rng.random()
        phone = "" if r < 0.05 else phone_variant(rng, p.mobile if r < 0.25 else p.phone, 0.4)
        row = [
            phone,
            _caller_name(p, lang, rng),
            notes,
            lang,
            str(int(rng.lognormvariate(5.3, 0.6))),
            f"A-{rng.randint(1, 24):02d}",
        ]
        calls.append((moment, i, p, row))
    calls.sort(key=lambda c: (c[0], c[1]))
    rows: list[list[str]] = []
    for i, (moment, _, p, row) in enumerate(calls):
        cid = f"CALL-{200_001 + i}"
        rows.append([cid, local_iso(moment, p.country, p.address.city), *row])
        w.true("callcentre", cid, p)
    header = ("call_id", "started_at", "caller_phone", "caller_name", "notes", "lang")
    path = w.out_dir / "call_notes.csv"
    n = write_csv(path, (*header, "duration_s", "agent"), rows)
    fields = {
        "record_id": "call_id",
        "timestamp": "started_at",
        "phone": "caller_phone",
        "full_name": "caller_name",
        "text": "notes",
        "language": "lang",
    }
    map_path = write_map(w.out_dir / "calls.map.yaml", fields, kind="interactions", channel="call")
    return SiloFile(path, "callcentre", "interactions", map_path, n)


def _handle_variant(handle: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.75:
        return f"@{handle}"
    if r < 0.88:
        return handle
    if r < 0.94:
        return f"@{handle.upper()}"
    return f"@{handle.capitalize()}"


def write_social(w: World) -> SiloFile:
    """Write social_posts.jsonl (canonical names, no map); ~1.5 posts per handle owner."""
    rng = w.rng
    posts: list[tuple[datetime, int, Person, str, str, str]] = []
    for p in w.persons:
        if p.handle is None:
            continue
        for _ in range(rng.choice((1, 1, 1, 1, 1, 1, 2, 2, 2, 3))):
            lang = _language(p, rng, 0.2 if p.language == "de" else 0.0)
            # The same number of draws either way, so the rest of the company is unchanged.
            moment = random_moment(rng, START, END)
            turned = moment.date() >= PLANTED_EVENT[0] and p.country == PLANTED_EVENT[1]
            mood = rng.choice(_MOODS_AFTER if turned else _MOODS)
            text = rng.choice(SOCIAL_POSTS[lang][mood])
            posts.append((moment, len(posts), p, _handle_variant(p.handle, rng), text, lang))
    posts.sort(key=lambda e: (e[0], e[1]))
    path = w.out_dir / "social_posts.jsonl"
    with path.open("wb") as fh:
        for i, (moment, _, p, handle, text, lang) in enumerate(posts):
            sid = f"S-{300_001 + i}"
            record = {
                "record_id": sid,
                "timestamp": local_iso(moment, p.country, p.address.city),
                "channel": "social",
                "social_handle": handle,
                "text": text,
                "language": lang,
            }
            fh.write(orjson.dumps(record) + b"\n")
            w.true("social", sid, p)
    return SiloFile(path, "social", "interactions", None, len(posts))


def _notice(d: date) -> str:
    if d < date(2025, 1, 1):
        return "2024.1"
    return "2025.1" if d < date(2025, 9, 1) else "2025.2"


def write_consents(w: World) -> SiloFile:
    """Write consents.csv (canonical columns); ~60% of people have at least one event."""
    rng = w.rng
    events: list[tuple[datetime, int, Person, list[str]]] = []
    for p in w.persons:
        if rng.random() >= 0.6:
            continue
        email = p.email if rng.random() < 0.9 else p.alt_email
        for purpose in rng.sample(PURPOSES, rng.choice((1, 1, 2, 2, 3, 4))):
            moment = random_moment(rng, date(2024, 3, 1), date(2026, 6, 30))
            status = "granted" if rng.random() < 0.65 else "denied"
            method = rng.choice(_METHODS)
            events.append((moment, len(events), p, [email, purpose, status, method]))
            if status == "granted" and rng.random() < 0.08:
                later = random_moment(rng, moment.date() + timedelta(days=1), END)
                how = rng.choice(("form", "call", "api"))
                events.append((later, len(events), p, [email, purpose, "withdrawn", how]))
    events.sort(key=lambda e: (e[0], e[1]))
    rows = [
        [email, purpose, status, local_iso(m, p.country, p.address.city), method, _notice(m.date())]
        for m, _, p, (email, purpose, status, method) in events
    ]
    path = w.out_dir / "consents.csv"
    header = ("email", "purpose", "status", "timestamp", "method", "notice_version")
    n = write_csv(path, header, rows)
    return SiloFile(path, "crm", "consents", None, n)
