"""The store contract: one schema, one transaction discipline, two backends.

Queries are written once in SQLAlchemy Core against :mod:`custos.store.tables` and rendered for
each backend; a backend only adds what differs (connection set-up, the writer lock, bulk loads)
and answers the capabilities domain code asks for instead of looking at the dialect
(placeholders, chunked look-ups, driver-speed reads, secure deletion, purging, extra indexes).
Writes are serialised: at most one write transaction runs at a time, on either backend, so ids
can be allocated without races and the CLI and a server can share one store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    Dialect,
    Engine,
    Index,
    Select,
    Table,
    func,
    select,
    type_coerce,
)
from sqlalchemy.exc import OperationalError

from custos.core.errors import StoreError
from custos.store import audit, tables

MIGRATIONS = Path(__file__).with_name("migrations")
V = TypeVar("V")
#: Rows per list of :meth:`Store.iter_tuples`.
STREAM_BATCH = 50_000
#: Values per ``IN (…)`` list of a statement that inlines them as literals (no bound-parameter
#: limit; see :meth:`Store.chunks`).
INLINED_CHUNK = 5000


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for custos's migrations, bound to ``connection`` when given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision shipped with this version of custos."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@dataclass(slots=True)
class PreparedRows:
    """Rows of one table as the driver takes them (see :meth:`Store.prepare_rows`); a backend
    may add a form of its own (``payload``) that inserts faster."""

    table: Table
    names: list[str]
    rows: list[tuple[Any, ...]]
    payload: Any = None


class Store:
    """A custos store: an engine plus the transaction discipline every package relies on.

    What differs between backends is a capability of the store, never an ``if dialect`` in
    domain code: the class-level ones (placeholders, chunked ``IN`` lists, driver-speed reads,
    secure deletion) are reached from a connection with :meth:`of`.
    """

    backend: ClassVar[str] = "abstract"
    #: The driver's placeholder for one bound value.
    placeholder: ClassVar[str] = "?"
    #: Values per ``IN (…)`` list or array look-up: below every backend's bound-parameter limit
    #: (SQLite allows 999 per statement in older builds), and small enough that PostgreSQL's
    #: planner still answers it from an index.
    in_chunk: ClassVar[int] = 900
    _backends: ClassVar[dict[str, type[Store]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Store._backends.setdefault(cls.backend, cls)  # the backend's own class, not a subclass

    @staticmethod
    def of(conn: Connection) -> type[Store]:
        """The backend class of ``conn``, whose class-level capabilities code holding only a
        connection uses (``Store.of(conn).fetch_tuples(conn, query)``)."""
        return Store._backends[conn.dialect.name]

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        #: The audit chain's key and checkpoint (set by whoever holds the settings: Custos).
        self.audit_anchor: audit.Anchor | None = None

    @property
    def file(self) -> Path | None:
        """The file the store lives in (for files kept beside it, e.g. a lock); None for a
        server database or one in memory."""
        return None

    @property
    def in_memory(self) -> bool:
        """Whether the store lives in this process's memory only (one connection per thread,
        so no other thread or process sees it)."""
        return False

    def json_text(
        self, column: ColumnElement[Any], path: tuple[str | int, ...]
    ) -> ColumnElement[str]:
        """The text at ``path`` inside a JSON document stored as text (NULL when absent), for
        filters evaluated by the database (SQLite's ``json_extract``)."""
        found: ColumnElement[str] = type_coerce(column, JSON)[path].as_string()
        return found

    # -- transactions -------------------------------------------------------------------------
    #: Connection options of a read that must see one snapshot from its first query to its
    #: last (see :meth:`read`); none where every transaction does (SQLite).
    snapshot_options: ClassVar[dict[str, Any]] = {}

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A read-only transaction; ``snapshot``: every query of it sees the store as of its
        first one, whatever commits meanwhile (a long computation that writes its result
        later, e.g. identity resolution)."""
        with self.engine.connect() as conn:
            if snapshot and self.snapshot_options:
                conn = conn.execution_options(**self.snapshot_options)
            with conn.begin():
                yield conn

    @contextmanager
    def write(self, *, bulk: bool = False) -> Iterator[Connection]:
        """The single write transaction: commits on success, rolls back whole on any error.

        ``bulk``: the caller rewrites whole tables from rows it read in this same transaction,
        or in a snapshot it checked under the lock is still whole (identity resolution), so the
        backend may skip per-row foreign-key checks.
        Audit entries appended in it move the audit checkpoint once it has committed.
        """
        pending = audit.Pending(self.audit_anchor)
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(custos_write=True, **{audit.PENDING_OPTION: pending})
                with self._bulk(conn, bulk), conn.begin():
                    self._lock_writer(conn)
                    yield conn
        except OperationalError as exc:
            if not self._busy(exc):
                raise
            raise StoreError(
                "the store stayed busy: another writer held it too long, nothing was written",
                hint="run the command again when the other writer (e.g. custos resolve) is "
                "done; an ingestion goes on where it stopped (rows stored are skipped)",
            ) from None
        pending.committed()

    def _busy(self, exc: OperationalError) -> bool:
        """Whether ``exc`` says the writer lock could not be had in time (backend-specific)."""
        return False

    @contextmanager
    def _bulk(self, conn: Connection, bulk: bool) -> Iterator[None]:
        """Backend settings around a bulk write transaction (none by default)."""
        yield

    def _lock_writer(self, conn: Connection) -> None:
        """Take the store-wide writer lock for the current transaction (backend-specific)."""

    # -- schema -------------------------------------------------------------------------------
    def revision(self) -> str | None:
        """The schema revision the store is at, or None for an empty database."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrate(self) -> str:
        """Bring the schema to the newest revision (idempotent; safe against a concurrent run)."""
        head = head_revision()
        if self.revision() == head:
            return head
        with self.write() as conn:
            if MigrationContext.configure(conn).get_current_revision() != head:
                command.upgrade(alembic_config(conn), "head")
        return head

    def ensure_schema(self) -> None:
        """Migrate on first use; refuse a store written by a newer custos."""
        current = self.revision()
        head = head_revision()
        if current == head:
            return
        script = ScriptDirectory.from_config(alembic_config())
        if current is not None and script.get_revision(current) is None:
            raise StoreError(
                f"the store is at schema revision {current}, unknown to this custos",
                hint="upgrade custos to the version that wrote this store",
            )
        self.migrate()

    # -- helpers shared by every package ------------------------------------------------------
    def next_id(self, conn: Connection, table: Table, count: int) -> int:
        """Reserve ``count`` consecutive ids of ``table`` (only inside :meth:`write`)."""
        if not conn.get_execution_options().get("custos_write"):
            raise StoreError("ids can only be allocated inside a write transaction")
        current = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
        del count  # writers are serialised, so the ids after max(id) are ours until commit
        return int(current) + 1

    def insert_many(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]] | Sequence[tuple[Any, ...]],
        names: Sequence[str] | None = None,
        const: dict[str, Any] | None = None,
        *,
        ready: bool = False,
    ) -> None:
        """Insert many rows at driver speed, in one statement per batch.

        ``rows`` are dicts (all with the keys of the first), or tuples in ``names`` order; the
        values of ``const`` are appended to every row. Column types' bind processors still apply
        (timestamps), but SQLAlchemy's per-row statement machinery is skipped: bulk ingestion
        spends its time in the driver. ``ready``: the rows hold values as the driver takes them
        already (e.g. timestamps as read back from this store), so no processor runs on them.
        """
        if rows:
            self.insert_prepared(
                conn, self.prepare_rows(conn.dialect, table, rows, names, const, ready=ready)
            )

    def prepare_rows(
        self,
        dialect: Dialect,
        table: Table,
        rows: Sequence[dict[str, Any]] | Sequence[tuple[Any, ...]],
        names: Sequence[str] | None = None,
        const: dict[str, Any] | None = None,
        *,
        ready: bool = False,
        detached: bool = False,
    ) -> PreparedRows:
        """The first half of :meth:`insert_many`: the rows as the driver takes them. Needs no
        connection, so one thread can prepare the next batch while another inserts this one
        (``detached``: the rows are meant for such another thread; a backend may prepare a
        form that inserts without holding Python's lock)."""
        if isinstance(rows[0], dict):
            names = list(rows[0])
            tuples = [tuple(row[n] for n in names) for row in rows]  # type: ignore[call-overload]
        else:
            assert names is not None, "tuple rows need names"
            names = list(names)
            tuples = list(rows)  # type: ignore[arg-type]
        converting = [
            (index, proc)
            for index, name in enumerate(() if ready else names)
            if (proc := table.c[name].type._cached_bind_processor(dialect)) is not None
        ]
        if converting:
            # Column by column, each distinct value once (a batch shares a few timestamps),
            # without rebuilding every row once per converted column.
            columns: list[Any] = list(zip(*tuples, strict=True))
            for index, proc in converting:
                seen: dict[Any, Any] = {None: None}
                for value in columns[index]:
                    if value not in seen:
                        seen[value] = proc(value)
                columns[index] = [seen[value] for value in columns[index]]
            tuples = list(zip(*columns, strict=True))
        if const:
            extra = tuple(
                value
                if (proc := table.c[name].type._cached_bind_processor(dialect)) is None
                or value is None
                else proc(value)
                for name, value in const.items()
            )
            names = [*names, *const]
            tuples = [row + extra for row in tuples]
        prepared = PreparedRows(table, names, tuples)
        if detached:
            self.detach(prepared)
        return prepared

    def detach(self, prepared: PreparedRows) -> None:
        """Give rows meant for another thread a form that inserts without holding Python's
        lock, where the backend has one (a hook of :meth:`prepare_rows`; none by default)."""

    def insert_prepared(self, conn: Connection, prepared: PreparedRows) -> None:
        """The second half of :meth:`insert_many`: insert rows :meth:`prepare_rows` made."""
        self._bulk_insert(conn, prepared.table, prepared.names, prepared.rows)

    def indexes_to_rebuild(self, table: Table) -> list[Index]:
        """Secondary indexes of ``table`` that a rewrite of all its rows inside one
        transaction should drop first and build again after (none by default: on a server
        database dropping an index locks readers out of the table until commit)."""
        return []

    def _bulk_insert(
        self, conn: Connection, table: Table, names: list[str], params: list[tuple[Any, ...]]
    ) -> None:
        """Insert driver-ready tuples; backends may use a faster path (COPY)."""
        columns = ", ".join(names)
        sql = f"INSERT INTO {table.name} ({columns}) VALUES ({self.placeholders(len(names))})"
        conn.exec_driver_sql(sql, params)

    # -- capabilities: what domain code asks of the backend instead of its dialect -------------
    @classmethod
    def placeholders(cls, count: int) -> str:
        """``count`` driver placeholders, comma-separated, for plain driver SQL."""
        return ", ".join([cls.placeholder] * count)

    @classmethod
    def chunks(
        cls, values: Sequence[V], *, lists: int = 1, inlined: bool = False
    ) -> Iterator[Sequence[V]]:
        """``values`` in slices of at most :attr:`in_chunk`, in their order: one ``IN`` list
        (or array) each; ``lists``: a statement binds each slice that many times (``a IN (…)
        OR b IN (…)``), so the slices are that much smaller. ``inlined``: the statement
        inlines the values as literals (our own integers, see :meth:`fetch_tuples`), so no
        bound-parameter limit applies and the slices are :data:`INLINED_CHUNK` long (fewer,
        larger statements: measured, 900 instead of 5,000 ids cost an incremental
        resolution's candidate look-up 50% more time)."""
        size = INLINED_CHUNK if inlined else max(1, cls.in_chunk // lists)
        for i in range(0, len(values), size):
            yield values[i : i + size]

    @classmethod
    def fetch_tuples(
        cls, conn: Connection, query: Select[Any] | str, params: Sequence[Any] = ()
    ) -> list[Any]:
        """All rows of ``query`` as plain tuples, straight from the driver's cursor, in the
        caller's transaction: for a million rows SQLAlchemy's row objects and per-row fetching
        would double the time. A Core query has its parameters inlined (only for our own
        values: integers, constants); plain SQL takes ``params`` in the driver's placeholders.
        """
        if not isinstance(query, str):
            query = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        driver = conn.connection.dbapi_connection
        assert driver is not None
        cursor = driver.cursor()
        try:
            if params:
                cursor.execute(query, params)
            else:
                cursor.execute(query)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    @classmethod
    def iter_tuples(
        cls, conn: Connection, query: Select[Any], size: int = STREAM_BATCH
    ) -> Iterator[list[Any]]:
        """The rows of ``query`` (as :meth:`fetch_tuples` makes it) in lists of ``size``, read
        from the driver as they are asked for: a caller that drops each list before the next
        never holds all of a million rows at once."""
        text = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        driver = conn.connection.dbapi_connection
        assert driver is not None
        cursor = cls._stream_cursor(driver)
        try:
            cursor.execute(text)
            while batch := cursor.fetchmany(size):
                yield list(batch)
        finally:
            cursor.close()

    @classmethod
    def _stream_cursor(cls, driver: Any) -> Any:
        """A cursor that reads a result as it is fetched (SQLite's plain one does)."""
        return driver.cursor()

    @classmethod
    def existing_keys(
        cls,
        conn: Connection,
        column: Column[Any],
        values: Sequence[Any],
        *where: tuple[Column[Any], Any],
        also: tuple[Column[Any], ...] = (),
    ) -> set[Any]:
        """The ``values`` already in ``column`` (rows also matching every ``(column, value)`` of
        ``where``); with ``also``, tuples of the value and those columns of its row.

        Plain driver SQL on the same connection (and transaction): compiling an expression with
        thousands of bound parameters per batch cost more than running the query. All chunks
        but the last share one statement text, so the driver prepares it once.
        """
        if not values:
            return set()
        quote = conn.dialect.identifier_preparer.quote
        conditions = "".join(f"{quote(c.name)} = {cls.placeholder} AND " for c, _ in where)
        picked = ", ".join(quote(c.name) for c in (column, *also))
        head = f"SELECT {picked} FROM {quote(column.table.name)} WHERE {conditions}{quote(column.name)}"
        fixed = tuple(value for _, value in where)
        found: set[Any] = set()
        for chunk in cls.chunks(values):
            sql, params = cls._any_of(head, chunk)
            rows = conn.exec_driver_sql(sql, (*fixed, *params))
            found.update(map(tuple, rows) if also else (row[0] for row in rows))
        return found

    @classmethod
    def _any_of(cls, head: str, chunk: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
        """``head`` (a query ending in a column) completed to match any value of ``chunk``."""
        return f"{head} IN ({cls.placeholders(len(chunk))})", tuple(chunk)

    @classmethod
    def ensure_index(
        cls,
        conn: Connection,
        name: str,
        table: Table,
        columns: Sequence[str],
        *,
        partial_on: str | None = None,
    ) -> None:
        """Create index ``name`` on ``columns`` of ``table`` unless it exists (an index the
        schema does not declare, e.g. matching's blocking keys); ``partial_on``: only rows
        whose column of that name is not NULL."""
        where = f" WHERE {partial_on} IS NOT NULL" if partial_on else ""
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table.name} ({', '.join(columns)}){where}"
        )

    @classmethod
    @contextmanager
    def secure_delete(cls, conn: Connection) -> Iterator[None]:
        """Deletions inside overwrite the freed space where the backend can (SQLite); nothing
        to do by default (:meth:`purge` cleans up after)."""
        yield

    def purge(self, tables: Sequence[str]) -> dict[str, Any]:
        """Make the bytes of deleted rows of ``tables`` unrecoverable from the store's files,
        as far as the backend allows; returns what was done, for a receipt."""
        raise NotImplementedError

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """The store's URL with any password masked, for messages."""
        return self.engine.url.render_as_string(hide_password=True)


__all__ = ["Store", "alembic_config", "head_revision", "tables"]
