"""A collected call is stored as the same call, written as a row of a file, is ingested.

``service.collect.prepare`` makes a call's interaction values with ingestion's one normaliser
over the fields the call fills, and binds only the columns a call fills; ingestion's
``normalise_batch`` over the call as a file row (``generic_row``) is the reference, and these
tests hold the two to the same rows, the same quarantine reasons and the same verbatim record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custos.consent import ledger
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.ingest import normalise as n
from custos.ingest.mapping import ColumnMap, MapFile
from custos.ingest.pipeline import SUPPRESSED_REASON
from custos.ingest.readers import RawRow
from custos.ingest.rows import COLUMNS, RowContext, dumps, normalise_batch
from custos.ingest.sources.segment import (
    ROW_COLUMNS,
    call_region,
    event_time,
    generic_row,
    message_id,
    problem,
    text,
)
from custos.service import Custos, dsr
from custos.service import collect as service
from custos.store import tables as t
from tests.conftest import write

RECEIVED = datetime(2026, 5, 1, 12, 0, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Custos]:
    """One SQLite store for the module (preparing calls reads nothing from it)."""
    folder: Path = tmp_path_factory.mktemp("rows")
    with Custos.open(str(folder / "c.db"), Settings(_env_file=None, db="unused")) as custos:  # type: ignore[call-arg]
        yield custos


def reference(app: Custos, call: str, message: dict[str, Any]) -> tuple[str, Any]:
    """What ingestion's generic path makes of one call: ("good", (record id, values)) or
    ("bad", (field, reason))."""
    mid = message_id(message)
    reason = problem(message, call)
    if reason:
        return "bad", (None, reason)
    when = event_time(message, RECEIVED)
    row = generic_row(message, call, when, text(message.get("userId")), mid)
    ctx = RowContext(
        kind=Kind.INTERACTIONS,
        region=call_region(message, app.settings.default_region),
        bad_fields=app.settings.bad_fields,
    )
    batch = normalise_batch(
        [RawRow(1, row)], ColumnMap(MapFile(), Kind.INTERACTIONS, ROW_COLUMNS), ctx
    )
    if batch.good:
        good = batch.good[0]
        # A call's record id is its message id exactly (message_id); a file's record id has its
        # spaces removed (the generic path's rule), which collection does not apply.
        return "good", (mid, good.values)
    bad = batch.bad[0]
    return "bad", (bad.field, bad.reason)


def prepared(app: Custos, call: str, message: dict[str, Any]) -> tuple[str, Any]:
    """What collection's fast path makes of it, in the same form; checks its inserted row."""
    # A server-side key: the row as made (what a write key's call claims is taken out after).
    request = service.CollectRequest([(call, message)], "web", RECEIVED, verified=True)
    item = service.prepare(app, [request]).calls[0]
    verbatim = dumps({"type": call, **message})
    if item.good is None:
        assert item.bad is not None
        assert item.bad.raw == verbatim
        return "bad", (item.bad.field, item.bad.reason)
    assert item.good.payload == verbatim
    # The inserted row: the columns that are not NULL, the time as the store binds it.
    names = COLUMNS[Kind.INTERACTIONS]
    filled = {k: v for k, v in zip(names, item.good.values, strict=True) if v is not None}
    assert item.shape == tuple(filled)
    bind = t.interactions.c.timestamp.type.bind_processor(app.store.engine.dialect)
    assert bind is not None
    filled["timestamp"] = bind(filled["timestamp"])
    assert item.row == tuple(filled.values())
    return "good", (item.good.record_id, item.good.values)


