"""A throw-away PostgreSQL cluster for tests and benchmarks (never for production data).

Starts the server binaries (``initdb``/``pg_ctl``) in a temporary folder on a free loopback
port, as the ``postgres`` user when run as root (PostgreSQL refuses root), and removes
everything on :meth:`PostgresServer.stop`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server binary (PATH first, then Debian's versioned folders)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    raise RuntimeError(
        f"PostgreSQL's {name} was not found: install the server (Debian: apt-get install postgresql); "
        ".ci/run does this on a fresh machine"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A throw-away PostgreSQL cluster owned by this test session."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="custos-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            user = os.environ.get("CUSTOS_PG_USER", "postgres")
            pwd.getpwnam(user)
            shutil.chown(self.root, user)
            self.root.chmod(0o700)
            self.prefix = ["runuser", "-u", user, "--"]
        self._run(
            pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            "custos",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this server."""
        return f"postgresql://custos@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and remove its files."""
        try:
            self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
