"""The server backend: PostgreSQL through psycopg 3."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import JSON, ColumnElement, Connection, Engine, Table, cast, create_engine, text

from custos.store.base import Store
from custos.store.tables import metadata

#: Key of the advisory lock that serialises custos writers (the same discipline as SQLite's).
WRITER_LOCK_KEY = 0x637573746F73  # "custos"
#: A table's statistics are refreshed once this many rows, and as many as it had, were added.
ANALYZE_MIN_ROWS = 1_000


class PostgresStore(Store):
    """A store in a PostgreSQL database; writers take one advisory lock per transaction."""

    backend = "postgresql"
    placeholder = "%s"
    snapshot_options: ClassVar[dict[str, Any]] = {"isolation_level": "REPEATABLE READ"}
    #: Benchmark only: bulk rows go in as row inserts instead of COPY, so ``bench/postgres.py``
    #: can measure what COPY gains: ``"batched"`` (psycopg's pipelined ``executemany``, the
    #: path before) or ``"statements"`` (one INSERT statement per row, as an ORM adding rows
    #: one by one sends them). Never set in custos itself.
    _row_inserts: ClassVar[str | None] = None

    def __init__(self, url: str, engine: Engine) -> None:
        super().__init__(url, engine)
        self._pending: dict[str, int] = {}
        self._known: dict[str, int] = {}

    @classmethod
    def connect(cls, url: str) -> PostgresStore:
        """Connect to the database behind a ``postgresql://`` URL."""
        engine = create_engine(url, pool_pre_ping=True)
        return cls(url, engine)

    def json_text(
        self, column: ColumnElement[Any], path: tuple[str | int, ...]
    ) -> ColumnElement[str]:
        """The text at ``path`` inside a JSON document stored as text (``#>>`` on the cast)."""
        found: ColumnElement[str] = cast(column, JSON)[path].as_string()
        return found

    @classmethod
    def _stream_cursor(cls, driver: Any) -> Any:
        """A server-side cursor: a client-side one would hold the whole result in the
        driver's memory before the first row is handed over."""
        return driver.cursor(name="custos_stream")

    @classmethod
    def _any_of(cls, head: str, chunk: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
        """One array per chunk (``= ANY(%s)``): a short statement, where a text with 900
        placeholders is parsed again by the driver on every call (measured: the look-ups of a
        100,000-record ingestion took 3.8 s that way, most of the ingestion's time). Chunks
        still, not one array of the whole batch: for 10,000 ids the planner scans the table
        instead of its index (measured on 300,000 rows: 3x slower, and growing with the table).
        """
        return f"{head} = ANY(%s)", (list(chunk),)

    def purge(self, tables: Sequence[str]) -> dict[str, Any]:
        """Vacuum (and re-analyse) the touched tables, so dead rows and their statistics are
        gone."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in sorted(set(tables)):
                conn.execute(text(f"VACUUM (ANALYZE) {metadata.tables[name].name}"))
        return {"vacuum": sorted(set(tables))}

    @contextmanager
    def _bulk(self, conn: Connection, bulk: bool) -> Iterator[None]:
        """Foreign keys unchecked during a bulk rewrite where the role may: PostgreSQL checks
        them with a trigger per inserted row (three look-ups per merge-evidence row), which cost
        a full resolution of a million records about 30 s. ``session_replication_role =
        replica`` turns those triggers off for this session only (other sessions, and their
        reads of the old profiles, are untouched). It needs a superuser or, from PostgreSQL 15,
        ``GRANT SET ON PARAMETER session_replication_role``; without it the checks stay on.
        Set before the transaction begins and reset after it ends; a connection whose reset
        fails is discarded, never handed out with checks off."""
        if not bulk:
            yield
            return
        import psycopg

        driver = conn.connection.dbapi_connection
        assert driver is not None
        try:
            driver.execute("SET session_replication_role = replica")
            driver.commit()
            unchecked = True
        except psycopg.errors.InsufficientPrivilege:
            driver.rollback()
            unchecked = False
        try:
            yield
        finally:
            if unchecked:
                try:
                    driver.execute("RESET session_replication_role")
                    driver.commit()
                except Exception:
                    conn.invalidate()
                    raise

    def _lock_writer(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITER_LOCK_KEY})

    def _bulk_insert(
        self, conn: Connection, table: Table, names: list[str], params: list[tuple[Any, ...]]
    ) -> None:
        """COPY the rows in, whatever their number: several times faster than INSERT (see
        ``bench/postgres.py``). psycopg writes COPY's text format itself (tabs, newlines and
        backslashes escaped, None as NULL, "" as the empty string), and the COPY runs inside
        the caller's transaction: a failure in it rolls back everything the transaction wrote.
        """
        if self._row_inserts == "batched":
            super()._bulk_insert(conn, table, names, params)
        elif self._row_inserts == "statements":
            columns = ", ".join(names)
            sql = f"INSERT INTO {table.name} ({columns}) VALUES ({self.placeholders(len(names))})"
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            for row in params:
                cursor.execute(sql, row)
        else:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)
        self._after_growth(conn, table, len(params))

    def _after_growth(self, conn: Connection, table: Table, rows: int) -> None:
        """Refresh the planner's statistics when a bulk load has grown a table a lot.

        Without this, a table filled within minutes still looks empty to the planner, which then
        answers the per-batch "which ids exist already?" query with sequential scans. A small
        table that grows slowly counts too (the quarantine: a few rows a batch): without
        statistics its look-up tested 900 ids against every row, and cost more at a million
        records than the COPYs did. Each ANALYZE waits until the table has doubled, so a load
        runs a few dozen in all.
        """
        pending = self._pending.get(table.name, 0) + rows
        known = self._known.get(table.name, 0)
        if pending >= max(ANALYZE_MIN_ROWS, known):
            conn.execute(text(f"ANALYZE {table.name}"))
            self._known[table.name] = known + pending
            pending = 0
        self._pending[table.name] = pending
