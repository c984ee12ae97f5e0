"""The embedded default backend: one SQLite file, WAL journal, one writer at a time."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from itertools import chain
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Index, Table, create_engine, event
from sqlalchemy.exc import OperationalError

from custos.core.errors import StoreError
from custos.store.base import PreparedRows, Store

#: Page cache of every connection (128 MiB) and of a bulk rewrite (512 MiB; freed after).
CACHE_KIB = 131072
BULK_CACHE_KIB = 524288
#: Batches of at least this many rows are inserted from one JSON text (see detach).
JSON_BATCH_ROWS = 1000
#: How long a writer waits for the one write lock before it gives up with "database is locked"
#: (SQLite retries on its own meanwhile). Identity resolution holds the lock only to write its
#: result, but that takes a while on millions of records: ingestion batches and collection
#: requests wait for it rather than fail.
BUSY_TIMEOUT_MS = 300_000
#: How long emptying the write-ahead log after a purge waits for readers (a resolution computing
#: from its snapshot is one), in tries of ``WAL_TRY_MS`` between which other writers have the
#: lock: a TRUNCATE checkpoint holds the write lock while it waits.
WAL_WAIT_S = 300.0
WAL_TRY_MS = 500


class SQLiteStore(Store):
    """A store in a SQLite file; readers never block the writer and the writer never blocks them."""

    backend = "sqlite"
    placeholder = "?"

    @classmethod
    def connect(cls, url: str) -> SQLiteStore:
        """Open (creating if needed, mode 0600) the SQLite file behind ``url``."""
        _create_private(url)
        engine = create_engine(url)
        _configure(engine)
        return cls(url, engine)

    @property
    def file(self) -> Path | None:
        """The SQLite file; None in memory."""
        return None if _in_memory(self.url) else _path(self.url)

    @property
    def in_memory(self) -> bool:
        """A ``:memory:`` database (``sqlite://``)."""
        return _in_memory(self.url)

    def detach(self, prepared: PreparedRows) -> None:
        """A large batch of text and integers also as one JSON array.

        ``executemany`` takes Python's lock back for every row it binds, so inserting on one
        thread while another runs Python code makes both wait on each other. The JSON text is
        inserted by one statement (``json_each``) that runs start to end without the lock (on
        its own, it is a little slower than ``executemany``). Only rows of text and integers
        take this path: JSON cannot carry bytes, and would turn a float NaN into null.
        """
        if len(prepared.rows) >= JSON_BATCH_ROWS and _text_and_integers(prepared):
            with suppress(TypeError):  # an integer beyond 64 bits: the plain path
                prepared.payload = orjson.dumps(prepared.rows).decode()

    @classmethod
    @contextmanager
    def secure_delete(cls, conn: Connection) -> Iterator[None]:
        """Deletions inside overwrite the freed space with zeros (``secure_delete``); the
        connection's previous setting is restored after."""
        previous = conn.exec_driver_sql("PRAGMA secure_delete").scalar()
        conn.exec_driver_sql("PRAGMA secure_delete=ON")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"PRAGMA secure_delete={int(previous or 0)}")

    def purge(self, tables: Sequence[str]) -> dict[str, Any]:
        """Rebuild the file (``VACUUM``) and empty the write-ahead log, so no page of a deleted
        row is left in either (``tables``: every one is rebuilt anyway)."""
        with self.engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            driver.execute("VACUUM")
            busy = _truncate_wal(driver)
        if busy:
            raise StoreError(
                "another connection is reading the store, so its write-ahead log could not be "
                "emptied",
                hint="run the request again (custos dsr resume) when the other reader is done",
            )
        return {"vacuum": "file rebuilt", "wal": "checkpointed and truncated"}

    def _busy(self, exc: OperationalError) -> bool:
        """SQLite's busy timeout ran out."""
        return "database is locked" in str(exc.orig)

    def indexes_to_rebuild(self, table: Table) -> list[Index]:
        """Every secondary index: one sort after the rows are in is much cheaper than a
        million inserts in random key order, and readers keep seeing the committed table and
        its indexes until the transaction ends."""
        return sorted(table.indexes, key=lambda ix: ix.name or "")

    def insert_prepared(self, conn: Connection, prepared: PreparedRows) -> None:
        """Insert prepared rows: a large batch from its JSON text in one statement."""
        if prepared.payload is None:
            super().insert_prepared(conn, prepared)
            return
        picks = ", ".join(f"value ->> {i}" for i in range(len(prepared.names)))
        conn.exec_driver_sql(
            f"INSERT INTO {prepared.table.name} ({', '.join(prepared.names)}) "
            f"SELECT {picks} FROM json_each(?)",
            (prepared.payload,),
        )

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


def _create_private(url: str) -> None:
    """Create a missing store file with mode 0600 whatever the umask: it holds personal data,
    and SQLite gives its -wal and -shm files the mode of the database file. An existing file
    keeps the mode its owner chose."""
    if _in_memory(url):
        return
    path = _path(url)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _truncate_wal(driver: Any) -> bool:
    """Checkpoint and truncate the write-ahead log; True when readers kept it busy throughout."""
    (previous,) = driver.execute("PRAGMA busy_timeout").fetchone()
    driver.execute(f"PRAGMA busy_timeout={WAL_TRY_MS}")
    deadline = time.monotonic() + WAL_WAIT_S
    try:
        while True:
            busy, _, _ = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy or time.monotonic() >= deadline:
                return bool(busy)
            time.sleep(WAL_TRY_MS / 1000)
    finally:
        driver.execute(f"PRAGMA busy_timeout={int(previous)}")


def _in_memory(url: str) -> bool:
    return url.startswith("sqlite:///:memory:") or url == "sqlite://"


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


_JSON_SAFE = frozenset({str, int, type(None)})


def _text_and_integers(prepared: PreparedRows) -> bool:
    """Whether every value of the rows is text, an integer or None (one pass, in C)."""
    return set(map(type, chain.from_iterable(prepared.rows))) <= _JSON_SAFE


def _configure(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control from the driver so that writes can BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # bulk loads touch big indexes
        cur.execute("PRAGMA wal_autocheckpoint=16384")  # checkpoint every ~64 MiB, not 4 MiB
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # A write takes the database's single RESERVED lock up front, so two writers queue
        # (busy_timeout) instead of failing half-way with SQLITE_BUSY.
        write = conn.get_execution_options().get("custos_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
