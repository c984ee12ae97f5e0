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
from custos.core.settings import Settings
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


def test_a_form_of_address_column_goes_in_front_of_the_full_name(
    custos: Custos, tmp_path: Path
) -> None:
    """A CRM's Anrede column is the salutation field without a map entry: it is no extra
    attribute, and the full name carries it ("Mrs R. West"), once."""
    crm = (
        "record_id,Anrede,first_name,last_name,full_name\n"
        "r1,Mrs,R.,West,\n"
        "r2,Herr,Klaus,Vogt,Herr Klaus Vogt\n"
        "r3,,Anna,Berg,\n"
    )
    custos.ingest(write(tmp_path / "crm.csv", crm), "crm")
    with custos.store.read() as conn:
        rows = {r.raw_id: r for r in conn.execute(select(t.records).order_by(t.records.c.raw_id))}
    names = [r.full_name for r in rows.values()]
    assert names == ["Mrs R. West", "Herr Klaus Vogt", "Anna Berg"]
    assert all(not r.extra or "Anrede" not in orjson.loads(r.extra) for r in rows.values())


def test_same_file_twice_changes_no_counts(custos: Custos, tmp_path: Path) -> None:
    path = write(tmp_path / "crm.csv", BROKEN)
    first = custos.ingest(path, "crm")
    before = custos.stats()
    second = custos.ingest(path, "crm")
    assert custos.stats() == before
    assert second.stored == 0 and second.duplicates == first.stored
    assert second.quarantined_new == 0 and second.ok


def test_a_bad_field_costs_the_field_and_only_broken_rows_are_quarantined(
    custos: Custos, tmp_path: Path
) -> None:
    summary = custos.ingest(write(tmp_path / "crm.csv", BROKEN), "crm")
    # A bad birth date, e-mail or phone is left out of its row; a row without a record id, or
    # one that cannot be read as a whole (a surplus field), is quarantined.
    assert (summary.read, summary.stored, summary.quarantined) == (7, 5, 2)
    assert summary.fields_dropped == 3
    rows = {r["line_no"]: r for r in custos.quarantine()}
    assert set(rows) == {3, 4, 5, 6, 7}
    assert rows[3]["field"] == "date_of_birth" and rows[3]["record_id"] == "2"
    assert rows[4]["field"] == "record_id"
    assert rows[5]["field"] == "email" and rows[5]["record_id"] == "4"
    assert rows[6]["field"] == "phone" and rows[6]["record_id"] == "5"
    assert "fields" in rows[7]["reason"]
    assert all(r["fix"] for r in rows.values())
    for line in (3, 5, 6):
        assert rows[line]["reason"].endswith("(row stored without this field)")
    with custos.store.read() as conn:
        stored = {r.first_name: r for r in conn.execute(select(t.records))}
        raws = conn.execute(select(t.quarantine.c.raw)).scalars().all()
    assert sorted(stored) == ["Anna", "Ben", "Dora", "Emil", "Greta"]
    assert stored["Ben"].date_of_birth is None and stored["Ben"].email == "ben@example.com"
    assert stored["Dora"].email is None and stored["Dora"].date_of_birth == "1970-05-05"
    assert stored["Emil"].phone is None and stored["Emil"].email == "emil@example.com"
    # Nothing lost: every line is either stored or quarantined, with its raw content, and each
    # left-out field is listed.
    assert count(custos, t.records) + summary.quarantined == 7
    assert all(raws) and len(raws) == 5


def test_bad_fields_quarantine_keeps_the_strict_behaviour(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, db="unused", bad_fields="quarantine")  # type: ignore[call-arg]
    with Custos.open(str(tmp_path / "strict.db"), settings) as app:
        summary = app.ingest(write(tmp_path / "crm.csv", BROKEN), "crm")
        assert (summary.read, summary.stored, summary.quarantined) == (7, 2, 5)
        assert summary.fields_dropped == 0
        fields = {r["line_no"]: r["field"] for r in app.quarantine()}
    assert fields == {3: "date_of_birth", 4: "record_id", 5: "email", 6: "phone", 7: None}