texts = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "null", "None", "n/a", "c-001", " Kim  Lee ", "ÅSA", "A\u0308sa"]),
    st.text(max_size=12),
    st.integers(-5, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
)
emails = st.one_of(
    texts, st.sampled_from(["kim@example.com", " KIM@Example.COM ", "kim@", "kim@localhost"])
)
phones = st.one_of(
    texts,
    st.sampled_from(
        ["+49 30 1234567", "030 1234567", "123", "+1 555", "(956) 514-2238", "0598549048"]
    ),
)
births = st.one_of(
    texts,
    st.sampled_from(
        ["1980-02-29", "31.12.1999", "2300-01-01", "1800-1-1", "03/04/1982", "4/3/2099"]
    ),
)
times = st.one_of(
    st.none(),
    st.sampled_from(
        ["2026-05-01T12:00:00Z", "2026-05-01T11:59:58.5+02:00", "01.05.2026 12:00", "soon", ""]
    ),
    st.integers(0, 2 * 10**12),
)
traits = st.fixed_dictionaries(
    {},
    optional={
        "email": emails,
        "phone": phones,
        "firstName": texts,
        "first_name": texts,
        "lastName": texts,
        "name": texts,
        "birthday": births,
        "address": st.one_of(
            texts,
            st.fixed_dictionaries(
                {},
                optional={
                    "street": texts,
                    "postalCode": texts,
                    "postal_code": texts,
                    "city": texts,
                    "country": st.one_of(texts, st.sampled_from(["DE", "de", "Germany", "XX"])),
                },
            ),
        ),
    },
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "messageId": st.one_of(texts, st.sampled_from(["m-0123456789", "ü-message-1", "m 1"])),
        "userId": texts,
        "anonymousId": texts,
        "event": texts,
        "name": texts,
        "groupId": texts,
        "previousId": texts,
        "timestamp": times,
        "sentAt": times,
        "traits": st.one_of(traits, texts),
        "context": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "traits": traits,
                    "gpc": st.booleans(),
                    "locale": st.one_of(texts, st.sampled_from(["en-GB", "nl_NL", "de", "en-XX"])),
                },
            ),
        ),
    },
)
calls = st.sampled_from(["identify", "track", "page", "screen", "group", "alias", "bogus"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=calls, message=messages)
def test_fast_path_makes_what_the_generic_path_makes(
    app: Custos, call: str, message: dict[str, Any]
) -> None:
    assert prepared(app, call, message) == reference(app, call, message)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("track", {"messageId": "m-00000001", "userId": "u-1", "event": "Viewed"}),
        ("track", {"messageId": "m-00000002", "anonymousId": "a-1", "event": "Viewed"}),
        (
            "identify",
            {
                "messageId": "m-00000003",
                "userId": "u-1",
                "traits": {
                    "email": " Kim@Example.com",
                    "phone": "030 1234567",
                    "name": "kim lee",
                    "birthday": "1980-02-29",
                    "address": {"street": "Hauptstr. 1", "postalCode": "10115", "city": "berlin"},
                },
            },
        ),
        # an implausible birthday: stored without it (the generic path's decision)
        (
            "identify",
            {"messageId": "m-00000004", "userId": "u-1", "traits": {"birthday": "2300-01-01"}},
        ),
        # an e-mail that cannot be read: stored without it (the generic path's decision)
        ("identify", {"messageId": "m-00000005", "userId": "u-1", "traits": {"email": "kim@"}}),
        # a national phone: its digits without a region, E.164 with the locale's or address's
        ("identify", {"messageId": "m-00000008", "traits": {"phone": "(956) 514-2238"}}),
        (
            "identify",
            {
                "messageId": "m-00000009",
                "userId": "u-1",
                "traits": {"phone": "020 7946 0123"},
                "context": {"locale": "en-GB"},
            },
        ),
        (
            "identify",
            {
                "messageId": "m-00000010",
                "userId": "u-1",
                "traits": {"phone": "0598 549048", "address": {"country": "NL"}},
                "context": {"locale": "en-GB"},
            },
        ),
        # an ambiguous birthday: both readings kept
        (
            "identify",
            {"messageId": "m-00000011", "userId": "u-1", "traits": {"birthday": "3/4/1982"}},
        ),
        ("page", {"messageId": "m-00000006", "userId": "null", "anonymousId": "a-2"}),
        (
            "group",
            {
                "messageId": "m-00000007",
                "userId": "u-1",
                "groupId": "g",
                "traits": {"email": "x@y.de"},
            },
        ),
        ("alias", {"userId": "u-1", "previousId": "a-1"}),
        ("track", {"userId": "u-1"}),
    ],
)
def test_known_calls_match_the_generic_path(
    app: Custos, call: str, message: dict[str, Any]
) -> None:
    assert prepared(app, call, message) == reference(app, call, message)


def test_the_verbatim_record_is_the_call_with_its_type_first(app: Custos) -> None:
    first = {"type": "Track", "userId": "u-1", "event": "E", "messageId": "m-00000010"}
    later = {"userId": "u-1", "type": "track", "event": "E", "messageId": "m-00000011"}
    bare = {"userId": "u-1", "event": "E", "messageId": "m-00000012"}
    messages = [first, later, bare]
    request = service.CollectRequest(
        [("track", m) for m in messages],
        "web",
        RECEIVED,
        encoded=[orjson.dumps(m) for m in messages],
    )
    got = [c.good.payload for c in service.prepare(app, [request]).calls if c.good]
    assert got == [dumps({"type": "track", **m}) for m in messages]
    assert orjson.loads(got[0])["type"] == "Track"  # the call as sent, its own spelling kept


