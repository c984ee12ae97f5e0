"""File ingestion on both backends: formats, map files, idempotency, quarantine, atomic batches."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from custos.core.errors import ConfigError, InputError
from custos.core.fields import Kind
from custos.service import Custos
from custos.store import tables as t
from tests.conftest import write

PEOPLE = """record_id,first_name,last_name,email,phone,date_of_birth,street,postcode,city,country,loyalty_tier
1,Anna,Müller,Anna.Mueller@example.com,030 1234567,07.03.1985,Hauptstraße 5,10115,Berlin,DE,gold
2,Ben,Schmidt,ben@example.com,+49 40 7654321,1979-11-02,Elbchaussee 1,22763,Hamburg,Deutschland,
3,Cara,Jones,cara@example.co.uk,020 7946 0123,1990-01-31,12 Baker Street,NW1 6XE,London,UK,silver
"""

BROKEN = """record_id,first_name,last_name,email,phone,date_of_birth
1,Anna,Müller,anna@example.com,030 1234567,07.03.1985
2,Ben,Schmidt,ben@example.com,,31.02.1985
,Cara,Jones,cara@example.com,,1990-01-31
4,Dora,Weber,dora.at.example,,1970-05-05
5,Emil,Fischer,emil@example.com,call me,1966-06-06
6,Fritz,Klein,fritz@example.com,,"1955-01-01",surplus
7,Greta,Lang,greta@example.com,,1988-08-08
"""


def count(app: Custos, table: object) -> int:
    with app.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_csv_records_are_normalised_with_extras_kept(custos: Custos, tmp_path: Path) -> None:
    summary = custos.ingest(write(tmp_path / "crm.csv", PEOPLE), "crm")
    assert (summary.read, summary.stored, summary.duplicates, summary.quarantined) == (3, 3, 0, 0)
    with custos.store.read() as conn:
        rows = {r.email: r for r in conn.execute(select(t.records))}
        raw = (
            conn.execute(select(t.raw_records.c.payload).order_by(t.raw_records.c.id))
            .scalars()
            .first()
        )
    anna = rows["anna.mueller@example.com"]
    assert anna.phone == "+49301234567"
    assert anna.date_of_birth == "1985-03-07"
    assert anna.last_name_key == "muller"
    assert anna.street_key == "hauptstr 5"
    assert anna.full_name == "Anna Müller"
    assert orjson.loads(anna.extra) == {"loyalty_tier": "gold"}
    assert rows["ben@example.com"].country == "DE"
    assert rows["cara@example.co.uk"].phone == "+442079460123"  # the row's country, not the default
    assert orjson.loads(raw or "{}")["email"] == "Anna.Mueller@example.com"  # verbatim


def test_same_file_twice_changes_no_counts(custos: Custos, tmp_path: Path) -> None:
    path = write(tmp_path / "crm.csv", BROKEN)
    first = custos.ingest(path, "crm")
    before = custos.stats()
    second = custos.ingest(path, "crm")
    assert custos.stats() == before
    assert second.stored == 0 and second.duplicates == first.stored
    assert second.quarantined_new == 0 and second.ok


def test_broken_rows_are_quarantined_with_reasons_and_good_rows_stored(
    custos: Custos, tmp_path: Path
) -> None:
    summary = custos.ingest(write(tmp_path / "crm.csv", BROKEN), "crm")
    assert (summary.read, summary.stored, summary.quarantined) == (7, 2, 5)
    rows = {r["line_no"]: r for r in custos.quarantine()}
    assert set(rows) == {3, 4, 5, 6, 7}
    assert rows[3]["field"] == "date_of_birth" and rows[3]["record_id"] == "2"
    assert rows[4]["field"] == "record_id"
    assert rows[5]["field"] == "email"
    assert rows[6]["field"] == "phone"
    assert "fields" in rows[7]["reason"]
    assert all(r["fix"] for r in rows.values())
    # Nothing lost: every line is either stored or quarantined, with its raw content.
    assert count(custos, t.records) + count(custos, t.quarantine) == 7
    with custos.store.read() as conn:
        raws = conn.execute(select(t.quarantine.c.raw)).scalars().all()
    assert all(raws)


def test_messages_do_not_leak_values(custos: Custos, tmp_path: Path) -> None:
    custos.ingest(write(tmp_path / "crm.csv", BROKEN), "crm")
    for row in custos.quarantine():
        text = f"{row['reason']} {row['fix']}"
        for secret in ("dora.at.example", "call me", "31.02.1985"):
            assert secret not in text


def test_jsonl_interactions_with_map_file(custos: Custos, tmp_path: Path) -> None:
    lines = [
        {
            "call_id": "c1",
            "started_at": "2026-03-01T10:00:00+01:00",
            "caller_phone": "030 1234567",
            "caller_name": "Frau Müller",
            "notes": "Lieferung fehlt",
        },
        {
            "call_id": "c2",
            "started_at": "2026-03-02T10:00:00Z",
            "caller_phone": "+49 40 7654321",
            "notes": "Thanks!",
            "lang": "en",
        },
    ]
    data = write(
        tmp_path / "calls.jsonl",
        "\n".join(orjson.dumps(x).decode() for x in lines) + "\nnot json\n",
    )
    mapping = write(
        tmp_path / "calls.yaml",
        "kind: interactions\nchannel: call\nrecord_id: call_id\ntimestamp: started_at\n"
        "phone: caller_phone\nfull_name: caller_name\ntext: notes\nlanguage: lang\n",
    )
    summary = custos.ingest(data, "callcentre", map_path=mapping)
    assert summary.kind is Kind.INTERACTIONS
    assert (summary.stored, summary.quarantined) == (2, 1)
    with custos.store.read() as conn:
        rows = {r.text: r for r in conn.execute(select(t.interactions))}
    assert (
        rows["Lieferung fehlt"].last_name == "Müller" and rows["Lieferung fehlt"].first_name is None
    )
    assert rows["Lieferung fehlt"].channel == "call"
    assert rows["Lieferung fehlt"].timestamp.hour == 9  # 10:00+01:00 in UTC
    assert rows["Thanks!"].language == "en"
    assert custos.quarantine()[0]["line_no"] == 3


def test_parquet_records(custos: Custos, tmp_path: Path) -> None:
    table = pa.table(
        {
            "record_id": ["W1", "W2"],
            "full_name": ["Müller, Anna", "Ben Schmidt"],
            "email": ["A@X.DE ", None],
        }
    )
    pq.write_table(table, tmp_path / "shop.parquet")
    summary = custos.ingest(tmp_path / "shop.parquet", "webshop")
    assert summary.stored == 2
    with custos.store.read() as conn:
        anna = conn.execute(select(t.records).where(t.records.c.email == "a@x.de")).one()
    assert (anna.first_name, anna.last_name) == ("Anna", "Müller")


def test_consents_are_stored_once(custos: Custos, tmp_path: Path) -> None:
    text = (
        "email,purpose,status,timestamp,method\n"
        "anna@example.com,marketing_email,granted,2026-01-01T10:00:00Z,form\n"
        "anna@example.com,marketing_email,withdrawn,2026-02-01T10:00:00Z,call\n"
        "anna@example.com,marketing_email,maybe,2026-02-01T10:00:00Z,call\n"
    )
    path = write(tmp_path / "consents.csv", text)
    first = custos.ingest(path, "crm", kind=Kind.CONSENTS)
    again = custos.ingest(path, "crm", kind=Kind.CONSENTS)
    assert (first.stored, first.quarantined) == (2, 1)
    assert again.stored == 0 and count(custos, t.consent_events) == 2


def test_a_source_holds_one_kind(custos: Custos, tmp_path: Path) -> None:
    custos.ingest(write(tmp_path / "crm.csv", PEOPLE), "crm")
    calls = write(tmp_path / "calls.csv", "record_id,timestamp,text\nc1,2026-01-01,hi\n")
    with pytest.raises(ConfigError, match="holds records"):
        custos.ingest(calls, "crm", kind=Kind.INTERACTIONS)


def test_map_file_errors_name_the_problem(custos: Custos, tmp_path: Path) -> None:
    data = write(tmp_path / "x.csv", "id,mail\n1,a@b.de\n")
    with pytest.raises(ConfigError, match="lacks"):
        custos.ingest(
            data, "x", map_path=write(tmp_path / "m.yaml", "record_id: id\nemail: e_mail\n")
        )
    with pytest.raises(ConfigError, match="unknown canonical field"):
        custos.ingest(
            data, "x", map_path=write(tmp_path / "m2.yaml", "record_id: id\nmial: mail\n")
        )


def test_unknown_extension_and_missing_file(custos: Custos, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown extension"):
        custos.ingest(write(tmp_path / "x.xlsx", "x"), "x")
    with pytest.raises(InputError, match="no such file"):
        custos.ingest(tmp_path / "missing.csv", "x")


def test_a_failing_batch_lands_not_at_all(
    custos: Custos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = custos.store
    original = store.insert_many

    def failing(conn, table, rows, names=None, const=None):  # type: ignore[no-untyped-def]
        if table is t.records:
            raise RuntimeError("disk full")
        return original(conn, table, rows, names, const)

    monkeypatch.setattr(store, "insert_many", failing)
    with pytest.raises(RuntimeError):
        custos.ingest(write(tmp_path / "crm.csv", PEOPLE), "crm")
    monkeypatch.undo()
    assert count(custos, t.raw_records) == 0  # the raw rows of the batch were rolled back too
    summary = custos.ingest(tmp_path / "crm.csv", "crm")
    assert summary.stored == 3


def test_record_ids_deduplicate_across_batches_and_within(custos: Custos, tmp_path: Path) -> None:
    rows = "".join(f"{i % 50},P{i},Q{i}\n" for i in range(120))
    path = write(tmp_path / "dup.csv", "record_id,first_name,last_name\n" + rows)
    custos.settings = custos.settings.model_copy(update={"batch_size": 7})
    summary = custos.ingest(path, "crm")
    assert (summary.stored, summary.duplicates) == (50, 70)


def test_parallel_normalisation_gives_the_same_store(tmp_path: Path, settings: object) -> None:
    from custos.core.settings import Settings

    assert isinstance(settings, Settings)
    rows = "".join(
        f"{i},Anna{i},Müller,anna{i}@example.com,030 {1000000 + i},07.03.1985\n"
        for i in range(3000)
    )
    rows += ",broken,row,,,\n"
    path = write(
        tmp_path / "p.csv", "record_id,first_name,last_name,email,phone,date_of_birth\n" + rows
    )
    results = []
    for workers in (1, 2):
        with Custos.open(
            str(tmp_path / f"w{workers}.db"),
            settings.model_copy(update={"workers": workers, "batch_size": 500}),
        ) as app:
            summary = app.ingest(path, "crm")
            with app.store.read() as conn:
                phones = (
                    conn.execute(select(t.records.c.phone).order_by(t.records.c.raw_id))
                    .scalars()
                    .all()
                )
            results.append((summary.stored, summary.quarantined, phones))
    assert results[0] == results[1]
    assert results[0][0] == 3000 and results[0][1] == 1


def test_quoted_line_breaks_survive_chunking(custos: Custos, tmp_path: Path) -> None:
    """Chunks are cut at line ends but never inside a quoted field, whatever the batch size."""
    notes = [
        '"first line\nsecond line"',
        "plain",
        '"a ""quoted"" word,\nand a comma"',
        '"three\n\nlines"',
        "last",
    ]
    body = "".join(f"n{i},2026-01-0{i + 1},{note}\n" for i, note in enumerate(notes))
    path = write(tmp_path / "notes.csv", "record_id,timestamp,text\n" + body + "n9,soon,broken\n")
    custos.settings = custos.settings.model_copy(update={"batch_size": 1})
    summary = custos.ingest(path, "notes", kind=Kind.INTERACTIONS)
    assert (summary.stored, summary.quarantined) == (5, 1)
    with custos.store.read() as conn:
        rows = conn.execute(
            select(t.raw_records.c.record_id, t.raw_records.c.line_no, t.interactions.c.text)
            .join(t.interactions, t.interactions.c.raw_id == t.raw_records.c.id)
            .order_by(t.raw_records.c.id)
        ).all()
    assert [(r.record_id, r.line_no) for r in rows] == [
        ("n0", 2),
        ("n1", 4),
        ("n2", 5),
        ("n3", 7),
        ("n4", 10),
    ]
    assert rows[2].text == 'a "quoted" word,\nand a comma'
    assert custos.quarantine()[0]["line_no"] == 11


def test_semicolon_csv_with_bom(custos: Custos, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffrecord_id;first_name;email\r\n1;Jörg;j@example.com\r\n".encode())
    summary = custos.ingest(path, "excel")
    assert summary.stored == 1
    with custos.store.read() as conn:
        assert conn.execute(select(t.records.c.first_name)).scalar_one() == "Jörg"


def test_windows_1252_csv_is_read_and_nested_json_paths_map(custos: Custos, tmp_path: Path) -> None:
    path = tmp_path / "legacy.csv"
    path.write_bytes("record_id;first_name;last_name\r\n1;Jürgen;Weiß\r\n".encode("cp1252"))
    assert custos.ingest(path, "legacy").stored == 1
    with custos.store.read() as conn:
        assert conn.execute(select(t.records.c.last_name)).scalar_one() == "Weiß"
    event = {
        "messageId": "m1",
        "timestamp": "2026-01-01T00:00:00Z",
        "context": {"traits": {"email": "A@B.DE"}},
    }
    data = write(tmp_path / "events.jsonl", orjson.dumps(event).decode() + "\n")
    mapping = write(tmp_path / "events.yaml", "record_id: messageId\nemail: context.traits.email\n")
    assert custos.ingest(data, "web", kind=Kind.INTERACTIONS, map_path=mapping).stored == 1
    with custos.store.read() as conn:
        assert conn.execute(select(t.interactions.c.email)).scalar_one() == "a@b.de"
    with pytest.raises(ConfigError, match="unknown encoding"):
        custos.ingest(path, "legacy", map_path=write(tmp_path / "enc.yaml", "encoding: klingon\n"))


def test_a_file_without_record_ids_is_refused_with_the_fix(custos: Custos, tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv", "id,first_name\n1,Anna\n")
    with pytest.raises(ConfigError, match="no record_id column") as caught:
        custos.ingest(path, "crm")
    assert "record_id: your_id_column" in str(caught.value)
    assert (
        custos.ingest(path, "crm", map_path=write(tmp_path / "m.yaml", "record_id: id\n")).stored
        == 1
    )
