"""PostgreSQL's bulk path: rows go in through COPY, and store exactly what SQLite stores.

Every bulk insert of ingestion (raw rows, records, interactions, quarantine, consent events) and
of resolution (profiles, members, evidence, golden records) goes through
:meth:`~custos.store.base.Store.insert_many`, which COPYs on PostgreSQL and runs ``executemany``
on SQLite. These tests drive ``custos ingest`` and ``custos resolve`` from the CLI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, Table, select
from typer.testing import CliRunner

from custos.cli import app
from custos.store import open_store
from custos.store import tables as t
from custos.store.base import Store
from custos.store.pgserver import PostgresServer
from custos.store.postgres import PostgresStore
from tests.conftest import write

runner = CliRunner()

LONG = "Lörem ipsum\t" * 20_000  # ~240,000 characters of text with tabs
#: Values COPY's text format must escape, or could mistake for its own markers.
AWKWARD = [
    {
        "record_id": "1",
        "first_name": "Anna\tMaria",
        "last_name": 'O\'Brien "the" \\ Back\\slash',
        "email": "anna@example.com",
        "city": "Zürich 東京 🙂",
        "notes": "line one\nline two\r\nline three\\N\n\\.\nend",
    },
    {"record_id": "2", "first_name": "", "last_name": "Empty", "email": "", "notes": ""},
    {"record_id": "3", "first_name": None, "last_name": "Null", "email": None, "notes": None},
    {"record_id": "\\N", "first_name": "\\N", "last_name": "Marker", "notes": LONG},
    {"record_id": "5", "first_name": "Tab", "last_name": "Row", "email": "no\tmail"},
    {"record_id": "", "first_name": "No", "last_name": "Id\twith\\tab\nand newline"},
]
#: A line that is no JSON (quarantined with its text as received) and a CSV whose bad rows hold
#: a quoted line break and a tab.
BROKEN_JSON = "{broken\t\\N \\. json"
SHOP = 'record_id,first_name,last_name\n7,"Multi\nLine",Lang\tTab,surplus\n8,Greta,"Back\\slash"\n'
#: Columns that hold the time of the run (differ between any two runs).
CLOCKS = {"ingested_at", "observed_at", "created_at", "updated_at", "linked_at"}


def run(db: str, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--db", db, *args])
    assert result.exit_code == code, result.output
    return result.output


def dump(conn: Connection, table: Table, key: str) -> list[dict[str, Any]]:
    """Every row of ``table`` in ``key`` order, without the columns that hold the clock."""
    rows = conn.execute(select(table).order_by(table.c[key])).mappings()
    return [{k: v for k, v in row.items() if k not in CLOCKS} for row in rows]


def stored(db: str) -> dict[str, Any]:
    """What a store holds after ingestion and resolution, comparable across backends (profile
    ids are random: profiles are compared by their members)."""
    with open_store(db, migrate=False) as store, store.read() as conn:
        members: dict[str, list[int]] = {}
        for raw_id, pid in conn.execute(
            select(t.profile_members.c.raw_id, t.profile_members.c.profile_id)
        ):
            members.setdefault(pid, []).append(int(raw_id))
        golden = {}
        for pid, doc in conn.execute(select(t.profile_golden)):
            document = orjson.loads(doc)
            document["from"] = [origin[:2] for origin in document["from"]]  # (source, id, time)
            golden[tuple(sorted(members[pid]))] = document
        return {
            "raw": dump(conn, t.raw_records, "id"),
            "records": dump(conn, t.records, "raw_id"),
            "quarantine": dump(conn, t.quarantine, "id"),
            "golden": {str(k): v for k, v in golden.items()},
        }


def ingest_and_resolve(db: str, path: Path) -> dict[str, Any]:
    run(db, "init")
    run(db, "ingest", str(path), "--source", "crm")
    shop = write(path.with_name("shop.csv"), SHOP)
    run(db, "ingest", str(shop), "--source", "shop")
    run(db, "resolve")
    return stored(db)


def test_copy_stores_awkward_values_exactly_as_sqlite(
    pg_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [orjson.dumps(row).decode() for row in AWKWARD]
    path = write(tmp_path / "crm.jsonl", "\n".join([*lines, BROKEN_JSON]) + "\n")
    lite = ingest_and_resolve(str(tmp_path / "custos.db"), path)
    copied = ingest_and_resolve(pg_server.new_database(), path)
    monkeypatch.setattr(PostgresStore, "_row_inserts", True)  # the old path, for the benchmark
    inserted = ingest_and_resolve(pg_server.new_database(), path)
    assert copied == lite
    assert inserted == lite
    # and what they all store is the row as received, byte for byte
    payloads = {row["record_id"]: orjson.loads(row["payload"]) for row in lite["raw"]}
    for row in AWKWARD[:5]:
        assert {k: v for k, v in payloads[row["record_id"]].items() if v is not None} == {
            k: v for k, v in row.items() if v is not None
        }
    extras = {r["raw_id"]: r["extra"] for r in lite["records"]}
    assert orjson.loads(extras[1])["notes"] == AWKWARD[0]["notes"]
    assert orjson.loads(extras[4])["notes"] == LONG
    # (a name's whitespace is normalised; the raw payload above keeps the tab)
    names = {r["raw_id"]: (r["first_name"], r["last_name"]) for r in lite["records"]}
    assert names[1] == ("Anna Maria", 'O\'Brien "the" \\ Back\\slash')
    assert lite["raw"][3]["record_id"] == "\\N"  # COPY's NULL marker, stored as the text it is
    # "" and null both read as "no value"; the store-level test below keeps them apart
    assert (lite["records"][1]["email"], lite["records"][2]["email"]) == (None, None)
    # rows quarantined keep their text as received: literal tabs, newlines, backslashes
    raws = [q["raw"] for q in lite["quarantine"]]
    assert "{broken\t\\N \\. json" in raws
    assert any("Multi\nLine" in raw and "\tTab" in raw for raw in raws)
    assert [q["record_id"] for q in lite["quarantine"] if q["raw"]] != []
    assert any("\t" in (q["raw"] or "") for q in lite["quarantine"])


def test_a_failed_copy_leaves_its_batch_unwritten(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = range(1, 121)
    people = {
        "record_id": [str(i) for i in ids],
        "first_name": [f"Name{i}" for i in ids],
        "last_name": [f"Family{i}" for i in ids],
    }
    path = tmp_path / "people.parquet"  # Parquet: batches of exactly CUSTOS_BATCH_SIZE rows
    pq.write_table(pa.table(people), path)
    monkeypatch.setenv("CUSTOS_BATCH_SIZE", "50")
    run(store_url, "init")
    calls = {"records": 0}

    def failing(original: Any) -> Any:
        def insert(
            self: Store, conn: Connection, table: Table, names: list[str], params: list[Any]
        ) -> None:
            if table.name == "records":
                calls["records"] += 1
                if calls["records"] == 2:  # the second batch: a duplicate key inside its COPY
                    params = [*params, params[0]]
            original(self, conn, table, names, params)

        return insert

    monkeypatch.setattr(PostgresStore, "_bulk_insert", failing(PostgresStore._bulk_insert))
    monkeypatch.setattr(Store, "_bulk_insert", failing(Store._bulk_insert))
    out = run(store_url, "ingest", str(path), "--source", "crm", code=1)
    assert "Traceback" not in out
    with open_store(store_url, migrate=False) as store, store.read() as conn:
        raw = conn.execute(select(t.raw_records.c.record_id)).scalars().all()
        records = conn.execute(select(t.records.c.raw_id)).scalars().all()
    # the first batch committed; of the second, not even its raw rows (written before the
    # failing COPY in the same transaction) are there
    assert sorted(map(int, raw)) == list(range(1, 51))
    assert len(records) == 50
    monkeypatch.undo()
    out = run(store_url, "ingest", str(path), "--source", "crm")
    with open_store(store_url, migrate=False) as store, store.read() as conn:
        assert len(conn.execute(select(t.records.c.raw_id)).scalars().all()) == 120


def test_insert_many_keeps_every_value_apart(store_url: str) -> None:
    """The capability itself: "" is not NULL, and COPY's own markers are plain text."""
    from custos.core.fields import Kind
    from custos.ingest.pipeline import ensure_source

    values = [
        "",
        None,
        "\t",
        "\n",
        "\r\n",
        "\\",
        "\\N",
        "\\.",
        "a\\.\nb",
        "\"'",
        "Zürich 東京 🙂",
        LONG,
    ]
    with open_store(store_url) as store:
        with store.write() as conn:
            source = ensure_source(conn, "crm", Kind.RECORDS)
            store.insert_many(
                conn,
                t.quarantine,
                [(i, f"k{i}", "records", value, value, "why") for i, value in enumerate(values, 1)],
                ("id", "row_key", "kind", "raw", "fix", "reason"),
                {"source_id": source, "created_at": datetime.now(UTC)},
            )
        with store.read() as conn:
            q = t.quarantine
            got = conn.execute(select(q.c.raw, q.c.fix).order_by(q.c.id)).all()
    assert [row[0] for row in got] == values
    assert [row[1] for row in got] == values