def test_a_row_with_a_bad_email_is_stored_without_it(custos: Custos, tmp_path: Path) -> None:
    path = write(
        tmp_path / "crm.csv",
        "record_id,first_name,last_name,email,phone,country\n"
        "c1,Cody,Haynes,cody.haynesgmail.com,(956) 514-2238,US\n",
    )
    summary = custos.ingest(path, "crm")
    assert (summary.stored, summary.quarantined, summary.fields_dropped) == (1, 0, 1)
    with custos.store.read() as conn:
        row = conn.execute(select(t.records)).one()
    assert (row.first_name, row.email, row.phone) == ("Cody", None, "+19565142238")
    [listed] = custos.quarantine()
    assert listed["field"] == "email" and listed["record_id"] == "c1"
    assert listed["reason"] == "not an e-mail address (row stored without this field)"
    assert "name@domain.tld" in listed["fix"]
    assert "cody" not in listed["reason"] + listed["fix"]
    # The same file again: nothing stored twice, and the field is not listed twice.
    again = custos.ingest(path, "crm")
    assert (again.stored, again.duplicates, again.fields_dropped) == (0, 1, 0)
    assert len(custos.quarantine()) == 1


def test_two_bad_fields_of_one_row_are_listed_each(custos: Custos, tmp_path: Path) -> None:
    path = write(
        tmp_path / "crm.csv",
        "record_id,first_name,email,phone,date_of_birth\nr1,Ada,ada.at.example,call me,gestern\n",
    )
    summary = custos.ingest(path, "crm")
    assert (summary.stored, summary.quarantined, summary.fields_dropped) == (1, 0, 3)
    assert sorted(r["field"] for r in custos.quarantine()) == ["date_of_birth", "email", "phone"]


def test_an_interaction_with_an_unreadable_time_is_stored_without_it(
    custos: Custos, tmp_path: Path
) -> None:
    path = write(tmp_path / "notes.csv", "record_id,timestamp,text\nn1,soon,hello\n")
    summary = custos.ingest(path, "notes", kind=Kind.INTERACTIONS, pii="keep")
    assert (summary.stored, summary.fields_dropped) == (1, 1)
    with custos.store.read() as conn:
        row = conn.execute(select(t.interactions)).one()
    assert (row.timestamp, row.text) == (None, "hello")
    assert custos.quarantine()[0]["field"] == "timestamp"


def test_consent_rows_keep_their_event_fields_and_one_identifier(
    custos: Custos, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "consents.csv",
        "email,phone,purpose,status,timestamp\n"
        "a@example.com,call me,marketing_email,granted,2026-01-01T10:00:00Z\n"  # phone left out
        "not-an-email,,marketing_email,granted,2026-01-01T10:00:00Z\n"  # no identifier left
        "b@example.com,,marketing_email,granted,soon\n"  # no time: says nothing
        "c@example.com,,,granted,2026-01-01T10:00:00Z\n",  # no purpose
    )
    summary = custos.ingest(path, "crm", kind=Kind.CONSENTS)
    assert (summary.stored, summary.quarantined, summary.fields_dropped) == (1, 3, 1)
    listed = {r["line_no"]: r["field"] for r in custos.quarantine()}
    assert listed == {2: "phone", 3: "email", 4: "timestamp", 5: "purpose"}


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
    assert (summary.stored, summary.quarantined, summary.fields_dropped) == (6, 0, 1)
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
        ("n9", 11),  # stored without its time, which is listed with the quarantine
    ]
    assert rows[2].text == 'a "quoted" word,\nand a comma'
    assert custos.quarantine()[0]["line_no"] == 11
    assert custos.quarantine()[0]["field"] == "timestamp"


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


NATIONAL = """record_id,first_name,phone,country
n1,Cody,(956) 514-2238,
n2,Fenna,0598 549048,
n3,Jonas,0182/405851,
n4,Dana,(956) 514-2238,US
"""


def phones(app: Custos, table: object = t.records) -> dict[str, str | None]:
    """Stored phone per record id."""
    with app.store.read() as conn:
        query = select(t.raw_records.c.record_id, table.c.phone).join(  # type: ignore[attr-defined]
            table,
            table.c.raw_id == t.raw_records.c.id,  # type: ignore[attr-defined]
        )
        return {record_id: phone for record_id, phone in conn.execute(query)}


def test_a_national_number_without_a_region_is_never_stored_as_another_countrys(
    custos: Custos, tmp_path: Path
) -> None:
    """No country in the row, no phone_region in the map, no default region: a national-format
    number keeps its national digits (never +49…); with the row's country it becomes E.164."""
    assert custos.settings.default_region is None
    summary = custos.ingest(write(tmp_path / "crm.csv", NATIONAL), "crm")
    assert (summary.stored, summary.quarantined, summary.fields_dropped) == (4, 0, 0)
    assert phones(custos) == {
        "n1": "9565142238",
        "n2": "0598549048",
        "n3": "0182405851",
        "n4": "+19565142238",
    }


