"""Backend differences are capabilities of the Store: each one on both backends, and a check
that no module outside ``store/`` speaks a dialect itself (paramstyles, pragmas, vacuums, raw
driver cursors, SQLAlchemy's private names)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, inspect, select

import custos
from custos.consent import ledger
from custos.store import PostgresStore, SQLiteStore, Store, event_keys, open_store, redirects
from custos.store import tables as t
from custos.store.base import INLINED_CHUNK
from custos.store.pgserver import PostgresServer

ROOT = Path(custos.__file__).parent
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
#: Names that only a backend may use: how the driver binds, its connection and cursors.
DIALECT_NAMES = {
    "paramstyle",
    "connection",
    "dbapi_connection",
    "driver_connection",
    "raw_connection",
    "cursor",
}
#: Underscored names that are public API (SQLAlchemy's rows, named tuples), and private names
#: of other libraries than the store's: Splink's DuckDB connection in identity/matcher.py, and
#: PySpark's gateway to the JVM in identity/spark.py (Hadoop's file system API, which PySpark
#: offers no other way, for the Spark engine's work folders; its active context, to end only a
#: JVM the engine started).
PUBLIC_UNDERSCORED = {"_mapping", "_asdict", "_fields", "_replace", "_make", "_t", "_tuple"}
NOT_SQLALCHEMY = {"_con", "_jvm", "_jsc", "_active_spark_context"}
#: Words of SQL that only a backend may send.
DIALECT_SQL = ("PRAGMA", "VACUUM", "ANALYZE", "= ANY(")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _defined_names(root: Path) -> set[str]:
    """Every name custos itself defines (functions, classes, attributes, arguments)."""
    names: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[-1])
    return names


def dialect_leaks(root: Path = ROOT) -> list[str]:
    """Every place outside ``store/`` that speaks a dialect itself."""
    ours = _defined_names(root)
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "store":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute):
                if node.attr in DIALECT_NAMES:
                    bad.append(f"{where} uses .{node.attr}")
                elif (
                    node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and node.attr not in ours | PUBLIC_UNDERSCORED | NOT_SQLALCHEMY
                ):
                    bad.append(f"{where} uses a private name .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private or "._" in f".{node.module}":
                    bad.append(f"{where} imports a private part of SQLAlchemy")
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
            ):
                bad.extend(f"{where} sends {word}" for word in DIALECT_SQL if word in node.value)
    return sorted(bad)


def test_no_module_outside_the_store_speaks_a_dialect() -> None:
    assert dialect_leaks() == []


def test_the_dialect_check_catches_a_leak(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "fine.py").write_text('SQL = "PRAGMA secure_delete"\n')
    (tmp_path / "privacy").mkdir()
    (tmp_path / "privacy" / "leak.py").write_text(
        '"""A docstring may say VACUUM."""\n'
        "def f(conn):\n"
        '    conn.exec_driver_sql("VACUUM")\n'
        '    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"\n'
        "    conn.connection.dbapi_connection.cursor()\n"
        "    return conn.type._cached_bind_processor(conn.dialect)\n"
    )
    assert dialect_leaks(tmp_path) == [
        "privacy/leak.py:3 sends VACUUM",
        "privacy/leak.py:4 uses .paramstyle",
        "privacy/leak.py:5 uses .connection",
        "privacy/leak.py:5 uses .cursor",
        "privacy/leak.py:5 uses .dbapi_connection",
        "privacy/leak.py:6 uses a private name ._cached_bind_processor",
    ]


def _raw_rows(store: Store, count: int) -> None:
    with store.write() as conn:
        conn.execute(t.sources.insert().values(id=1, name="crm", kind="records", created_at=NOW))
        store.insert_many(
            conn,
            t.raw_records,
            [(i, f"r{i}", i, "{}", NOW, "records", "f.csv") for i in range(1, count + 1)],
            names=["id", "record_id", "line_no", "payload", "ingested_at", "kind", "file_name"],
            const={"source_id": 1},
        )


def test_a_connection_knows_its_backend(store_url: str) -> None:
    with open_store(store_url) as store, store.read() as conn:
        assert Store.of(conn) is type(store)
        assert Store.of(conn).placeholders(3) in ("?, ?, ?", "%s, %s, %s")


def test_existing_keys_across_chunks(store_url: str) -> None:
    with open_store(store_url) as store:
        count = store.in_chunk * 2 + 7  # three chunks
        _raw_rows(store, count)
        raw = t.raw_records
        wanted = [f"r{i}" for i in range(count, 0, -1)] + ["nope", "r0"]
        with store.read() as conn:
            found = store.existing_keys(conn, raw.c.record_id, wanted, (raw.c.source_id, 1))
            assert found == {f"r{i}" for i in range(1, count + 1)}
            assert store.existing_keys(conn, raw.c.record_id, wanted, (raw.c.source_id, 2)) == set()
            pairs = store.existing_keys(conn, raw.c.record_id, ["r5", "r9"], also=(raw.c.line_no,))
            assert pairs == {("r5", 5), ("r9", 9)}
            assert store.existing_keys(conn, raw.c.record_id, []) == set()


def test_chunks_keep_order_and_size() -> None:
    values = list(range(2 * Store.in_chunk + 1))
    chunks = list(Store.chunks(values))
    assert [len(c) for c in chunks] == [Store.in_chunk, Store.in_chunk, 1]
    assert [v for c in chunks for v in c] == values
    assert SQLiteStore.in_chunk <= 999  # SQLite's bound-parameter limit in older builds
    assert PostgresStore.in_chunk <= 1000  # an index look-up, not a scan


def test_inlined_values_are_chunked_in_larger_slices() -> None:
    values = list(range(INLINED_CHUNK + 3))
    chunks = list(Store.chunks(values, inlined=True))
    assert [len(c) for c in chunks] == [INLINED_CHUNK, 3]
    assert Store.in_chunk < INLINED_CHUNK  # no bound-parameter limit: fewer statements
    assert [len(c) for c in Store.chunks(values[:10], lists=2)] == [10]


def test_fetch_tuples_of_a_query_and_of_plain_sql(store_url: str) -> None:
    with open_store(store_url) as store:
        _raw_rows(store, 3)
        raw = t.raw_records
        with store.read() as conn:
            query = select(raw.c.id, raw.c.record_id).where(raw.c.id >= 2).order_by(raw.c.id)
            assert [tuple(r) for r in store.fetch_tuples(conn, query)] == [(2, "r2"), (3, "r3")]
            sql = f"SELECT record_id FROM raw_records WHERE id = {store.placeholders(1)}"
            assert [tuple(r) for r in store.fetch_tuples(conn, sql, (1,))] == [("r1",)]


def test_an_index_is_ensured_once(store_url: str) -> None:
    with open_store(store_url) as store:
        for _ in range(2):
            with store.write() as conn:
                store.ensure_index(conn, "ix_test_kind", t.raw_records, ["kind"])
                store.ensure_index(
                    conn, "ix_test_partial", t.records, ["postcode"], partial_on="postcode"
                )
        assert {"ix_test_kind"} <= {
            ix["name"] for ix in inspect(store.engine).get_indexes("raw_records")
        }
        assert {"ix_test_partial"} <= {
            ix["name"] for ix in inspect(store.engine).get_indexes("records")
        }


def test_secure_delete_and_purge(store_url: str) -> None:
    with open_store(store_url) as store:
        _raw_rows(store, 5)
        sqlite = store.backend == "sqlite"
        with store.write() as conn:
            before = conn.exec_driver_sql("PRAGMA secure_delete").scalar() if sqlite else None
            with Store.of(conn).secure_delete(conn):
                if sqlite:
                    assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
                conn.execute(t.raw_records.delete().where(t.raw_records.c.id <= 2))
            count = select(func.count()).select_from(t.raw_records)
            assert conn.execute(count).scalar_one() == 3
            if sqlite:  # the connection's own setting is restored
                assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == before
        receipt = store.purge(["raw_records"])
        assert receipt == (
            {"vacuum": "file rebuilt", "wal": "checkpointed and truncated"}
            if store.backend == "sqlite"
            else {"vacuum": ["raw_records"]}
        )


def test_where_the_store_lives(store_url: str) -> None:
    with open_store(store_url) as store:
        if store.backend == "sqlite":
            assert store.file == Path(store_url)
        else:
            assert store.file is None
        assert not store.in_memory
    with open_store("sqlite:///:memory:") as memory:
        assert memory.in_memory and memory.file is None


def test_merge_redirects_are_followed_in_one_place(store_url: str) -> None:
    # a is active; b was merged into a, and c into b before the writer flattened redirects;
    # d is active; e and f point at each other (a cycle); g at an id the store does not know
    chains = {
        "a": None,
        "b": "a",
        "c": "b",
        "d": None,
        "e": "f",
        "f": "e",
        "g": "ghost",
    }
    with open_store(store_url) as store:
        with store.write() as conn:
            conn.execute(
                t.profiles.insert(),
                [
                    {
                        "id": pid,
                        "status": "active" if target is None else "merged",
                        "merged_into": target,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for pid, target in chains.items()
                ],
            )
        with store.read() as conn:
            assert redirects.active_ids(conn, ["a", "b", "c", "d", "e", "g", "zz"]) == {
                "a": "a",
                "b": "a",
                "c": "a",
                "d": "d",
                "e": None,
                "g": None,
                "zz": None,
            }
            everything = redirects.redirects(conn)
            assert {pid: everything[pid] for pid in "bcg"} == {"b": "a", "c": "a", "g": "ghost"}
            assert set(everything) == {"b", "c", "e", "f", "g"}
            assert redirects.merged_into(conn, ["a"]) == {"b": "a", "c": "a"}
            assert redirects.merged_into(conn, ["a", "d"]) == {"b": "a", "c": "a"}
            assert redirects.merged_into(conn, ["e"]) == {"f": "e"}


def test_consent_event_keys_keep_their_stored_form() -> None:
    """A stored key must match the key of the same event sent again, so neither form may
    change (the digests below are those custos has always stored)."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    row = {"email": "a@example.com", "purpose": "marketing_email", "status": "granted"}
    assert event_keys.file_event_key("crm", {**row, "timestamp": at}) == (
        "a9d64969519b6d4ecf6fcc4a3b89f6420a7c31368c905fb400b468ddbd9c7e03"
    )
    recorded = event_keys.event_key(
        3,
        None,
        ("marketing_email", "withdrawn", at.isoformat(), "form"),
        {"phone": "+4915112345678", "email": "a@example.com"},
    )
    assert recorded == "db630c10944b8463e41910bd129dd7228c889bc22dd6aa8264fd6e0c77ad06d5"
    named = ledger.event_key(
        source_id=3,
        purpose="marketing_email",
        status="withdrawn",
        at=at,
        identifiers={"phone": "+4915112345678", "email": "a@example.com"},
        method="form",
    )
    assert named == recorded


