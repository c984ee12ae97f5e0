"""The store contract: one schema, one transaction discipline, two backends.

Queries are written once in SQLAlchemy Core against :mod:`custos.store.tables` and rendered for
each backend; a backend only adds what differs (connection set-up, the writer lock, bulk loads).
Writes are serialised: at most one write transaction runs at a time, on either backend, so ids
can be allocated without races and the CLI and a server can share one store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Dialect,
    Engine,
    Index,
    Table,
    func,
    select,
    type_coerce,
)
from sqlalchemy.exc import OperationalError

from custos.core.errors import StoreError
from custos.store import audit, tables

MIGRATIONS = Path(__file__).with_name("migrations")


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
    """A custos store: an engine plus the transaction discipline every package relies on."""

    backend: ClassVar[str] = "abstract"

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        #: The audit chain's key and checkpoint (set by whoever holds the settings: Custos).
        self.audit_anchor: audit.Anchor | None = None

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
        return PreparedRows(table, names, tuples)

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
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        columns = ", ".join(names)
        sql = f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join([mark] * len(names))})"
        conn.exec_driver_sql(sql, params)

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
