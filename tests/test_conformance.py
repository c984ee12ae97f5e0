"""Collection conformance with the real Segment and RudderStack clients and hostile raw calls:
malformed consent contexts are reported per call (the rest stored), consent given before
sign-in reaches the person, RudderStack's large batches are taken, an oversized call is
quarantined alone, and nothing unreadable vanishes."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient
from sqlalchemy import select

from custos.identity import profiles
from custos.service import Custos, keys
from custos.store import tables as t
from tests.conftest import served


@pytest.fixture
def server(custos: Custos) -> Iterator[str]:
    """The API served by a real uvicorn on a free loopback port."""
    with served(custos) as base:
        yield base


def _stored(custos: Custos) -> list[str]:
    with custos.store.read() as conn:
        return sorted(conn.execute(select(t.raw_records.c.record_id)).scalars())


def _quarantine(custos: Custos) -> list[tuple[str | None, str | None, str, str]]:
    q = t.quarantine
    with custos.store.read() as conn:
        rows = conn.execute(select(q.c.record_id, q.c.field, q.c.reason, q.c.fix)).all()
    return [(r.record_id, r.field, r.reason, r.fix) for r in rows]


def _ledger(custos: Custos, purpose: str) -> list[tuple[str, str | None, datetime, str]]:
    ce = t.consent_events
    with custos.store.read() as conn:
        rows = conn.execute(
            select(ce.c.status, ce.c.customer_id, ce.c.timestamp, ce.c.evidence)
            .where(ce.c.purpose == purpose)
            .order_by(ce.c.id)
        ).all()
    return [(r.status, r.customer_id, r.timestamp.replace(tzinfo=UTC), r.evidence) for r in rows]


def _audit(custos: Custos, action: str) -> list[dict[str, Any]]:
    a = t.audit_log
    with custos.store.read() as conn:
        details = conn.execute(select(a.c.detail).where(a.c.action == action)).scalars().all()
    return [orjson.loads(d) if isinstance(d, str | bytes) else d for d in details]


def test_malformed_consent_contexts_are_reported_per_call_and_the_rest_stored(
    custos: Custos, server: str
) -> None:
    """A context, consent object, preference map or consent-management object that is text or
    a list: each call is stored, its unreadable signal quarantined with reason and fix, counted
    in the answer and the audit; the good signals of the batch still reach the ledger."""
    key = keys.create(custos, "backend", [], "server")
    bad_contexts: list[Any] = [
        "a string",
        ["a", "list"],
        {"consent": "yes"},
        {"consent": {"categoryPreferences": ["Marketing"]}},
        {"consentManagement": "analytics"},
        {"consentManagement": {"deniedConsentIds": "analytics"}},
    ]
    batch = [
        {"type": "track", "messageId": f"bad-{i}", "userId": "u-1", "event": "E", "context": c}
        for i, c in enumerate(bad_contexts)
    ]
    good = {"consent": {"categoryPreferences": {"Marketing": False}}}
    batch.append(
        {"type": "track", "messageId": "good", "userId": "u-1", "event": "E", "context": good}
    )
    answer = httpx.post(
        f"{server}/v1/batch", json={"batch": batch}, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["stored"] == 7 and body["quarantined"] == 0
    assert body["consent_problems"] == 6 and body["consent_events"] == 1
    assert _stored(custos) == sorted([*(f"bad-{i}" for i in range(6)), "good"])
    entries = {rid: (field, reason, fix) for rid, field, reason, fix in _quarantine(custos)}
    assert set(entries) == {f"bad-{i}" for i in range(6)}
    assert entries["bad-0"] == (
        "consent",
        "context is text, not an object: its consent signal was not read",
        "send context as a JSON object",
    )
    assert entries["bad-3"][1].startswith("context.consent.categoryPreferences is a list")
    assert entries["bad-5"][2] == "send a list of consent ids"
    assert [s for s, *_ in _ledger(custos, "marketing_email")] == ["denied"]
    assert _audit(custos, "collect")[-1]["consent_problems"] == 6
    # A resend is recognised: nothing stored or quarantined twice.
    again = httpx.post(
        f"{server}/v1/batch", json={"batch": batch}, headers={"Authorization": f"Bearer {key}"}
    )
    assert again.json()["duplicates"] == 7 and len(_quarantine(custos)) == 6


def test_consent_given_before_sign_in_reaches_the_person(custos: Custos, server: str) -> None:
    """An anonymous device says Analytics: false (real Segment client) and sends Sec-GPC: 1
    (raw call); a verified identify later names the device: both restrictions are recorded for
    the person, timed when the calls were received; its earlier grant is not (the device may
    have been someone else's before sign-in)."""
    key = keys.create(custos, "backend", [], "server")
    errors: list[Any] = []
    client = SegmentClient(
        key, host=server, on_error=lambda e, b: errors.append(e), upload_interval=0.05
    )
    prefs = {"consent": {"categoryPreferences": {"Analytics": False, "Marketing": True}}}
    client.track(anonymous_id="dev-1", event="Viewed", context=prefs, message_id="pre-1")
    client.flush()
    client.join()
    assert errors == []
    gpc = httpx.post(
        f"{server}/v1/page",
        json={"anonymousId": "dev-1", "name": "Home", "messageId": "pre-2"},
        headers={"Authorization": f"Bearer {key}", "Sec-GPC": "1"},
    )
    assert gpc.json()["consent_events"] == 0  # nobody to record it for, yet
    assert _ledger(custos, "analytics") == [] and _ledger(custos, "third_party_sharing") == []
    before = datetime.now(UTC)
    identify = httpx.post(
        f"{server}/v1/identify",
        json={"userId": "seg-User-7", "anonymousId": "dev-1", "messageId": "id-1"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert identify.json()["consent_events"] == 2
    analytics = _ledger(custos, "analytics")
    sharing = _ledger(custos, "third_party_sharing")
    assert [(s, c) for s, c, _, _ in analytics] == [("denied", "seg-User-7")]
    assert [(s, c) for s, c, _, _ in sharing] == [("denied", "seg-User-7")]
    assert analytics[0][2] < before and sharing[0][2] < before  # when the device said so
    assert "before sign-in" in analytics[0][3] and "Sec-GPC: 1" in sharing[0][3]
    assert _ledger(custos, "marketing_email") == []  # the anonymous grant does not carry over
    custos.resolve()
    with custos.store.read() as conn:
        [person] = profiles.profiles_by_identifier(conn, "customer_id", "seg-User-7")
    state = custos.consent(person)["states"]
    assert state["analytics"]["allowed"] is False
    # The same identify again records nothing twice.
    again = httpx.post(
        f"{server}/v1/identify",
        json={"userId": "seg-User-7", "anonymousId": "dev-1", "messageId": "id-2"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert again.json()["consent_events"] == 0 and len(_ledger(custos, "analytics")) == 1


def test_an_unverified_identify_does_not_take_the_devices_restrictions(
    custos: Custos, server: str
) -> None:
    """With the public write key, an unsigned identify names no one: the device's pending
    restriction stays pending (it is recorded when a verified identify comes)."""
    web = keys.create(custos, "web", [], "write")
    context = {"consent": {"categoryPreferences": {"Analytics": False}}}
    call = {"anonymousId": "dev-2", "event": "E", "messageId": "p1", "context": context}
    assert httpx.post(f"{server}/v1/track", json={**call, "writeKey": web}).is_success
    claim = {"userId": "victim", "anonymousId": "dev-2", "messageId": "i1", "writeKey": web}
    assert httpx.post(f"{server}/v1/identify", json=claim).json()["consent_events"] == 0
    assert _ledger(custos, "analytics") == []


def test_rudderstack_batches_up_to_four_megabytes_are_taken(custos: Custos, server: str) -> None:
    """The real RudderStack client sends 100 events of 6 KB (600 KB, gzipped): all stored."""
    key = keys.create(custos, "app", [], "write")
    errors: list[Any] = []
    client = RudderClient(
        key,
        host=server,
        gzip=True,
        on_error=lambda e, b: errors.append(e),
        upload_interval=0.05,
        upload_size=100,
        max_retries=1,
    )
    for i in range(100):
        client.track("u-1", "Viewed", {"blob": "x" * 6000}, message_id=f"big-{i}")
    client.flush()
    client.join()
    assert errors == []
    assert _stored(custos) == sorted(f"big-{i}" for i in range(100))


def test_segment_limits_an_oversized_call_is_quarantined_alone(custos: Custos, server: str) -> None:
    """A Segment batch with one call over 32 KB: the others are stored, that one quarantined
    with its reason (nothing lost); a Segment request over 500 KB is answered 413; the same
    size from a RudderStack client is taken."""
    key = keys.create(custos, "web", [], "write")
    auth = {"Authorization": f"Bearer {key}"}
    small = [
        {"type": "track", "messageId": f"s-{i}", "anonymousId": "a", "event": "E"} for i in range(3)
    ]
    big = {"type": "track", "messageId": "huge", "anonymousId": "a", "event": "E"}
    big["properties"] = {"x": "y" * 40_000}
    answer = httpx.post(f"{server}/v1/batch", json={"batch": [*small, big]}, headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 3 and answer.json()["quarantined"] == 1
    [(rid, _, reason, _)] = _quarantine(custos)
    assert rid == "huge" and "more than the 32768 bytes a call may have" in reason
    many = [
        {"type": "track", "messageId": f"m-{i}", "anonymousId": "a", "event": "E", "p": "z" * 6000}
        for i in range(100)
    ]
    segment = httpx.post(f"{server}/v1/batch", json={"batch": many}, headers=auth)
    assert segment.status_code == 413
    rudder = [{**m, "channel": "server"} for m in many]
    zipped = gzip.compress(orjson.dumps({"batch": rudder}))
    taken = httpx.post(
        f"{server}/v1/batch",
        content=zipped,
        headers={**auth, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert taken.status_code == 200 and taken.json()["stored"] == 100


def test_unreadable_tc_string_times_integrations_and_gpc_time(custos: Custos, server: str) -> None:
    """A TCF v1 string and an unreadable timestamp are quarantined as notes of the stored call
    (nothing vanishes); a batch's integrations reach each call; a GPC event is timed when it
    was received."""
    key = keys.create(custos, "backend", [], "server")
    auth = {"Authorization": f"Bearer {key}"}
    v1 = "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA"  # a TCF v1.1 consent string
    calls = [
        {"type": "track", "messageId": "tcf1", "userId": "u-9", "event": "E",
         "context": {"consent": {"tcString": v1}}},
        {"type": "track", "messageId": "when", "userId": "u-9", "event": "E",
         "timestamp": "last tuesday", "integrations": {"Mixpanel": False}},
        {"type": "track", "messageId": "gpc", "userId": "u-9", "event": "E",
         "timestamp": "2020-01-01T00:00:00Z", "context": {"gpc": True}},
    ]  # fmt: skip
    body = {"batch": calls, "integrations": {"All": False, "Mixpanel": True}}
    answer = httpx.post(f"{server}/v1/batch", json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["stored"] == 3 and result["consent_problems"] == 1
    assert result["fields_dropped"] == 1
    entries = {(rid, field): reason for rid, field, reason, _ in _quarantine(custos)}
    assert "version 1" in entries[("tcf1", "consent")]
    assert entries[("when", "timestamp")].startswith("timestamp is not a date-time")
    with custos.store.read() as conn:
        payloads = dict(
            conn.execute(select(t.raw_records.c.record_id, t.raw_records.c.payload)).all()
        )
    assert orjson.loads(payloads["when"])["integrations"] == {"All": False, "Mixpanel": False}
    assert orjson.loads(payloads["gpc"])["integrations"] == {"All": False, "Mixpanel": True}
    [(status, _, at, evidence)] = _ledger(custos, "third_party_sharing")
    assert status == "denied" and abs(at - datetime.now(UTC)) < timedelta(minutes=5)
    assert "client time 2020-01-01" in evidence
    assert _audit(custos, "collect")[-1]["consent_problems"] == 1


def test_real_clients_malformed_consent_is_quarantined_not_fatal(
    custos: Custos, server: str
) -> None:
    """The Segment and RudderStack libraries pass a consent object of the wrong shape through:
    every call of their batches is stored, each unreadable signal listed in the quarantine."""
    key = keys.create(custos, "backend", [], "server")
    errors: list[Any] = []
    segment = SegmentClient(
        key, host=server, on_error=lambda e, b: errors.append(e), upload_interval=0.05
    )
    rudder = RudderClient(
        key, host=server, on_error=lambda e, b: errors.append(e), upload_interval=0.05
    )
    segment.track("u-1", "E", context={"consent": "granted"}, message_id="seg-bad")
    segment.track("u-1", "E", message_id="seg-ok")
    rudder.track("u-2", "E", context={"consentManagement": ["analytics"]}, message_id="rs-bad")
    rudder.track("u-2", "E", message_id="rs-ok")
    for client in (segment, rudder):
        client.flush()
        client.join()
    assert errors == []
    assert _stored(custos) == ["rs-bad", "rs-ok", "seg-bad", "seg-ok"]
    reasons = {rid: reason for rid, _, reason, _ in _quarantine(custos)}
    assert reasons == {
        "seg-bad": "context.consent is text, not an object: its consent signal was not read",
        "rs-bad": "context.consentManagement is a list, not an object: its consent signal was "
        "not read",
    }


def test_rudderstack_anonymous_gpc_before_identify(custos: Custos, server: str) -> None:
    """The real RudderStack client: an anonymous track with ``context.gpc``, then an identify of
    that device (a server key): the opt-out is the person's, timed when it was received."""
    key = keys.create(custos, "backend", [], "server")
    errors: list[Any] = []
    client = RudderClient(
        key, host=server, on_error=lambda e, b: errors.append(e), upload_interval=0.05
    )
    client.track(anonymous_id="dev-r", event="Viewed", context={"gpc": True}, message_id="r1")
    client.flush()  # (join() would stop the client's sender)
    assert _ledger(custos, "third_party_sharing") == []
    client.identify("rs-User", anonymous_id="dev-r", message_id="r2")
    client.flush()
    client.join()
    assert errors == []
    [(status, customer, _, evidence)] = _ledger(custos, "third_party_sharing")
    assert (status, customer) == ("denied", "rs-User") and "context.gpc=true" in evidence
