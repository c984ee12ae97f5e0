"""The store contract, on both backends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import column, func, inspect, select
from sqlalchemy import table as sa_table

from custos.core.errors import StoreError
from custos.core.settings import Settings
from custos.store import audit, golden, head_revision, open_store
from custos.store import tables as t
from custos.store.base import alembic_config
from custos.store.tables import Timestamp
from tests.conftest import write

REQUIRED_TABLES = {
    "sources",
    "raw_records",
    "records",
    "interactions",
    "consent_events",
    "profiles",
    "profile_members",
    "merge_evidence",
    "quarantine",
    "audit_log",
}


def test_first_use_migrates_to_head(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.revision() == head_revision()
        names = set(inspect(store.engine).get_table_names())
        assert names >= REQUIRED_TABLES
        assert store.migrate() == head_revision()  # idempotent


def test_migrated_schema_matches_the_tables_module(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with open_store(store_url) as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == [], "tables.py and the migrations disagree: add a migration"


def test_store_refuses_unknown_scheme() -> None:
    with pytest.raises(StoreError, match="unknown store URL scheme"):
        open_store("mysql://localhost/x")


def test_open_without_migrating_leaves_database_empty(store_url: str) -> None:
    with open_store(store_url, migrate=False) as store:
        assert store.revision() is None


def test_write_transaction_rolls_back_whole(store_url: str) -> None:
    now = datetime.now(UTC)
    with open_store(store_url) as store:
        with pytest.raises(RuntimeError), store.write() as conn:
            conn.execute(t.sources.insert().values(name="crm", kind="records", created_at=now))
            raise RuntimeError("boom")
        with store.read() as conn:
            assert conn.execute(select(func.count()).select_from(t.sources)).scalar_one() == 0


def test_next_id_only_inside_write(store_url: str) -> None:
    with open_store(store_url) as store:
        with store.write() as conn:
            assert store.next_id(conn, t.raw_records, 10) == 1
        with store.read() as conn, pytest.raises(StoreError):
            store.next_id(conn, t.raw_records, 1)


def test_timestamps_round_trip_as_aware_utc(store_url: str) -> None:
    when = datetime(2026, 3, 1, 14, 5, 7, 123456, tzinfo=UTC)
    with open_store(store_url) as store:
        with store.write() as conn:
            conn.execute(t.sources.insert().values(name="crm", kind="records", created_at=when))
        with store.read() as conn:
            got = conn.execute(select(t.sources.c.created_at)).scalar_one()
    assert got == when and got.tzinfo is not None


def test_audit_log_is_a_hash_chain(store_url: str) -> None:
    with open_store(store_url) as store:
        with store.write() as conn:
            first = audit.append(
                conn, actor="test", action="read", purpose="analytics", subjects=["p1"]
            )
            second = audit.append(conn, actor="test", action="read", subjects=["p2"])
        assert first != second
        with store.read() as conn:
            assert audit.verify(conn) is None
        with store.write() as conn:  # tamper with the first entry
            conn.execute(
                t.audit_log.update().where(t.audit_log.c.id == 1).values(actor="someone else")
            )
        with store.read() as conn:
            found = audit.verify(conn)
            assert found is not None and found.entry == 1


def test_concurrent_writers_queue_instead_of_failing(store_url: str) -> None:
    """Two connections writing at once (a CLI and a server) both succeed, one after the other."""
    now = datetime.now(UTC)
    errors: list[BaseException] = []
    with open_store(store_url) as store:

        def writer(prefix: str) -> None:
            try:
                for i in range(20):
                    with store.write() as conn:
                        first = store.next_id(conn, t.raw_records, 1)
                        conn.execute(
                            t.sources.insert().values(
                                name=f"{prefix}{i}", kind="records", created_at=now
                            )
                        )
                        assert first >= 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(p,)) for p in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with store.read() as conn:
            assert conn.execute(select(func.count()).select_from(t.sources)).scalar_one() == 40


def test_alembic_config_points_at_shipped_migrations() -> None:
    cfg = alembic_config()
    assert cfg.get_main_option("script_location", "").endswith("migrations")


def test_profile_tables_move_to_without_rowid_keeping_their_rows(tmp_path: object) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path}/old.db"
    now = datetime.now(UTC)
    with open_store(url, migrate=False) as store:
        with store.write() as conn:
            command.upgrade(alembic_config(conn), "0006")
        with store.write() as conn:
            conn.execute(
                t.profiles.insert().values(
                    id="cus_1", status="active", created_at=now, updated_at=now
                )
            )
            conn.execute(  # the golden record as one row per attribute, before 0009
                sa_table(
                    "profile_attributes",
                    *(
                        column(c)
                        for c in ("profile_id", "attribute", "value", "source", "record_id")
                    ),
                    column("observed_at", Timestamp()),
                    column("rule"),
                )
                .insert()
                .values(
                    profile_id="cus_1",
                    attribute="email",
                    value="a@example.org",
                    source="crm",
                    record_id="r1",
                    observed_at=now,
                    rule="priority",
                )
            )
            conn.execute(
                t.profile_identifiers.insert().values(
                    kind="email", value="a@example.org", profile_id="cus_1"
                )
            )
        assert store.migrate() == head_revision()
        with store.read() as conn:
            assert golden.read_one(conn, "cus_1") == [
                golden.GoldenValue("email", "a@example.org", "crm", "r1", now, "priority")
            ]
            assert conn.execute(select(t.profile_identifiers.c.profile_id)).scalars().all() == [
                "cus_1"
            ]
            ddl = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master").all())
        assert "profile_attributes" not in ddl
        assert "WITHOUT ROWID" in ddl["profile_golden"]
        assert "WITHOUT ROWID" in ddl["profile_identifiers"]
        assert "ix_profile_identifiers_profile" in ddl
        with store.write() as conn:  # and back: the documents split into rows again
            command.downgrade(alembic_config(conn), "0008")
        with store.read() as conn:
            assert conn.exec_driver_sql(
                "SELECT attribute, value, source, record_id, rule FROM profile_attributes"
            ).all() == [("email", "a@example.org", "crm", "r1", "priority")]


def test_street_keys_of_a_store_with_rows_wait_for_re_keying(
    tmp_path: Path, settings: Settings
) -> None:
    from alembic import command

    from custos.ingest.normalise import STREET_KEY_VERSION
    from custos.service import Custos
    from custos.store import meta

    url = str(tmp_path / "keys.db")
    with Custos.open(url, settings) as app:
        app.ingest(write(tmp_path / "crm.csv", "record_id,street\nr1,84 Knapp Ln\n"), "crm")
        with app.store.write() as conn:  # back to before 0019, rows and all
            command.downgrade(alembic_config(conn), "0018")
        with app.store.read() as conn:
            assert meta.get(conn, meta.STREET_KEYS) is None
        assert app.store.migrate() == head_revision()
        with app.store.read() as conn:  # rows keyed before: the next resolution re-keys them
            assert meta.get(conn, meta.STREET_KEYS) is None
        app.resolve()
        with app.store.read() as conn:
            assert meta.get(conn, meta.STREET_KEYS) == STREET_KEY_VERSION
            assert conn.execute(select(t.records.c.street_key)).scalar() == "84 knapp lane"
