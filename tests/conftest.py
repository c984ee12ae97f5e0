"""Shared fixtures: a real PostgreSQL server for the test session, and stores on both backends.

The server is started from the PostgreSQL binaries (``initdb``/``pg_ctl``) in a temporary folder
on a free loopback port and stopped at the end of the session. Every test that takes the
``store_url`` fixture runs once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from custos.core.settings import Settings
from custos.service import Custos
from custos.store.pgserver import PostgresServer


@pytest.fixture(autouse=True)
def _private_key_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each test's secret key and audit checkpoints in a folder of its own, never the user's
    ~/.config/custos (tests that name a key file keep theirs)."""
    folder = tmp_path_factory.mktemp("keys")
    monkeypatch.setenv("CUSTOS_SECRET_KEY_FILE", str(folder / "secret.key"))
    monkeypatch.setenv("CUSTOS_AUDIT_KEY_FILE", str(folder / "audit.key"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole test session."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store on each backend in turn."""
    if request.param == "sqlite":
        return str(tmp_path / "custos.db")
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.new_database()


@pytest.fixture
def settings() -> Settings:
    """Default settings, independent of the environment the tests run in."""
    return Settings(_env_file=None, db="unused")  # type: ignore[call-arg]


@pytest.fixture
def custos(store_url: str, settings: Settings) -> Iterator[Custos]:
    """A custos instance on an empty store, on each backend in turn."""
    with Custos.open(store_url, settings) as app:
        yield app


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (creating folders) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def served(custos: Custos) -> Iterator[str]:
    """custos's API served by a real uvicorn on a free loopback port, in a thread; its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    from custos.api.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(custos), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def start_serve(db: str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`custos serve` on ``db`` as its own process (``env``: extra environment variables);
    returns the process once it answers /health."""
    import os
    import sys
    import time

    import httpx

    process = subprocess.Popen(
        [sys.executable, "-c", "from custos.cli import main; main()", "--db", db, "serve",
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("custos serve did not start")