def _fk_violation(store: Store, *, bulk: bool = False) -> None:
    """A member of a profile that does not exist, for a raw row that does not exist."""
    with store.write(bulk=bulk) as conn:
        conn.execute(
            t.profile_members.insert().values(
                raw_id=424242, profile_id="cus_missing", linked_at=datetime.now(UTC)
            )
        )


def test_a_bulk_rewrite_on_postgresql_skips_foreign_key_triggers_only_where_allowed(
    pg_server: PostgresServer,
) -> None:
    """Inside a bulk write transaction (a full resolution's) the role's foreign-key triggers
    are off where the role may turn them off, and on again for every later transaction on the
    same pooled connection; a role without the privilege writes with the checks on."""
    import psycopg
    import pytest

    show = "SHOW session_replication_role"
    with open_store(pg_server.new_database()) as superuser:
        _bulk_role_on_a_superuser(superuser, show)

    name = pg_server.new_database()
    database = name.rsplit("/", 1)[-1]
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute("CREATE ROLE plain LOGIN")
        admin.execute(f"ALTER DATABASE {database} OWNER TO plain")
        admin.execute("GRANT ALL ON SCHEMA public TO plain")
    with open_store(name.replace("//custos@", "//plain@")) as plain:
        with plain.write(bulk=True) as conn:
            assert conn.exec_driver_sql(show).scalar() == "origin"
        with pytest.raises(Exception, match="foreign key"):
            _fk_violation(plain, bulk=True)  # (the checks stayed on)


def _bulk_role_on_a_superuser(superuser: Store, show: str) -> None:
    import pytest

    with superuser.write(bulk=True) as conn:
        assert conn.exec_driver_sql(show).scalar() == "replica"
    with superuser.write() as conn:
        assert conn.exec_driver_sql(show).scalar() == "origin"
    with pytest.raises(Exception, match="foreign key"):
        _fk_violation(superuser)
    _fk_violation(superuser, bulk=True)  # (a full resolution's rows are checked by custos)
