"""Persistence: the :class:`Store` contract, its SQLite and PostgreSQL backends, and migrations.

``open_store(url)`` picks the backend from the URL: a file path or ``sqlite:///`` URL opens the
embedded SQLite default, ``postgresql://`` a server.
"""

from __future__ import annotations

from pathlib import Path

from custos.core.errors import StoreError
from custos.store.base import Store, head_revision
from custos.store.postgres import PostgresStore
from custos.store.sqlite import SQLiteStore

#: URL scheme → backend; adding a backend is one module and one line here.
BACKENDS: dict[str, type[SQLiteStore] | type[PostgresStore]] = {
    "sqlite": SQLiteStore,
    "postgresql": PostgresStore,
}


def normalise_url(url: str) -> str:
    """Turn a file path or a short URL into a full SQLAlchemy URL for one of the backends."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+"):
        return url
    if url.startswith("sqlite://"):
        return url
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise StoreError(
            f"unknown store URL scheme {scheme!r}",
            hint="use a SQLite file path (custos.db) or a postgresql:// URL",
        )
    return f"sqlite:///{Path(url).expanduser().resolve()}"


def open_store(url: str, *, migrate: bool = True, create: bool = True) -> Store:
    """Open the store behind ``url`` and, unless told not to, bring its schema up to date.

    Not ``create``, only a store that exists is opened (see :func:`missing_store`): a typo in a
    path or URL is refused rather than answered from a new, empty store."""
    full = normalise_url(url)
    backend = BACKENDS["sqlite" if full.startswith("sqlite") else "postgresql"]
    file = full.removeprefix("sqlite:///").split("?", 1)[0]
    if backend is SQLiteStore and not full.startswith("sqlite:///:memory:"):
        if not create and not Path(file).is_file():
            raise missing_store(file)
        folder = Path(file).parent
        if not folder.is_dir():
            raise StoreError(
                f"the folder of the store file does not exist: {folder}",
                hint="create the folder or point --db / CUSTOS_DB elsewhere",
            )
    try:
        store: Store = backend.connect(full)
        if not create and store.revision() is None:
            # a database is a custos store when it has custos's schema (its tables and their
            # revision): an empty or foreign database (a PostgreSQL one too) is not one
            where = file if backend is SQLiteStore else store.describe()
            store.close()
            raise missing_store(where)
        if migrate:
            store.ensure_schema()
    except StoreError:
        raise
    except Exception as exc:  # driver errors: say which store, never the password
        raise StoreError(
            f"cannot open the store: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            hint="check --db / CUSTOS_DB, and that the database server is running",
        ) from exc
    return store


def missing_store(where: str) -> StoreError:
    """The error for a store that does not exist (``where``: its file, or its URL without the
    password)."""
    return StoreError(f"no custos store at {where}", hint="create one with `custos init`")


__all__ = ["BACKENDS", "PostgresStore", "SQLiteStore", "Store", "head_revision", "open_store"]