def test_clock_skew_correction_reads_each_time_once() -> None:
    parsed: dict[str, Any] = {}
    message = {"timestamp": "2026-05-01T11:00:00Z", "sentAt": "2026-05-01T11:00:10Z"}
    assert event_time(message, RECEIVED, parsed=parsed) == RECEIVED - timedelta(seconds=10)
    assert event_time({"timestamp": "soon"}, RECEIVED, parsed=parsed) == RECEIVED
    assert event_time({"timestamp": "soon"}, RECEIVED, parsed=parsed) == RECEIVED  # cached error
    assert set(parsed) == {"2026-05-01T11:00:00Z", "2026-05-01T11:00:10Z", "soon"}


@given(st.text(max_size=200))
def test_customer_ids_are_kept_exactly(value: str) -> None:
    """A customer id is the text as given, only surrounding whitespace trimmed (or none for an
    empty text or a null token): case and inner spaces are part of the id."""
    found = n.customer_id(value)
    assert found is None or found == value.strip()
    assert found is None or n.customer_id(found) == found
    assert found is not None or n.clean(value) is None


def test_ledger_keys_are_the_keys_of_ledger_rows() -> None:
    at = datetime(2026, 5, 1, 12, tzinfo=UTC)
    for ids in ({}, {"customer_id": "C-1"}, {"phone": "+49301234567", "email": "a@b.de"}):
        row = ledger.event_row(
            source_id=3,
            purpose="analytics",
            status="granted",
            at=at,
            method="segment",
            identifiers=ids,
            evidence="x",
        )
        key = ledger.event_key(
            source_id=3,
            purpose="analytics",
            status="granted",
            at=at,
            method="segment",
            identifiers=ids,
        )
        assert row["event_key"] == key


def test_columns_left_out_when_null_have_no_default() -> None:
    """Collection inserts a call's interaction (and its ledger events) without their NULL
    columns: that is the same as inserting NULL only while those columns have no default."""
    for table in (t.interactions, t.raw_records):
        assert [c.name for c in table.c if c.server_default is not None or c.default] == []
    defaulted = [c.name for c in t.consent_events.c if c.server_default is not None]
    assert defaulted == ["explicit"]  # always given by ledger.event_row


def test_a_call_of_a_known_device_stores_the_user_id(app: Custos) -> None:
    """An anonymous call whose device an earlier verified identify named gets the user id, in
    the values and in the inserted row (the call itself may come with the public write key)."""
    identify = {"messageId": "m-00000020", "userId": "u-9", "anonymousId": "dev-9"}
    service.collect(
        app, [("identify", identify)], source="web", received_at=RECEIVED, verified=True
    )
    track = {"messageId": "m-00000021", "anonymousId": "dev-9", "event": "E"}
    result = service.collect(app, [("track", track)], source="web", received_at=RECEIVED)
    assert result.stored == 1
    with app.store.read() as conn:
        row = conn.execute(
            t.interactions.select()
            .join(t.raw_records, t.raw_records.c.id == t.interactions.c.raw_id)
            .where(t.raw_records.c.record_id == "m-00000021")
        ).one()
    assert row.customer_id == "u-9"
    assert row.timestamp == RECEIVED
    assert row.channel == "track"
    assert orjson.loads(row.extra) == {"segment": {"event": "E", "anonymous_id": "dev-9"}}