def test_the_map_files_phone_region_gives_national_numbers_their_country(
    custos: Custos, tmp_path: Path
) -> None:
    """The region of a phone: the row's country, else the map file's phone_region."""
    mapping = write(tmp_path / "nl.yaml", "phone_region: NL\n")
    custos.ingest(write(tmp_path / "crm.csv", NATIONAL), "crm", map_path=mapping)
    stored = phones(custos)
    assert stored["n2"] == "+31598549048"
    assert stored["n4"] == "+19565142238"  # the row's country wins
    # default_country is the older name of the key
    older = write(tmp_path / "old.yaml", "default_country: NL\nkind: interactions\n")
    calls = write(tmp_path / "calls.csv", "record_id,phone\nc1,0598 549048\n")
    custos.ingest(calls, "calls", map_path=older)
    assert phones(custos, t.interactions) == {"c1": "+31598549048"}


def test_the_default_region_applies_last(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, db="unused", default_region="us")  # type: ignore[call-arg]
    with Custos.open(str(tmp_path / "us.db"), settings) as app:
        mapping = write(tmp_path / "nl.yaml", "phone_region: NL\n")
        app.ingest(write(tmp_path / "a.csv", NATIONAL), "a")
        app.ingest(write(tmp_path / "b.csv", NATIONAL.replace("\nn", "\nm")), "b", map_path=mapping)
        stored = phones(app)
    assert stored["n1"] == "+19565142238"  # the default region
    assert stored["m2"] == "+31598549048"  # the map file's region before the default
    wrong = Settings(_env_file=None, db="unused", default_region="Narnia")  # type: ignore[call-arg]
    with (
        Custos.open(str(tmp_path / "x.db"), wrong) as app,
        pytest.raises(ConfigError, match="CUSTOS_DEFAULT_REGION"),
    ):
        app.ingest(write(tmp_path / "c.csv", NATIONAL), "c")


def test_an_unknown_phone_region_in_a_map_file_is_a_clear_error(
    custos: Custos, tmp_path: Path
) -> None:
    data = write(tmp_path / "crm.csv", NATIONAL)
    with pytest.raises(ConfigError, match="unknown phone region 'XY'"):
        custos.ingest(data, "crm", map_path=write(tmp_path / "m.yaml", "phone_region: XY\n"))


def test_an_ambiguous_birth_date_keeps_both_readings(custos: Custos, tmp_path: Path) -> None:
    path = write(
        tmp_path / "crm.csv",
        "record_id,first_name,date_of_birth\nr1,Ada,03/04/1982\nr2,Bea,25/12/1980\n"
        "r3,Cleo,03/04/2030\n",
    )
    summary = custos.ingest(path, "crm")
    # stored, not quarantined; the fields are listed (a note to set date_format)
    assert (summary.stored, summary.quarantined, summary.fields_dropped) == (3, 0, 2)
    with custos.store.read() as conn:
        rows = {
            r.first_name: (r.date_of_birth, r.date_of_birth_candidates)
            for r in conn.execute(select(t.records))
        }
    assert rows == {
        "Ada": (None, "1982-04-03 1982-03-04"),  # the day/month reading first
        "Bea": ("1980-12-25", None),
        "Cleo": (None, None),  # both readings in the future: no reading, the field left out
    }
    notes = {r["record_id"]: r for r in custos.quarantine()}
    assert notes["r1"]["field"] == "date_of_birth"
    assert notes["r1"]["reason"].startswith("ambiguous date: kept both readings")
    assert "date_format" in notes["r1"]["fix"]
    assert "out of range" in notes["r3"]["reason"]
    # With the map file's date_format there is nothing to keep twice.
    mapping = write(tmp_path / "m.yaml", "date_format: '%d/%m/%Y'\n")
    custos.ingest(
        write(tmp_path / "b.csv", "record_id,date_of_birth\nb1,03/04/1982\n"), "b", map_path=mapping
    )
    with custos.store.read() as conn:
        stored = conn.execute(
            select(t.records.c.date_of_birth, t.records.c.date_of_birth_candidates).where(
                t.records.c.date_of_birth == "1982-04-03"
            )
        ).one()
    assert tuple(stored) == ("1982-04-03", None)


