"""Identifiers are compared exactly (issue 15): a collected user id keeps its case and its inner
spaces (``seg-Case`` and ``seg-case`` are two persons), a message id is the call's id as sent
(``ab cd`` and ``abcd`` are two calls; a long id is stored as the digest of all of it), and a
file's customer ids are upper-cased only where its map file asks ``normalise: upper``.

The collection tests drive the real Segment and RudderStack clients against a real
``custos serve``."""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient
from sqlalchemy import select

from custos.core.errors import ConfigError
from custos.core.settings import Settings
from custos.ingest.mapping import MapFile
from custos.service import Custos, dsr, keys
from custos.service.collect import collect
from custos.store import tables as t
from tests.conftest import start_serve, write

CLIENTS = {"segment": SegmentClient, "rudderstack": RudderClient}


@contextmanager
def serve(db: str) -> Iterator[str]:
    """``custos serve`` on ``db`` as its own process; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = start_serve(db, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, Custos]]:
    """A SQLite store (its path and app) that ``custos serve`` can serve too."""
    db = str(tmp_path / "custos.db")
    with Custos.open(db, Settings(_env_file=None, db="unused")) as app:  # type: ignore[call-arg]
        yield db, app


def send(kind: str, key: str, base: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
    """Send ``calls`` (method name, keyword arguments) with the real client of ``kind``."""
    errors: list[Any] = []
    client = CLIENTS[kind](
        key, host=base, on_error=lambda e, batch: errors.append(e), upload_interval=0.05
    )
    for method, arguments in calls:
        getattr(client, method)(**arguments)
    client.flush()
    client.join()
    assert errors == []


def lookup(base: str, key: str, customer_id: str) -> dict[str, Any]:
    """The profile ``POST /v1/profiles/lookup`` finds by a customer id."""
    answer = httpx.post(
        f"{base}/v1/profiles/lookup",
        json={"customer_id": customer_id},
        headers={"Authorization": f"Bearer {key}"},
        params={"purpose": "customer_service"},
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


@pytest.mark.parametrize("kind", list(CLIENTS))
def test_user_ids_differing_in_case_or_spaces_are_different_persons(
    store: tuple[str, Custos], kind: str
) -> None:
    db, app = store
    key = keys.create(app, "web", [], "server")  # verified: the user id is an identifier
    reader = keys.create(app, "desk", ["customer_service"])
    people = [
        ("seg-Case", "upper@example.com"),
        ("seg-case", "lower@example.com"),
        (" u 1", "spaced@example.com"),  # only the surrounding space is trimmed
        ("u1", "joined@example.com"),
    ]
    calls = [
        ("identify", {"user_id": user, "traits": {"email": email}, "message_id": f"m-{i}"})
        for i, (user, email) in enumerate(people)
    ]
    with serve(db) as base:
        send(kind, key, base, calls)
        app.resolve()
        found = {user: lookup(base, reader, user.strip()) for user, _ in people}
    assert len({p["profile_id"] for p in found.values()}) == 4  # no false merge
    for user, email in people:
        identifiers = found[user]["identifiers"]
        assert identifiers["email"] == [email]
        assert identifiers["customer_id"] == [user.strip()]


def _stored(app: Custos) -> dict[str, str]:
    """Record id → the raw call's messageId, for every stored call."""
    with app.store.read() as conn:
        rows = conn.execute(select(t.raw_records.c.record_id, t.raw_records.c.payload)).all()
    return {r.record_id: orjson.loads(r.payload)["messageId"] for r in rows}


@pytest.mark.parametrize("kind", list(CLIENTS))
def test_message_ids_are_compared_exactly_and_resends_are_stored_once(
    store: tuple[str, Custos], kind: str
) -> None:
    db, app = store
    key = keys.create(app, "web", [], "server")
    prefix = "m" * 200
    long_a, long_b = prefix + "a" * 50, prefix + "b" * 50  # one 200-character prefix
    ids = ["ab cd", "abcd", long_a, long_b, "plain-0123456789"]
    calls = [("track", {"user_id": "u-7", "event": "Viewed", "message_id": mid}) for mid in ids]
    with serve(db) as base:
        send(kind, key, base, calls)
        first = _stored(app)
        send(kind, key, base, calls)  # a resend of every call, by a new client
        again = _stored(app)
    digest = {mid: "sha256:" + hashlib.sha256(mid.encode()).hexdigest() for mid in ids[2:4]}
    assert first == {
        "ab cd": "ab cd",
        "abcd": "abcd",
        digest[long_a]: long_a,  # the raw call keeps the id as sent
        digest[long_b]: long_b,
        "plain-0123456789": "plain-0123456789",
    }
    assert again == first  # each stored once