def test_an_erased_persons_calls_are_held_back(tmp_path: Path) -> None:
    """After an erasure, a collected call of the person (by e-mail or customer id) is
    quarantined as suppressed, without its values, and brings no consent event back."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", secret_key_file=str(tmp_path / "key" / "secret.key")
    )
    with Custos.open(str(tmp_path / "c.db"), settings) as app:
        crm = write(
            tmp_path / "crm.csv",
            "record_id,first_name,email,customer_id\n"
            "r1,Quenby,quenby@example.org,C-7781\n"
            "r2,Ben,ben@example.com,C-1002\n",
        )
        app.ingest(crm, "crm")
        app.resolve()
        dsr.erase(app, "quenby@example.org", actor="dpo")
        consent = {"consent": {"categoryPreferences": {"Analytics": True}}}
        calls = [
            (
                "identify",
                {
                    "messageId": "m-00000031",
                    "userId": "x-1",
                    "traits": {"email": "Quenby@Example.org"},
                },
            ),
            (
                "track",
                {"messageId": "m-00000032", "userId": "c-7781", "event": "E", "context": consent},
            ),
            (
                "track",
                {"messageId": "m-00000033", "userId": "C-1002", "event": "E", "context": consent},
            ),
        ]
        result = service.collect(app, calls, source="web", received_at=RECEIVED, verified=True)
        assert (result.stored, result.quarantined, result.consent_events) == (1, 2, 1)
        held = [q for q in app.quarantine() if q["reason"] == SUPPRESSED_REASON]
        assert len(held) == 2 and all(q["record_id"] is None for q in held)
        # What a write key's call only claims is checked too: the claim would keep the
        # person's e-mail in clear.
        claimed = {"messageId": "m-00000034", "anonymousId": "d-1", "event": "E"}
        claimed["context"] = {"traits": {"email": "quenby@example.org"}}
        result = service.collect(app, [("track", claimed)], source="web", received_at=RECEIVED)
        assert (result.stored, result.quarantined) == (0, 1)
        with app.store.read() as conn:
            stored = conn.execute(t.raw_records.select())
            assert [r.record_id for r in stored if r.kind == "interactions"] == ["m-00000033"]


def values_of(app: Custos, call: str, message: dict[str, Any]) -> dict[str, Any]:
    """The interaction columns of a prepared call."""
    # A server-side key: the row as made (what a write key's call claims is taken out after).
    request = service.CollectRequest([(call, message)], "web", RECEIVED, verified=True)
    item = service.prepare(app, [request]).calls[0]
    assert item.good is not None
    return dict(zip(COLUMNS[Kind.INTERACTIONS], item.good.values, strict=True))


def test_a_calls_phone_without_a_country_keeps_its_national_digits(app: Custos) -> None:
    """A trait phone without + and without a country (address, locale) is never given one."""
    assert app.settings.default_region is None
    bare = {"messageId": "m-00000040", "userId": "u-4", "traits": {"phone": "(956) 514-2238"}}
    assert values_of(app, "identify", bare)["phone"] == "9565142238"
    international = {**bare, "traits": {"phone": "+1 956 514 2238"}}
    assert values_of(app, "identify", international)["phone"] == "+19565142238"
    localised = {**bare, "context": {"locale": "en-US"}}
    assert values_of(app, "identify", localised)["phone"] == "+19565142238"
    addressed = {
        **bare,
        "traits": {"phone": "0598 549048", "address": {"country": "Netherlands"}},
        "context": {"locale": "en-US"},  # the address's country comes first
    }
    assert values_of(app, "identify", addressed)["phone"] == "+31598549048"
    assert values_of(app, "identify", {**bare, "context": {"locale": "de"}})["phone"] == (
        "9565142238"  # a language without a country names no region
    )


def test_a_calls_bad_field_is_left_out_and_listed(tmp_path: Path) -> None:
    """A collected call whose e-mail cannot be one is stored without it; the field is listed
    with the quarantine (reason and fix) and counted, once, however often the call is sent;
    an ambiguous birthday keeps both readings."""
    settings = Settings(_env_file=None, db="unused")  # type: ignore[call-arg]
    with Custos.open(str(tmp_path / "c.db"), settings) as app:
        calls = [
            ("identify", {"messageId": "m-00000050", "userId": "u-5", "traits": {"email": "kim@"}}),
            (
                "identify",
                {"messageId": "m-00000051", "userId": "u-6", "traits": {"birthday": "3/4/1982"}},
            ),
        ]
        first = service.collect(app, calls, source="web", received_at=RECEIVED, verified=True)
        assert (first.stored, first.quarantined, first.fields_dropped) == (2, 0, 2)
        again = service.collect(app, calls, source="web", received_at=RECEIVED, verified=True)
        assert (again.stored, again.duplicates, again.fields_dropped) == (0, 2, 0)
        listed = {q["record_id"]: q for q in app.quarantine()}
        with app.store.read() as conn:
            rows = {r.customer_id: r for r in conn.execute(t.interactions.select())}
    assert set(listed) == {"m-00000050", "m-00000051"}
    assert listed["m-00000050"]["field"] == "email"
    assert listed["m-00000050"]["reason"] == "not an e-mail address (row stored without this field)"
    assert listed["m-00000051"]["reason"].startswith("ambiguous date: kept both readings")
    assert rows["u-5"].email is None
    assert (rows["u-6"].date_of_birth, rows["u-6"].date_of_birth_candidates) == (
        None,
        "1982-04-03 1982-03-04",
    )
