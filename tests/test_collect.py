"""The Segment-compatible collection API, driven by the real Segment and RudderStack clients
against a real uvicorn server, and by raw HTTP for the edge cases."""

from __future__ import annotations

import base64
import gzip
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient
from sqlalchemy import select
from typer.testing import CliRunner

from custos.api.app import create_app
from custos.cli import app as cli
from custos.service import Custos, keys
from custos.service.collect import event_time
from custos.store import tables as t
from tests.conftest import served, start_serve

# An IAB TCF v2 TC string (purposes 1, 3, 9, 10 … consented; 2 and 4 not), last updated
# 2012-01-10 (the example of the consent tests).
TC_STRING = (
    "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA"
    ".argAC0gAAAAAAAAAAAA"
)


@pytest.fixture
def server(custos: Custos) -> Iterator[str]:
    """The API served by uvicorn on a free loopback port, in a thread."""
    with served(custos) as base:
        yield base


def xref(custos: Custos) -> list[tuple[str, str]]:
    return [(source, record_id) for source, record_id, _ in custos.xref()]


def send_all(client: Any, prefix: str) -> list[str]:
    """Every kind of call, each with a known messageId; returns the ids."""
    ids: list[str] = []

    def mid(name: str) -> str:
        ids.append(f"{prefix}-{name}")
        return ids[-1]

    consent = {"consent": {"categoryPreferences": {"Marketing": True, "Analytics": False}}}
    client.identify(
        "u-1",
        {"email": "anna@example.com", "firstName": "Anna", "lastName": "Muster"},
        anonymous_id="anon-1",
        message_id=mid("identify"),
    )
    for i in range(20):
        client.track("u-1", "Viewed Item", {"item": i}, context=consent, message_id=mid(f"t{i}"))
    client.page("u-1", "Docs", "Getting started", {"path": "/docs"}, message_id=mid("page"))
    client.screen("u-1", "App", "Home", message_id=mid("screen"))
    client.group("u-1", "g-1", {"name": "Example Ltd"}, message_id=mid("group"))
    client.alias("anon-2", "u-1", message_id=mid("alias"))
    client.track(
        anonymous_id="anon-1", event="Anonymous Click", message_id=mid("anon")
    )  # tied to u-1 by the identify above
    return ids


def test_segment_client_events_arrive_exactly_once(custos: Custos, server: str) -> None:
    key = keys.create(custos, "web", [], "server")  # a server-side key: its calls are verified
    errors: list[Any] = []
    client = SegmentClient(
        key,
        host=server,
        on_error=lambda e, batch: errors.append(e),
        upload_interval=0.05,
        max_retries=1,
    )
    ids = send_all(client, "seg")
    client.flush()
    client.join()
    assert errors == []
    rows = xref(custos)
    assert sorted(rows) == sorted(("web", i) for i in ids)  # each exactly once, source = key name
    with custos.store.read() as conn:
        anonymous = conn.execute(
            select(t.interactions.c.customer_id)
            .join(t.raw_records, t.raw_records.c.id == t.interactions.c.raw_id)
            .where(t.raw_records.c.record_id == "seg-anon")
        ).scalar_one()
        marketing = (
            conn.execute(
                select(t.consent_events.c.status).where(
                    t.consent_events.c.purpose == "marketing_email"
                )
            )
            .scalars()
            .all()
        )
    assert anonymous == "u-1"  # exactly as sent; the anonymous id was tied to the user by identify
    assert marketing and set(marketing) == {"granted"}


def test_rudderstack_client_gzip_basic_auth_exactly_once(custos: Custos, server: str) -> None:
    key = keys.create(custos, "app", [], "write")
    errors: list[Any] = []
    client = RudderClient(
        key,
        host=server,
        gzip=True,
        on_error=lambda e, batch: errors.append(e),
        upload_interval=0.05,
        max_retries=1,
    )
    ids = send_all(client, "rs")
    client.flush()
    client.join()
    assert errors == []
    assert sorted(xref(custos)) == sorted(("app", i) for i in ids)


