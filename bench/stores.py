"""An empty store for one benchmark run: a SQLite file, or a database on a throwaway PostgreSQL
server (``custos.store.pgserver``, as the tests start one), removed afterwards."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def fresh_store(backend: str, name: str = "bench.db") -> Iterator[str]:
    """The URL of an empty store of ``backend`` (``sqlite`` or ``postgresql``)."""
    with tempfile.TemporaryDirectory(prefix="custos-bench-") as tmp:
        if backend == "sqlite":
            yield str(Path(tmp) / name)
            return
        from custos.store.pgserver import PostgresServer

        server = PostgresServer()
        try:
            yield server.new_database()
        finally:
            server.stop()
