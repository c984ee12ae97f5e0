"""Writers are not starved by identity resolution: it computes from a snapshot and holds the
write lock only to write its result. The attacks run real processes (`custos ingest`, `custos
serve`) against one SQLite file while a full resolution is in the middle of its computation."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.errors import StoreError
from custos.core.settings import Settings
from custos.identity import incremental
from custos.identity.graph import Edge, Node
from custos.identity.resolve import resolve
from custos.service import Custos, dsr
from custos.store import golden as golden_store
from custos.store import sqlite
from custos.store import tables as t
from tests.conftest import start_serve, write

HEADER = "record_id,first_name,last_name,email,date_of_birth,customer_id\n"
ANNA = "c1,Anna,Müller,anna@example.com,1985-03-07,C-1\n"
ANNA_NEW = "c1,Anna,Müller,anna.neu@example.com,1985-03-07,C-1\n"
BEN = "c2,Ben,Schmidt,ben@example.com,1979-11-02,C-2\n"
CARA = "c3,Cara,Jones,cara@example.com,1990-01-31,C-3\n"
DORA = "c4,Dora,Weber,dora@example.com,1970-05-05,C-4\n"
WEB = "record_id,full_name,email\nw1,Anna Müller,anna@example.com\n"


def _cli(db: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A `custos` command as its own process (its own connection and busy handling)."""
    return subprocess.run(
        [sys.executable, "-c", "from custos.cli import main; main()", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _xref(app: Custos) -> dict[tuple[str, str], str]:
    return {(s, r): p for s, r, p in app.xref()}


def _golden(app: Custos, profile_id: str) -> dict[str, str]:
    with app.store.read() as conn:
        document = conn.execute(
            select(t.profile_golden.c.document).where(t.profile_golden.c.profile_id == profile_id)
        ).scalar_one()
    return golden_store.values(document)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ingest_and_collection_go_on_while_a_resolution_computes(
    tmp_path: Path, settings: Settings
) -> None:
    db = str(tmp_path / "busy.db")
    assert CliRunner().invoke(cli, ["--db", db, "init"]).exit_code == 0  # only init creates a store
    made = CliRunner().invoke(
        # a server-side key: its call's user id is verified, so it links (a write key's is a claim)
        cli,
        ["--db", db, "keys", "create", "--name", "web", "--scope", "server"],
    )
    key = made.stdout.strip().splitlines()[-1]
    port = _free_port()
    server = start_serve(db, port)
    writers: dict[str, Any] = {}

    def meanwhile(nodes: list[Node]) -> list[Edge]:
        """Runs in the middle of the resolution's computation: the other writers' turn."""
        if writers:
            return []
        writers["snapshot"] = sum(1 for n in nodes if n.is_record)
        data = write(tmp_path / "export.csv", HEADER + ANNA_NEW + BEN + CARA)
        started = time.monotonic()
        writers["ingest"] = _cli(db, "ingest", str(data), "--source", "crm", timeout=30)
        writers["collect"] = httpx.post(
            f"http://127.0.0.1:{port}/v1/track",
            json={"userId": "C-2", "event": "Ordered", "messageId": "m-1", "writeKey": key},
            timeout=30,
        )
        writers["seconds"] = time.monotonic() - started
        return []

    try:
        with Custos.open(db, settings) as app:
            app.ingest(write(tmp_path / "crm.csv", HEADER + ANNA + BEN), "crm")
            app.resolve()
            anna = _xref(app)[("crm", "c1")]
            summary = resolve(app.store, settings, extra_edges=meanwhile)
            ingest, collect = writers["ingest"], writers["collect"]
            assert ingest.returncode == 0, ingest.stdout + ingest.stderr
            assert "locked" not in ingest.stdout + ingest.stderr
            assert collect.status_code == 200, collect.text
            assert writers["seconds"] < 20  # not queued behind the resolution
            # The resolution wrote what it computed from its snapshot...
            assert writers["snapshot"] == 2 and summary.records == 2 and summary.profiles == 2
            x = _xref(app)
            assert x[("crm", "c1")] == anna and x[("crm", "c2")] != anna
            # ... and left what arrived meanwhile for the next incremental resolution: the new
            # record and the collected call in no profile, Anna's new version marked.
            assert x[("crm", "c3")] == "" and [p for (s, _), p in x.items() if s == "web"] == [""]
            with app.store.read() as conn:
                marked = set(conn.execute(select(t.identity_recheck.c.raw_id)).scalars())
                anna_raw = conn.execute(
                    select(t.raw_records.c.id).where(t.raw_records.c.record_id == "c1")
                ).scalar_one()
            assert anna_raw in marked
            again = app.resolve()
            assert again.mode == "incremental"
            x = _xref(app)
            assert x[("crm", "c3")] not in ("", anna, x[("crm", "c2")])
            assert [p for (s, _), p in x.items() if s == "web"] == [x[("crm", "c2")]]
            assert x[("crm", "c1")] == anna
            assert _golden(app, anna)["email"] == "anna.neu@example.com"
    finally:
        server.terminate()
        server.wait(10)


def test_ingest_goes_on_while_an_incremental_resolution_computes(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "incremental.db")
    done: dict[str, Any] = {}
    linking = incremental.exact_edges

    def meanwhile(nodes: list[Node], **limits: Any) -> Any:
        """Runs while the incremental resolution scores its new rows: another ingestion."""
        if not done:
            started = time.monotonic()
            data = write(tmp_path / "late.csv", HEADER + DORA)
            done["ingest"] = _cli(db, "ingest", str(data), "--source", "crm", timeout=30)
            done["seconds"] = time.monotonic() - started
        return linking(nodes, **limits)

    with Custos.open(db, settings) as app:
        app.ingest(write(tmp_path / "crm.csv", HEADER + ANNA + BEN), "crm")
        app.resolve()
        app.ingest(write(tmp_path / "more.csv", HEADER + CARA), "crm")
        monkeypatch.setattr(incremental, "exact_edges", meanwhile)
        summary = app.resolve()
        monkeypatch.undo()
        late = done["ingest"]
        assert late.returncode == 0 and "locked" not in late.stdout + late.stderr, late.stderr
        assert done["seconds"] < 20
        assert summary.mode == "incremental" and summary.records == 1
        x = _xref(app)
        assert x[("crm", "c3")] != "" and x[("crm", "c4")] == ""  # the late row: next run
        app.resolve()
        assert _xref(app)[("crm", "c4")] not in ("", x[("crm", "c3")])


def test_a_decision_taken_during_a_resolution_is_not_overwritten(
    custos: Custos, tmp_path: Path, settings: Settings
) -> None:
    custos.ingest(write(tmp_path / "crm.csv", HEADER + ANNA + BEN), "crm")
    custos.ingest(write(tmp_path / "web.csv", WEB), "webshop")
    custos.resolve()
    anna = _xref(custos)[("crm", "c1")]
    assert _xref(custos)[("webshop", "w1")] == anna
    calls: list[int] = []

    def meanwhile(nodes: list[Node]) -> list[Edge]:
        """A curator splits the web-shop record off while the resolution computes."""
        calls.append(len(nodes))
        if len(calls) == 1:
            custos.unmerge(anna, ["webshop:w1"], reason="another Anna")
        return []

    resolve(custos.store, settings, extra_edges=meanwhile)
    assert len(calls) == 2  # the plan of the first snapshot was stale: computed again
    x = _xref(custos)
    assert x[("crm", "c1")] == anna and x[("webshop", "w1")] not in ("", anna)


def test_an_erasure_during_a_resolution_is_not_undone(
    custos: Custos, tmp_path: Path, settings: Settings
) -> None:
    custos.ingest(write(tmp_path / "crm.csv", HEADER + ANNA + BEN), "crm")
    custos.resolve()
    calls: list[int] = []
    erasing = settings.model_copy(update={"secret_key_file": str(tmp_path / "k" / "secret.key")})
    custos.settings = erasing
    eraser = threading.Thread(target=dsr.erase, args=(custos, "ben@example.com"))

    def meanwhile(nodes: list[Node]) -> list[Edge]:
        """Ben's erasure request is fulfilled while the resolution computes from its snapshot
        (its rows are deleted at once; on SQLite, emptying the write-ahead log of their pages
        waits for the snapshot to end)."""
        calls.append(len(nodes))
        if len(calls) == 1:
            eraser.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and custos.stats()["records"] == 2:
                time.sleep(0.05)
            # ... and a new record takes the raw id his newest row had (ids follow the highest)
            custos.ingest(write(tmp_path / "new.csv", HEADER + CARA), "crm")
        return []

    resolve(custos.store, erasing, extra_edges=meanwhile)
    eraser.join(60)
    assert not eraser.is_alive() and dsr.listing(custos)[0]["state"] == "done"
    assert calls == [2, 2]  # computed again: without his rows, with hers
    x = _xref(custos)
    assert set(x) == {("crm", "c1"), ("crm", "c3")} and "" not in x.values()
    with custos.store.read() as conn:
        members = set(conn.execute(select(t.profile_members.c.raw_id)).scalars())
        raw = set(conn.execute(select(t.raw_records.c.id)).scalars())
        documents = conn.execute(select(t.profile_golden.c.document)).scalars().all()
    assert members == raw and len(documents) == 2
    assert not any("Schmidt" in d or "ben@" in d for d in documents)


def test_ingest_waits_for_a_busy_store_instead_of_failing(
    tmp_path: Path, settings: Settings
) -> None:
    db = str(tmp_path / "held.db")
    data = write(tmp_path / "crm.csv", HEADER + ANNA + BEN)
    with Custos.open(db, settings) as app:
        released = threading.Event()

        def hold() -> None:
            with app.store.write():
                released.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            timer = threading.Timer(3.0, released.set)
            timer.start()
            started = time.monotonic()
            done = _cli(db, "ingest", str(data), "--source", "crm")
            waited = time.monotonic() - started
        finally:
            released.set()
            holder.join()
        assert done.returncode == 0, done.stdout + done.stderr
        assert waited >= 2.5  # it waited for the lock, then wrote
        assert app.stats()["records"] == 2


def test_a_writer_that_waited_too_long_gets_a_clear_error(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "stuck.db")
    with Custos.open(db, settings) as holder:
        monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 200)
        with Custos.open(db, settings) as waiter, holder.store.write():
            with pytest.raises(StoreError, match="stayed busy") as caught:
                waiter.ingest(write(tmp_path / "crm.csv", HEADER + ANNA), "crm")
            assert "run the command again" in (caught.value.hint or "")