def test_an_ambiguous_birth_date_is_kept_even_when_bad_fields_quarantine(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, db="unused", bad_fields="quarantine")  # type: ignore[call-arg]
    with Custos.open(str(tmp_path / "q.db"), settings) as app:
        path = write(
            tmp_path / "i.csv", "record_id,timestamp,date_of_birth\ni1,2026-01-01,03/04/1982\n"
        )
        summary = app.ingest(path, "calls", kind=Kind.INTERACTIONS)
        assert (summary.stored, summary.quarantined) == (1, 0)
        with app.store.read() as conn:
            row = conn.execute(select(t.interactions)).one()
    assert (row.date_of_birth, row.date_of_birth_candidates) == (None, "1982-04-03 1982-03-04")


LOOKUP = """record_id,first_name,last_name,email,phone,country
p1,Cody,Haynes,cody@example.com,(956) 514-2238,
p2,Fenna,Bakker,fenna@example.com,+31 598 549048,NL
p3,Jonas,Weber,jonas@example.com,0182/405851,
p4,Jana,Weber,jana@example.com,0182 405851,
"""


def test_a_phone_look_up_compares_national_digits(custos: Custos, tmp_path: Path) -> None:
    """A look-up by E.164 finds a profile whose only phone was stored as national digits (and
    the other way round); a national number finds the same national digits; a comparison
    without the country that fits two profiles is refused, naming no value."""
    from fastapi.testclient import TestClient

    from custos.api.app import create_app
    from custos.core.errors import NotFoundError
    from custos.service import keys

    custos.ingest(write(tmp_path / "crm.csv", LOOKUP), "crm")
    custos.resolve()
    cody, fenna = custos.find_profile("cody@example.com"), custos.find_profile("fenna@example.com")
    assert custos.find_profile("(956) 514-2238") == cody  # the same national digits
    assert custos.find_profile("+1 956 514 2238") == cody  # E.164 → national digits
    assert custos.find_profile("0598 549048") == fenna  # national digits → E.164
    with pytest.raises(InputError, match="matches 2 profiles") as caught:
        custos.find_profile("+49 182 405851")  # Jonas and Jana stored it without a country
    assert "405851" not in str(caught.value) and "cus_" not in str(caught.value)
    with pytest.raises(NotFoundError):
        custos.find_profile("+44 598 549048")  # E.164 never meets another country's E.164
    key = keys.create(custos, "desk", ["customer_service"])
    client = TestClient(create_app(custos))
    headers = {"Authorization": f"Bearer {key}"}
    found = client.post("/v1/profiles/lookup", json={"phone": "+19565142238"}, headers=headers)
    assert found.status_code == 200 and found.json()["profile_id"] == cody
    both = client.post("/v1/profiles/lookup", json={"phone": "+491824 05851"}, headers=headers)
    assert both.status_code == 400 and "405851" not in both.text


def test_an_erased_person_comes_back_neither_through_a_left_out_field_nor_another_phone_form(
    tmp_path: Path,
) -> None:
    """Suppression sees the raw identifiers of a row stored without a bad field, and the phone
    of an erased person in its other form (national digits of unknown country)."""
    from custos.ingest.pipeline import SUPPRESSED_REASON
    from custos.service import dsr

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", secret_key_file=str(tmp_path / "key" / "secret.key")
    )
    with Custos.open(str(tmp_path / "c.db"), settings) as app:
        crm = "record_id,first_name,last_name,email,phone,country\n"
        crm += "r1,Quenby,Xylander,quenby@example.org,030 9876543,DE\n"
        crm += "r2,Ben,Schmidt,ben@example.com,040 2222222,DE\n"
        app.ingest(write(tmp_path / "crm.csv", crm), "crm")
        app.resolve()
        dsr.erase(app, "quenby@example.org", actor="dpo")
        later = "record_id,first_name,email,phone,contact\n"
        later += "x1,Q,not-an-address,,quenby@example.org\n"  # e-mail left out, in another column
        later += "x2,Q,,030 9876543,\n"  # national digits, no country: 0309876543
        later += "x3,Ben,ben.at.example,040 2222222,\n"  # someone else
        summary = app.ingest(write(tmp_path / "later.csv", later), "shop")
        assert (summary.stored, summary.quarantined) == (1, 2)
        held = {q["line_no"] for q in app.quarantine() if q["reason"] == SUPPRESSED_REASON}
        assert held == {2, 3}
        # Quenby's left-out e-mail is not listed either (nothing of hers is kept).
        assert {q["line_no"] for q in app.quarantine(source="shop")} == {2, 3, 4}