def test_resend_is_stored_once_and_collected_calls_resolve(custos: Custos, server: str) -> None:
    key = keys.create(custos, "web", [], "server")  # a server-side key: its calls are verified
    batch = {
        "batch": [
            {
                "type": "identify",
                "messageId": "m1",
                "userId": "u-9",
                "traits": {"email": "Ben@Example.com"},
            },
            {"type": "track", "messageId": "m2", "userId": "u-9", "event": "Signed Up"},
        ],
        "writeKey": key,
    }
    first = httpx.post(f"{server}/v1/batch", json=batch)
    again = httpx.post(f"{server}/v1/batch", json=batch)
    assert first.status_code == 200 and first.json()["stored"] == 2
    assert again.status_code == 200 and again.json()["duplicates"] == 2
    assert again.json()["stored"] == 0
    assert sorted(xref(custos)) == [("web", "m1"), ("web", "m2")]
    custos.resolve()
    profile = custos.find_profile("ben@example.com")
    linked = {rid: pid for _, rid, pid in custos.xref()}
    assert linked == {"m1": profile, "m2": profile}  # linked through the user id


def test_authentication_by_body_basic_or_bearer(custos: Custos) -> None:
    key = keys.create(custos, "web", [], "write")
    reader = keys.create(custos, "desk", ["customer_service"])
    client = TestClient(create_app(custos))
    call = {"userId": "u", "event": "E"}
    basic = base64.b64encode(f"{key}:".encode()).decode()
    assert client.post("/v1/track", json={**call, "messageId": "a", "writeKey": key}).is_success
    assert client.post(
        "/v1/track", json={**call, "messageId": "b"}, headers={"Authorization": f"Basic {basic}"}
    ).is_success
    assert client.post(
        "/v1/track", json={**call, "messageId": "c"}, headers={"Authorization": f"Bearer {key}"}
    ).is_success
    assert client.post("/v1/track", json={**call, "messageId": "d"}).status_code == 401
    wrong = client.post("/v1/track", json={**call, "writeKey": "ck_live_wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    read_only = client.post("/v1/track", json={**call, "writeKey": reader})
    assert read_only.status_code == 403
    keys.revoke(custos, "web")
    assert client.post("/v1/track", json={**call, "writeKey": key}).status_code == 401
    assert sorted(r for _, r in xref(custos)) == ["a", "b", "c"]


def test_bad_bodies_limits_and_overload(custos: Custos) -> None:
    key = keys.create(custos, "web", [], "write")
    app = create_app(custos)
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {key}"}
    not_json = client.post("/v1/track", content=b"{nope", headers=auth)
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "bad_request"
    huge = {"userId": "u", "event": "E", "properties": {"x": "y" * 40_000}}
    assert client.post("/v1/track", json=huge, headers=auth).status_code == 400
    many = {"batch": [{"type": "track", "userId": "u", "event": "E" * 20_000}] * 30}
    assert client.post("/v1/batch", json=many, headers=auth).status_code == 413
    bomb = gzip.compress(b'{"batch": [' + b" " * 3_000_000 + b"]}")
    zipped = client.post("/v1/batch", content=bomb, headers={**auth, "Content-Encoding": "gzip"})
    assert zipped.status_code == 413
    small = gzip.compress(orjson.dumps({"userId": "u", "event": "E", "messageId": "z"}))
    ok = client.post("/v1/track", content=small, headers={**auth, "Content-Encoding": "gzip"})
    assert ok.status_code == 200 and ok.json()["success"] is True
    app.state.collect_gate.busy = app.state.collect_gate.limit  # as if every place were taken
    busy = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=auth)
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
    app.state.collect_gate.busy = 0
    assert sorted(r for _, r in xref(custos)) == ["z"]


def test_invalid_calls_are_quarantined_not_lost(custos: Custos) -> None:
    key = keys.create(custos, "web", [], "write")
    client = TestClient(create_app(custos))
    batch = {
        "writeKey": key,
        "batch": [
            {"type": "track", "messageId": "no-event", "userId": "u"},
            {"type": "identify", "messageId": "no-user", "traits": {}},
            {"type": "identify", "messageId": "bad-mail", "userId": "u", "traits": {"email": "@"}},
            {"type": "launch", "messageId": "odd", "userId": "u"},
            {"type": "track", "messageId": "fine", "userId": "u", "event": "E"},
        ],
    }
    answer = client.post("/v1/batch", json=batch)
    assert answer.status_code == 200
    # The call whose e-mail cannot be one is stored without it (the field is listed).
    assert answer.json()["stored"] == 2 and answer.json()["quarantined"] == 3
    again = client.post("/v1/batch", json=batch)  # a resend quarantines nothing twice
    assert again.status_code == 200
    rows = custos.quarantine()
    assert sorted(r["record_id"] for r in rows) == ["bad-mail", "no-event", "no-user", "odd"]
    assert all("@" not in (r["reason"] or "") for r in rows)
    [left_out] = [r for r in rows if r["record_id"] == "bad-mail"]
    assert left_out["field"] == "email" and "row stored without this field" in left_out["reason"]


def test_gpc_header_and_tcf_become_ledger_events(custos: Custos) -> None:
    key = keys.create(custos, "web", [], "write")
    client = TestClient(create_app(custos))
    call = {
        "userId": "u-5",
        "event": "E",
        "messageId": "g1",
        "context": {"traits": {"email": "c@example.com"}, "consent": {"tcString": TC_STRING}},
    }
    answer = client.post(
        "/v1/track", json=call, headers={"Authorization": f"Bearer {key}", "Sec-GPC": "1"}
    )
    assert answer.json()["consent_events"] >= 2
    with custos.store.read() as conn:
        rows = conn.execute(
            select(
                t.consent_events.c.purpose,
                t.consent_events.c.status,
                t.consent_events.c.method,
                t.consent_events.c.customer_id,
                t.consent_events.c.email,
            )
        ).all()
    assert ("third_party_sharing", "denied", "gpc", "u-5", "c@example.com") in rows
    assert ("personalization", "denied", "tcf", "u-5", "c@example.com") in rows
    with custos.store.read() as conn:
        tcf_time = (
            conn.execute(
                select(t.consent_events.c.timestamp).where(t.consent_events.c.method == "tcf")
            )
            .scalars()
            .first()
        )
    # Timed when the server received it: the string's own update time (2012) is the client's
    # claim, kept in the evidence.
    assert tcf_time is not None and abs(tcf_time - datetime.now(UTC)) < timedelta(minutes=5)
    with custos.store.read() as conn:
        evidence = conn.execute(
            select(t.consent_events.c.evidence).where(t.consent_events.c.method == "tcf")
        ).scalar()
    assert evidence and "client time 2012-01-10T17:10:13" in evidence


def test_clock_skew_is_corrected() -> None:
    received = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    # The client's clock is an hour fast: it says it sent at 13:00 an event of 12:59.
    call = {"timestamp": "2026-05-01T12:59:00Z", "sentAt": "2026-05-01T13:00:00Z"}
    assert event_time(call, received) == received - timedelta(minutes=1)
    assert event_time({"timestamp": "2026-05-01T11:00:00Z"}, received) == received - timedelta(
        hours=1
    )
    assert event_time({}, received) == received
    assert event_time({"timestamp": "soon"}, received) == received
    skewed = {"timestamp": "2000-01-01T00:00:00Z", "sentAt": "8301-07-14T00:00:00Z"}
    assert event_time(skewed, received) == received  # found by schemathesis: no overflow


def test_custos_serve_shares_the_store_with_the_cli(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    assert CliRunner().invoke(cli, ["--db", db, "init"]).exit_code == 0  # only init creates a store
    runner = CliRunner()
    made = runner.invoke(cli, ["--db", db, "keys", "create", "--name", "web", "--scope", "write"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from custos.cli import main; main()",
            "--db",
            db,
            "serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(f"{base}/docs").status_code == 200
        sent = httpx.post(
            f"{base}/v1/track",
            json={"userId": "u", "event": "E", "messageId": "srv-1"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert sent.status_code == 200, sent.text
        # The CLI reads and writes the same store while the server runs.
        exported = runner.invoke(cli, ["--db", db, "export", "xref"])
        assert "web,srv-1" in exported.stdout
        assert runner.invoke(cli, ["--db", db, "keys", "revoke", "web"]).exit_code == 0
        refused = httpx.post(
            f"{base}/v1/track",
            json={"userId": "u", "event": "E", "messageId": "srv-2"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert refused.status_code == 401
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_rudderstack_consent_shape_becomes_ledger_events(custos: Custos) -> None:
    key = keys.create(custos, "web", [], "server")  # a server-side key: its calls are verified
    client = TestClient(create_app(custos))
    call = {
        "userId": "u-6",
        "event": "E",
        "messageId": "r1",
        "context": {
            "consentManagement": {
                "allowedConsentIds": ["marketing"],
                "deniedConsentIds": ["analytics"],
            }
        },
    }
    answer = client.post("/v1/track", json=call, headers={"Authorization": f"Bearer {key}"})
    assert answer.json()["consent_events"] == 2
    with custos.store.read() as conn:
        rows = set(
            conn.execute(
                select(
                    t.consent_events.c.purpose,
                    t.consent_events.c.status,
                    t.consent_events.c.method,
                )
            ).all()
        )
    assert rows == {
        ("marketing_email", "granted", "rudderstack"),
        ("analytics", "denied", "rudderstack"),
    }


def test_a_failed_request_stores_nothing_and_is_not_acknowledged(
    custos: Custos, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = keys.create(custos, "web", [], "server")  # a server-side key: its calls are verified
    client = TestClient(create_app(custos), raise_server_exceptions=False)
    consent = {"consent": {"categoryPreferences": {"Marketing": True}}}
    batch = {
        "writeKey": key,
        "batch": [
            {"type": "track", "messageId": "x1", "userId": "u", "event": "E"},
            {"type": "track", "messageId": "x2", "userId": "u", "event": "E", "context": consent},
        ],
    }

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    # The consent step runs after the rows are written, in the same transaction.
    monkeypatch.setattr("custos.service.collect.cache.refresh", broken)
    failed = client.post("/v1/batch", json=batch)
    assert failed.status_code == 500 and failed.json()["error"]["code"] == "internal"
    assert "disk full" not in failed.text
    assert xref(custos) == []  # nothing half-written: the client will resend
    monkeypatch.undo()
    assert client.post("/v1/batch", json=batch).json()["stored"] == 2
    assert sorted(xref(custos)) == [("web", "x1"), ("web", "x2")]


def test_events_arrive_exactly_once_across_a_forced_server_restart(tmp_path: Path) -> None:
    """The server is killed (SIGKILL) mid-stream and started again: the Segment client retries
    what was not acknowledged, and every event is stored exactly once."""
    db = str(tmp_path / "restart.db")
    assert CliRunner().invoke(cli, ["--db", db, "init"]).exit_code == 0  # only init creates a store
    made = CliRunner().invoke(
        cli, ["--db", db, "keys", "create", "--name", "web", "--scope", "write"]
    )
    key = made.stdout.strip().splitlines()[-1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_serve(db, port)
    errors: list[Any] = []
    client = SegmentClient(
        key,
        host=f"http://127.0.0.1:{port}",
        on_error=lambda e, batch: errors.append(e),
        upload_interval=0.01,
        upload_size=5,
        max_retries=12,
    )
    ids = [f"r-{i}" for i in range(150)]
    try:
        for i, mid in enumerate(ids):
            client.track("u-1", "Viewed Item", {"i": i}, message_id=mid)
            if i == 60:
                server.kill()  # forced: no graceful shutdown, batches in flight are lost
                server.wait(10)
            if i == 100:
                server = start_serve(db, port)
            time.sleep(0.002)
        client.flush()
        client.join()
    finally:
        server.terminate()
        server.wait(10)
    assert errors == []
    with Custos.open(db) as app:
        stored = [record for source, record, _ in app.xref() if source == "web"]
    assert sorted(stored) == sorted(ids)  # every event, none twice
