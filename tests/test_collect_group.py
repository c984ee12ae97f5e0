"""Group commit of the collection API: many requests share one transaction, each is answered
only once that transaction has committed, and a failing request fails alone."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from custos.api.app import create_app
from custos.cli import app as cli
from custos.service import Custos, keys
from custos.service import collect as service
from tests.conftest import write


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port, in a thread; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def xref(custos: Custos) -> list[tuple[str, str]]:
    return sorted((source, record_id) for source, record_id, _ in custos.xref())


def _batch(prefix: str, count: int, key: str) -> dict[str, Any]:
    return {
        "writeKey": key,
        "batch": [
            {"type": "track", "messageId": f"{prefix}-{i}", "userId": f"u-{i}", "event": "E"}
            for i in range(count)
        ],
    }


def _post_all(base: str, bodies: list[dict[str, Any]]) -> tuple[list[threading.Thread], list[Any]]:
    """Post every body from its own thread; the answers land in the returned list."""
    answers: list[Any] = [None] * len(bodies)

    def post(i: int) -> None:
        answers[i] = httpx.post(f"{base}/v1/batch", json=bodies[i], timeout=60)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    return threads, answers


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_concurrent_batches_share_a_commit_and_are_acknowledged_only_after_it(
    custos: Custos,
) -> None:
    key = keys.create(custos, "web", [], "write")
    app = create_app(custos)
    writer = app.state.collect_writer
    # Five requests; the last two repeat message ids of the first (a client's resend racing
    # its original): every call must be stored exactly once.
    bodies = [_batch(f"b{i}", 20, key) for i in range(3)] + [_batch("b0", 20, key)] * 2
    with serving(app) as base:
        with custos.store.write():  # someone else (the CLI, say) holds the writer lock
            threads, answers = _post_all(base, bodies)
            # The writer took the first request and waits for the lock; the others queue.
            _wait_for(lambda: writer.waiting == len(bodies) - 1, "the requests to queue")
            time.sleep(0.2)
            assert all(a is None for a in answers)  # nothing acknowledged before the commit
        for thread in threads:
            thread.join(60)
    assert [a.status_code for a in answers] == [200] * len(bodies)
    stored = sum(a.json()["stored"] for a in answers)
    duplicates = sum(a.json()["duplicates"] for a in answers)
    assert stored == 60 and duplicates == 40
    assert xref(custos) == sorted(("web", f"b{i}-{j}") for i in range(3) for j in range(20))
    assert writer.requests == len(bodies)
    assert writer.groups == 2  # the first request alone, then the four that queued, together


def test_a_failing_request_fails_alone_and_stores_nothing(custos: Custos, tmp_path: Path) -> None:
    """A request that cannot be written (its key names a source holding person records) is
    answered with its error; the request it shared a transaction with is written without it."""
    key = keys.create(custos, "web", [], "write")
    clash = keys.create(custos, "crm", [], "write")
    # "crm" already holds person records, so collected interactions cannot go there.
    custos.ingest(write(tmp_path / "crm.csv", "record_id,email\nr1,a@example.com\n"), "crm")
    app = create_app(custos)
    writer = app.state.collect_writer
    with serving(app) as base:
        with custos.store.write():
            first, first_answer = _post_all(base, [_batch("ok1", 5, key)])
            _wait_for(lambda: writer.writing == 1, "the writer to take the first request")
            threads, answers = _post_all(base, [_batch("bad", 5, clash), _batch("ok2", 5, key)])
            _wait_for(lambda: writer.waiting == 2, "the other two to queue together")
        for thread in first + threads:
            thread.join(60)
    assert first_answer[0].status_code == 200
    bad, ok = answers
    assert ok.status_code == 200 and ok.json()["stored"] == 5
    assert bad.status_code == 400 and "crm" in bad.json()["error"]["message"]
    stored = [rid for source, rid in xref(custos) if source != "crm"]
    assert sorted(stored) == sorted([f"ok1-{i}" for i in range(5)] + [f"ok2-{i}" for i in range(5)])
    # ok1 alone, then the group of two failed whole and ok2 was written again on its own.
    assert (writer.groups, writer.requests) == (2, 2)


def test_collect_many_is_one_transaction_and_can_be_retried(custos: Custos) -> None:
    now = service.utcnow()
    first = service.CollectRequest(
        [("track", {"messageId": "m1", "userId": "u", "event": "E"})], "web", now
    )
    second = service.CollectRequest(
        [
            ("track", {"messageId": "m1", "userId": "u", "event": "E"}),  # same call again
            ("identify", {"messageId": "m2", "userId": "u", "anonymousId": "a-1"}),
            ("track", {"messageId": "m3", "anonymousId": "a-1", "event": "E"}),
        ],
        "web",
        now,
        verified=True,  # a server-side key: its identify links the device
    )
    parts = [service.prepare(custos, [first]), service.prepare(custos, [second])]
    results = service.write(custos, parts)
    assert [(r.stored, r.duplicates) for r in results] == [(1, 0), (2, 1)]
    again = service.write(custos, parts)  # the parts are unchanged: a retry finds them stored
    assert [(r.stored, r.duplicates) for r in again] == [(0, 1), (0, 3)]
    assert xref(custos) == [("web", "m1"), ("web", "m2"), ("web", "m3")]
    with custos.store.read() as conn:
        from sqlalchemy import select

        from custos.store import tables as t

        linked = conn.execute(
            select(t.interactions.c.customer_id)
            .join(t.raw_records, t.raw_records.c.id == t.interactions.c.raw_id)
            .where(t.raw_records.c.record_id == "m3")
        ).scalar_one()
    assert (
        linked == "u"
    )  # exactly as sent; the anonymous call of the same group took the identified user


def test_serve_with_two_workers_stores_everything_once_and_answers_at_once(
    tmp_path: Path,
) -> None:
    """``custos serve --workers 2``: two processes write through the same store; answers on a
    kept-alive connection are not held back (~40 ms each) by Nagle and delayed ACKs."""
    db = str(tmp_path / "workers.db")
    assert CliRunner().invoke(cli, ["--db", db, "init"]).exit_code == 0  # only init creates a store
    made = CliRunner().invoke(
        cli, ["--db", db, "keys", "create", "--name", "web", "--scope", "write"]
    )
    key = made.stdout.strip().splitlines()[-1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", "from custos.cli import main; main()", "--db", db, "serve",
         "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _healthy(base), "the server")
        with httpx.Client(timeout=30) as client:
            client.get(f"{base}/health")
            started = time.perf_counter()
            for _ in range(20):
                assert client.get(f"{base}/health").status_code == 200
            elapsed = time.perf_counter() - started
        threads, answers = _post_all(base, [_batch(f"w{i}", 50, key) for i in range(8)])
        for thread in threads:
            thread.join(60)
    finally:
        server.terminate()
        server.wait(30)
    assert elapsed < 20 * 0.04  # each answer would wait for the delayed ACK otherwise
    assert [a.status_code for a in answers] == [200] * 8
    with Custos.open(db) as app:
        stored = [rid for source, rid, _ in app.xref() if source == "web"]
    assert sorted(stored) == sorted(f"w{i}-{j}" for i in range(8) for j in range(50))


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health").status_code == 200
    except httpx.TransportError:
        return False


def test_anonymous_calls_before_identify_join_the_profile(custos: Custos, tmp_path: Path) -> None:
    """A device browses anonymously, then signs in: the identify names its anonymous id, so the
    earlier calls (stored in other transactions) join the person's profile at the next
    resolution, incremental or full; another device's calls stay apart."""
    from sqlalchemy import select

    from custos.store import tables as t

    def send(*calls: tuple[str, dict[str, object]]) -> None:
        # a server-side key: its identify links the device (a write key's would not)
        request = service.CollectRequest(list(calls), "web", service.utcnow(), verified=True)
        service.write(custos, [service.prepare(custos, [request])])

    crm = "record_id,first_name,last_name,email\nc1,Ada,Lovelace,ada@example.org\n"
    crm += "c2,Alan,Turing,alan@example.org\n"
    custos.ingest(write(tmp_path / "crm.csv", crm), "crm")  # a model is saved: incremental runs
    send(("identify", {"messageId": "i0", "userId": "u-0", "traits": {"email": "z@example.org"}}))
    custos.resolve()
    send(("page", {"messageId": "p1", "anonymousId": "dev-1", "name": "Home"}))
    send(("track", {"messageId": "t1", "anonymousId": "dev-1", "event": "Viewed"}))
    send(("track", {"messageId": "t9", "anonymousId": "dev-9", "event": "Viewed"}))
    custos.resolve()
    before = {r: p for _, r, p in custos.xref()}
    assert before["p1"] == before["t1"] == ""  # nothing links them yet
    send(
        (
            "identify",
            {
                "messageId": "i1",
                "userId": "u-1",
                "anonymousId": "dev-1",
                "traits": {"email": "ada@example.org"},
            },
        )
    )
    summary = custos.resolve()
    assert summary.mode == "incremental"
    after = {r: p for _, r, p in custos.xref()}
    assert after["i1"] and after["p1"] == after["t1"] == after["i1"]
    assert after["t9"] == "" and after["i0"] != after["i1"]
    crm_profile = {(src, r): p for src, r, p in custos.xref()}[("crm", "c1")]
    assert after["t1"] == crm_profile  # and the e-mail joins them to the CRM record
    with custos.store.read() as conn:
        assert conn.execute(select(t.collect_pending.c.anonymous_id)).scalars().all() == ["dev-9"]
        assert conn.execute(select(t.identity_recheck.c.raw_id)).all() == []
    custos.resolve(full=True)
    assert {r: p for _, r, p in custos.xref()} == after