CRM = """record_id,email,customer_id
r1,anna@example.com,c-001
r2,ben@example.com,c 002
"""
SHOP = """record_id,email,customer_id
w1,anna.shop@example.com,C-001
w2,ben.shop@example.com,C002
"""
UPPER = "customer_id: {column: customer_id, normalise: upper}\n"


@pytest.mark.parametrize("upper", [True, False])
def test_a_file_upper_cases_customer_ids_only_where_its_map_asks(
    store: tuple[str, Custos], tmp_path: Path, upper: bool
) -> None:
    db, app = store
    mapped = write(tmp_path / "upper.map.yaml", UPPER) if upper else None
    app.ingest(write(tmp_path / "crm.csv", CRM), "crm", map_path=mapped)
    app.ingest(write(tmp_path / "shop.csv", SHOP), "shop", map_path=mapped)
    app.resolve()
    x = {(s, r): p for s, r, p in app.xref()}
    assert (x[("crm", "r1")] == x[("shop", "w1")]) is upper
    assert (x[("crm", "r2")] == x[("shop", "w2")]) is upper
    with app.store.read() as conn:
        stored = set(conn.execute(select(t.records.c.customer_id)).scalars())
    assert stored == ({"C-001", "C002"} if upper else {"c-001", "c 002", "C-001", "C002"})
    reader = keys.create(app, "desk", ["customer_service"])
    with serve(db) as base:
        # a look-up by the id as the person writes it finds it as the map stored it (exactly
        # first; the upper-cased form when no profile holds it as given)
        assert lookup(base, reader, "c-001")["profile_id"] == x[("crm", "r1")]
        assert lookup(base, reader, "c 002")["profile_id"] == x[("crm", "r2")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{column: kdnr, normalize: upper}", "customer_id: unknown option(s) normalize"),
        ("{column: kdnr, normalise: lower}", "customer_id: unknown normalise 'lower'"),
        ("{normalise: upper}", "customer_id: name its column"),
        ("[kdnr, kundennummer]", "customer_id: one column per field, not a list"),
    ],
)
def test_unknown_field_options_are_refused(tmp_path: Path, spec: str, message: str) -> None:
    path = write(tmp_path / "m.yaml", f"fields:\n  customer_id: {spec}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        MapFile.load(path)
    only = write(tmp_path / "e.yaml", "email: {column: mail, normalise: upper}\n")
    with pytest.raises(ConfigError, match="email: normalise: upper applies to customer_id only"):
        MapFile.load(only)
    kept = MapFile.load(write(tmp_path / "k.yaml", "customer_id: {column: kdnr}\n"))
    assert (kept.columns, kept.upper_customer_id) == ({"customer_id": "kdnr"}, False)


def test_an_erased_customer_id_is_suppressed_in_either_form(
    store: tuple[str, Custos], tmp_path: Path
) -> None:
    """A person whose id a map stored upper-cased (``C-001``) is erased: a later verified call
    with user id ``c-001`` may be theirs and is held back (a restriction follows a possible
    match); another id is stored."""
    _, app = store
    mapped = write(tmp_path / "upper.map.yaml", UPPER)
    app.ingest(write(tmp_path / "crm.csv", CRM), "crm", map_path=mapped)
    app.resolve()
    dsr.erase(app, "anna@example.com", actor="dpo")
    calls = [
        ("identify", {"messageId": "m-held-0001", "userId": "c-001"}),
        ("identify", {"messageId": "m-kept-0001", "userId": "c-003"}),
    ]
    result = collect(app, calls, source="web", received_at=datetime.now(UTC), verified=True)
    assert (result.stored, result.quarantined) == (1, 1)


def test_an_identifier_of_many_persons_is_a_households_only_at_one_address() -> None:
    """Four persons on one landline: a family at one address (kept, household evidence), a
    shop's number typed in for customers across the country, or a number only calls and one
    record carry (ignored, as any identifier of more than ``max_persons`` persons)."""
    from custos.identity.exact import exact_edges
    from custos.identity.graph import Node

    names = ("anna", "bernd", "clara", "david")
    phone = (("phone", "+494012345678"),)

    def nodes(addresses: list[str | None]) -> list[Node]:
        return [
            Node(n, addresses[n] is not None, names[n], "schulz", None, phone, None, addresses[n])
            for n in range(len(names))
        ]

    family = exact_edges(nodes(["hafenweg 3|20457"] * 4), max_persons=3, max_records=200)
    assert not family.ignored and ("phone", "+494012345678") in family.shared
    scattered = [f"weg {n}|2045{n}" for n in range(4)]
    shop = exact_edges(nodes(scattered), max_persons=3, max_records=200)
    assert [i.reason for i in shop.ignored] == ["shared by too many persons"]
    calls = exact_edges(
        nodes(["hafenweg 3|20457", None, None, None]), max_persons=3, max_records=200
    )
    assert [i.reason for i in calls.ignored] == ["shared by too many persons"]


def test_a_caller_who_does_not_say_who_they_are_is_nobodys_where_two_could_be_them() -> None:
    """A family's landline that one person's records carry: a call from it with no name, or
    with an initial that another resident's name begins too, joins nobody (fail-closed); where
    no one else could be the caller, it joins the person as before."""
    from custos.identity.exact import exact_edges
    from custos.identity.graph import Node

    home, line = "ivyhof 28|2949 IY", ("phone", "+31705934609")
    senna = Node(1, True, "senna", "belpere", "2004-06-14", (line,), None, home)
    sienna = Node(
        2, True, "sienna", "belpere", "1976-11-09", (("phone", "+31656799336"),), None, home
    )
    jamie = Node(
        3, True, "jamie", "belpere", "1963-08-31", (("phone", "+31612345678"),), None, home
    )
    initial = Node(10, False, "s", "belpere", None, (line,))
    nameless = Node(11, False, None, None, None, (line,))
    other_initial = Node(12, False, "j", "belpere", None, (line,))

    def linked(*nodes: Node) -> set[tuple[int, int]]:
        edges = exact_edges(nodes, max_persons=3, max_records=200).edges
        return {(min(e.left, e.right), max(e.left, e.right)) for e in edges}

    # Senna and Sienna live there: "S." and a nameless call could be either
    assert linked(senna, sienna, initial, nameless) == set()
    # Jamie lives there too, but "J." is not Senna: Jamie's phone is not this line
    assert linked(senna, sienna, jamie, other_initial) == set()
    # Senna alone with Jamie: "S." can only be Senna; a call with no name is anyone's
    assert linked(senna, jamie, initial, nameless) == {(1, 10)}
    # nobody else known there: the landline's person takes both, as before
    assert linked(senna, initial, nameless) == {(1, 10), (1, 11)}


def test_a_landline_dialled_two_ways_is_one_identifier_not_two_agreeing() -> None:
    """A parent's record with the landline as dialled, a child's order with it in E.164 and
    the parent's e-mail: the number in its two forms is one shared identifier, not a second
    agreement that outweighs two first names (Jamie and Fedde are two persons)."""
    from custos.identity.exact import exact_edges
    from custos.identity.graph import Node

    home, mail = "ivyhof 28|2949 IY", ("email", "jbelpere@xs4all.nl")
    jamie = Node(
        1,
        True,
        "jamie",
        "belpere",
        "1963-08-31",
        (mail, ("phone", "+31705934609"), ("phone~", "705934609")),
        None,
        home,
    )
    fedde = Node(
        2,
        True,
        "fedde",
        "belpere",
        None,
        (mail, ("phone", "+31705934609"), ("phone~", "705934609")),
        None,
        home,
    )
    kick = Node(
        3,
        True,
        "kick",
        "belpere",
        "2013-06-13",
        (("phone", "+31705934609"), ("phone~", "705934609")),
        None,
        home,
    )
    assert exact_edges([jamie, fedde, kick], max_persons=3, max_records=200).edges == []
