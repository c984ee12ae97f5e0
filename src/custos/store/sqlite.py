"""The embedded default backend: one SQLite file, WAL journal, one writer at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

from custos.store.base import Store

#: Page cache of every connection (128 MiB) and of a bulk rewrite (512 MiB; freed after).
CACHE_KIB = 131072
BULK_CACHE_KIB = 524288


class SQLiteStore(Store):
    """A store in a SQLite file; readers never block the writer and the writer never blocks them."""

    backend = "sqlite"

    @classmethod
    def connect(cls, url: str) -> SQLiteStore:
        """Open (creating if needed) the SQLite file behind ``url``."""
        engine = create_engine(url)
        _configure(engine)
        return cls(url, engine)

    @contextmanager
    def _bulk(self, conn: Connection, bulk: bool) -> Iterator[None]:
        """Foreign keys unchecked during a bulk rewrite: SQLite checks them row by row (a
        parent look-up per inserted row, and no fast truncation of a table), which costs a full
        resolution of a million records several seconds. The pragma only works outside a
        transaction, so it is set before BEGIN and restored after the end."""
        if not bulk:
            yield
            return
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        dbapi.execute("PRAGMA foreign_keys=OFF")
        # A page cache big enough that the rewrite does not spill half-built B-trees to the WAL
        # and read them back (a million-record resolution writes ~1 GB of pages).
        dbapi.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        try:
            yield
        finally:
            dbapi.execute("PRAGMA foreign_keys=ON")
            dbapi.execute(f"PRAGMA cache_size=-{CACHE_KIB}")


def _configure(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control from the driver so that writes can BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # bulk loads touch big indexes
        cur.execute("PRAGMA wal_autocheckpoint=16384")  # checkpoint every ~64 MiB, not 4 MiB
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # A write takes the database's single RESERVED lock up front, so two writers queue
        # (busy_timeout) instead of failing half-way with SQLITE_BUSY.
        write = conn.get_execution_options().get("custos_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
