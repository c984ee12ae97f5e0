"""Data-subject requests (access, export, rectify, restrict, erase), on both backends."""

from __future__ import annotations

import csv
import io
import os
import stat
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Column, Integer, Table, select, text
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.errors import AccessDenied, ConfigError, NotFoundError, StoreError
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.ingest import normalise
from custos.ingest.pipeline import SUPPRESSED_REASON
from custos.privacy.dsr import erasure
from custos.privacy.dsr.report import ACCESS_SECTIONS
from custos.privacy.keys import load_or_create_key
from custos.service import Custos, dsr
from custos.service.demo import run_demo
from custos.store import tables as t
from tests.conftest import write

EMAIL = "quenby.xylander@example.org"
# German numbers written nationally: the rows say their country (custos guesses none). The
# last row has no record id: quarantined whole, it is the person's quarantined row.
CRM = """record_id,first_name,last_name,email,phone,date_of_birth,street,postcode,city,customer_id,social_handle,note,country
r1,Quenby,Xylander,quenby.xylander@example.org,030 9876543,1971-03-14,Zwiebelweg 17,10999,Xantenhausen,C-7781,@quenbyx,<script>alert(1)</script>,DE
r2,Ben,Schmidt,ben@example.com,040 2222222,1980-05-06,Hauptstr. 1,20095,Hamburg,C-1002,,,DE
r3,Bea,Schmidt,bea@example.com,040 2222222,1982-02-03,Hauptstr. 1,20095,Hamburg,C-1004,,,DE
r4,Cara,Jones,cara@example.com,089 3333333,1990-07-08,Lindenweg 2,80331,München,C-1003,,,DE
,Quenby,Xylander,quenby.xylander@example.org,030 9876543,31/31/1971,Zwiebelweg 17,10999,Xantenhausen,,,,DE
"""
SHOP = """record_id,full_name,email
s1,Quenby Xylander,Quenby.Xylander@Example.org
s2,Ben Schmidt,ben@example.com
"""
CALLS = """record_id,timestamp,phone,country,text
k1,2026-01-05T10:00:00Z,+49 30 9876543,DE,Asked about her order
k2,2026-01-06T10:00:00Z,040 2222222,DE,Complained about a delay
"""
CONSENTS = """email,purpose,status,timestamp
quenby.xylander@example.org,marketing_email,granted,2026-01-01T00:00:00Z
ben@example.com,marketing_email,granted,2026-01-01T00:00:00Z
"""
#: Every form of Quenby's data that must be gone after erasure (as stored and as received).
TRACES = [
    "quenby.xylander@example.org",
    "Quenby.Xylander@Example.org",
    "+49309876543",
    "030 9876543",
    "+49 30 9876543",
    "Quenby",
    "Xylander",
    "Zwiebelweg",
    "Xantenhausen",
    "1971-03-14",
    "31/31/1971",
    "C-7781",
    "@quenbyx",
    "Asked about her order",
    "alert(1)",
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with a secret key of the test's own (never the user's)."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", secret_key_file=str(tmp_path / "key" / "secret.key")
    )


def load(custos: Custos, folder: Path) -> dict[str, Path]:
    files = {
        "crm": write(folder / "crm.csv", CRM),
        "shop": write(folder / "shop.csv", SHOP),
        "calls": write(folder / "calls.csv", CALLS),
        "consents": write(folder / "consents.csv", CONSENTS),
    }
    custos.ingest(files["crm"], "crm")
    custos.ingest(files["shop"], "shop")
    custos.ingest(files["calls"], "calls", kind=Kind.INTERACTIONS)
    custos.resolve()
    custos.ingest(files["consents"], "crm", kind=Kind.CONSENTS)
    return files


def table_hits(custos: Custos, traces: list[str]) -> dict[str, set[str]]:
    """Table → the traces found in any of its values (case-insensitive)."""
    wanted = [(trace, trace.lower()) for trace in traces]
    hits: dict[str, set[str]] = {}
    with custos.store.read() as conn:
        for name, table in t.metadata.tables.items():
            for row in conn.execute(select(table)):
                blob = "\x1f".join(str(v) for v in row).lower()
                for trace, low in wanted:
                    if low in blob:
                        hits.setdefault(name, set()).add(trace)
    return hits


def file_hits(custos: Custos, traces: list[str]) -> set[str]:
    """The traces found in the bytes of the SQLite file and its write-ahead log."""
    path = Path(custos.store.engine.url.database or "")
    data = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    found = set()
    for trace in traces:
        if trace.encode() in data or trace.lower().encode() in data:
            found.add(trace)
    return found


def pg_stats_hits(custos: Custos, traces: list[str]) -> set[str]:
    """The traces found in PostgreSQL's column statistics (most common values, histograms)."""
    with custos.store.read() as conn:
        rows = conn.execute(
            text(
                "SELECT coalesce(most_common_vals::text, '') || coalesce(histogram_bounds::text, '')"
                " FROM pg_stats WHERE schemaname = current_schema()"
            )
        ).scalars()
        blob = "\x1f".join(rows).lower()
    return {trace for trace in traces if trace.lower() in blob}


# -- erasure --------------------------------------------------------------------------------------


def test_erasure_leaves_no_trace_and_a_reimport_is_suppressed(
    custos: Custos, tmp_path: Path
) -> None:
    files = load(custos, tmp_path)
    custos.profile(EMAIL, purpose="customer_service", actor="api-key-42")
    ben = custos.find_profile("ben@example.com")
    aliases = t.metadata.tables.get("collect_aliases")
    if aliases is not None:  # collected events tie an anonymous id to her customer id
        with custos.store.write() as conn:
            conn.execute(
                aliases.insert().values(
                    anonymous_id="anon-1", user_id="c-7781", linked_at=datetime.now(UTC)
                )
            )
    before = table_hits(custos, TRACES)
    assert len(custos.memos) > 0  # ingestion remembered normal forms of her values
    assert {"raw_records", "records", "interactions", "consent_events", "quarantine"} <= set(before)
    if custos.store.backend == "sqlite":
        assert EMAIL in file_hits(custos, TRACES)
    else:
        with custos.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("ANALYZE"))
        assert EMAIL in pg_stats_hits(custos, TRACES)

    request = dsr.erase(custos, EMAIL, actor="dpo")

    assert request.state == "done" and [s.state for s in request.steps] == ["done"] * 3
    assert table_hits(custos, TRACES) == {}
    # nor does this process remember normal forms of her values (ingestion's memos)
    assert len(custos.memos) == 0
    assert normalise.name_key.cache_info().currsize == 0
    if custos.store.backend == "sqlite":
        assert file_hits(custos, TRACES) == set()
    else:
        assert pg_stats_hits(custos, TRACES) == set()
    receipt = request.result["receipt"]
    assert receipt["removed"]["raw_records"] == 3 and receipt["removed"]["quarantine"] == 1
    assert receipt["removed"]["consent_events"] == 1 and receipt["removed"]["interactions"] == 1
    assert {r["actor"] for r in receipt["recipients_to_notify"]} == {"api-key-42"}
    assert {"email", "phone", "customer_id", "social_handle", "record"} <= set(
        receipt["suppressed"]
    )
    assert "audit_log" in receipt["kept"]
    with pytest.raises(NotFoundError):
        custos.find_profile(EMAIL)
    assert custos.find_profile("ben@example.com") == ben  # others are untouched
    assert custos.audit_verify() is None

    # The same files again: every row of hers is quarantined as suppressed, without values.
    for source, path, kind in (
        ("crm", files["crm"], None),
        ("shop", files["shop"], None),
        ("calls", files["calls"], Kind.INTERACTIONS),
        ("crm", files["consents"], Kind.CONSENTS),
    ):
        summary = custos.ingest(path, source, kind=kind)
        assert summary.stored == 0 and summary.quarantined >= 1
    suppressed = [q for q in custos.quarantine() if q["reason"] == SUPPRESSED_REASON]
    assert sorted((q["source"], q["line_no"]) for q in suppressed) == [
        ("calls", 2),
        ("crm", 2),
        ("crm", 2),
        ("crm", 6),
        ("shop", 2),
    ]
    assert all(q["record_id"] is None for q in suppressed)
    assert table_hits(custos, TRACES) == {}
    custos.resolve()
    with pytest.raises(NotFoundError):
        custos.find_profile(EMAIL)


def test_rows_not_resolved_yet_are_erased_only_when_they_are_the_persons(
    custos: Custos, tmp_path: Path
) -> None:
    load(custos, tmp_path)
    later = "record_id,first_name,last_name,email\nr8,,,ben@example.com\nr9,Carl,Miller,ben@example.com\n"
    custos.ingest(write(tmp_path / "later.csv", later), "crm")  # not resolved yet
    request = dsr.erase(custos, "ben@example.com")
    detail = request.step("erase").detail
    assert detail["shared_identifiers_kept"] == {"email": 1, "phone": 1}
    assert "email" not in detail["suppressed"]  # Carl may come back with that address
    with custos.store.read() as conn:
        left = set(conn.execute(select(t.raw_records.c.record_id)).scalars())
    assert "r9" in left and "r8" not in left and "r2" not in left


def test_suppression_holds_in_forked_ingestion_workers(custos: Custos, tmp_path: Path) -> None:
    files = load(custos, tmp_path)
    dsr.erase(custos, EMAIL)
    custos.settings = custos.settings.model_copy(update={"workers": 2, "batch_size": 2})
    summary = custos.ingest(files["crm"], "crm")
    assert (summary.stored, summary.duplicates, summary.quarantined) == (0, 3, 2)
    reasons = {q["line_no"]: q["reason"] for q in custos.quarantine(source="crm")}
    assert reasons == {2: SUPPRESSED_REASON, 6: SUPPRESSED_REASON}


def test_erasure_keeps_what_another_person_shares(custos: Custos, tmp_path: Path) -> None:
    files = load(custos, tmp_path)
    bea = custos.find_profile("bea@example.com")
    request = dsr.erase(custos, "ben@example.com")
    assert request.step("erase").detail["shared_identifiers_kept"] == {"phone": 1}
    assert "phone" not in request.step("erase").detail["suppressed"]
    shown = custos.profile(bea, purpose="customer_service")
    assert shown["identifiers"]["phone"] == ["+49402222222"]  # the family phone stays Bea's
    assert table_hits(custos, ["ben@example.com", "C-1002"]) == {}
    summary = custos.ingest(files["crm"], "crm")
    assert summary.quarantined == 2  # Ben suppressed, Quenby's row without id as before
    assert custos.find_profile("bea@example.com") == bea


def test_consent_recorded_after_an_erasure_is_not_missed(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path)
    quenby = custos.find_profile(EMAIL)
    dsr.erase(custos, "ben@example.com")  # Ben's grant was the newest event of the ledger
    custos.record_consent(EMAIL, purpose="marketing_email", status="withdrawn", source="crm")
    assert quenby not in {r["profile_id"] for r in custos.export_profiles("marketing_email")}


def test_every_table_is_erased_or_deliberately_kept() -> None:
    assert erasure.unclassified_tables() == []
    assert not set(erasure.ERASED) & set(erasure.KEPT)
    extra = Table("loyalty_scores", t.metadata, Column("id", Integer, primary_key=True))
    try:
        assert erasure.unclassified_tables() == ["loyalty_scores"]
        with pytest.raises(StoreError, match="loyalty_scores"):
            erasure.check_coverage()
    finally:
        t.metadata.remove(extra)


def test_a_failed_step_is_resumed_without_redoing_the_others(
    custos: Custos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(custos, tmp_path)
    real = erasure.purge

    def busy(store: Any, tables: Any) -> Any:
        raise StoreError("another connection is reading the store")

    monkeypatch.setattr(erasure, "purge", busy)
    with pytest.raises(dsr.RequestFailed, match="purge") as failed:
        dsr.erase(custos, EMAIL)
    assert "dsr resume" in str(failed.value)
    ref = dsr.listing(custos)[0]["request"]
    shown = dsr.show(custos, ref)
    assert shown["state"] == "failed"
    assert [s["state"] for s in shown["steps"]] == ["done", "failed", "pending"]
    assert shown["steps"][1]["detail"]["error"] == "StoreError"
    monkeypatch.setattr(erasure, "purge", real)
    resumed = dsr.resume(custos, ref)
    assert resumed.state == "done"
    assert resumed.step("erase").at == shown["steps"][0]["at"]  # not run again
    assert resumed.result["receipt"]["removed"]["raw_records"] == 3


def test_an_access_request_that_could_not_write_is_resumed(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path)
    blocker = write(tmp_path / "blocker", "a file where the folder should be")
    with pytest.raises(dsr.RequestFailed, match="report"):
        dsr.access(custos, EMAIL, output=blocker)
    ref = dsr.listing(custos, key=EMAIL)[0]["request"]
    assert dsr.show(custos, ref)["steps"][0]["state"] == "failed"
    done = dsr.resume(custos, ref, output=tmp_path / "out")
    assert done.state == "done" and all(Path(f).exists() for f in done.result["files"])


def test_the_secret_key_is_private_and_must_not_change(custos: Custos, tmp_path: Path) -> None:
    files = load(custos, tmp_path)
    key_file = Path(custos.settings.secret_key_file)
    assert not key_file.exists()  # ingestion reads no key while nothing is suppressed
    dsr.erase(custos, EMAIL)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(load_or_create_key(key_file)) == 32
    other = tmp_path / "other.key"
    load_or_create_key(other)
    custos.settings = custos.settings.model_copy(update={"secret_key_file": str(other)})
    with pytest.raises(ConfigError, match="not the one"):
        custos.ingest(files["crm"], "crm")
    os.chmod(other, 0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        load_or_create_key(other)


# -- restriction ------------------------------------------------------------------------------


def test_restriction_refuses_every_purpose_but_legal_obligation(
    custos: Custos, tmp_path: Path
) -> None:
    load(custos, tmp_path)
    quenby = custos.find_profile(EMAIL)
    assert quenby in {r["profile_id"] for r in custos.export_profiles("marketing_email")}
    dsr.restrict(custos, EMAIL, reason="contests accuracy")
    ben = custos.find_profile("ben@example.com")
    for purpose in ("customer_service", "marketing_email", "analytics", "fraud_prevention"):
        with pytest.raises(AccessDenied):
            custos.profile(quenby, purpose=purpose)
        exported = {r["profile_id"] for r in custos.export_profiles(purpose)}
        assert quenby not in exported and ben in exported  # Ben granted marketing e-mails
    assert custos.profile(quenby, purpose="legal_compliance")["golden"]
    assert quenby in {r["profile_id"] for r in custos.export_profiles("legal_compliance")}
    assert custos.consent(quenby)["profile_id"] == quenby  # consent management: legal obligation
    dsr.restrict(custos, EMAIL, lift=True)
    assert custos.profile(quenby, purpose="customer_service")["golden"]


def test_a_restriction_follows_a_merge(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path)
    cara = custos.find_profile("cara@example.com")
    quenby = custos.find_profile(EMAIL)
    dsr.restrict(custos, "cara@example.com")
    survivor = custos.merge(cara, quenby, reason="test")
    with pytest.raises(AccessDenied):
        custos.profile(survivor, purpose="customer_service")


# -- rectification ------------------------------------------------------------------------------


def test_rectification_is_a_new_provenance_entry_that_survives_resolution(
    custos: Custos, tmp_path: Path
) -> None:
    load(custos, tmp_path)
    request = dsr.rectify(custos, EMAIL, attribute="last_name", value="Xylander-Berg")
    assert request.state == "done" and request.step("rectify").detail["superseded_rows"] == 2

    def golden() -> dict[str, dict[str, Any]]:
        shown = custos.profile(EMAIL, purpose="customer_service")
        return {g["attribute"]: g for g in shown["golden"]}

    last = golden()["last_name"]
    assert (last["value"], last["source"], last["record_id"]) == (
        "Xylander-Berg",
        "rectification",
        request.ref,
    )
    custos.resolve(full=True)
    assert golden()["last_name"]["value"] == "Xylander-Berg"
    assert golden()["last_name"]["source"] == "rectification"
    with custos.store.read() as conn:
        kept = conn.execute(
            select(t.records.c.last_name).where(t.records.c.last_name == "Xylander")
        ).all()
        raw = conn.execute(select(t.raw_records.c.payload)).scalars().all()
    assert kept == []  # the wrong value is no longer used …
    assert any("Xylander" in p and "Xylander-Berg" not in p for p in raw)  # … but kept as sent

    new = dsr.rectify(custos, EMAIL, attribute="email", value="Q.Xylander@Example.NET")
    assert new.step("rectify").detail["identifier"] is True
    assert custos.find_profile("q.xylander@example.net") == custos.find_profile(EMAIL)
    assert "q.xylander" not in orjson.dumps(new.as_dict()).decode().lower()


def test_an_invalid_correction_fails_the_request_without_showing_the_value(
    custos: Custos, tmp_path: Path
) -> None:
    load(custos, tmp_path)
    with pytest.raises(dsr.RequestFailed, match="not valid") as failed:
        dsr.rectify(custos, EMAIL, attribute="email", value="not-an-address")
    assert "not-an-address" not in str(failed.value)
    shown = dsr.listing(custos, key=EMAIL)[0]
    assert shown["state"] == "failed" and shown["steps"][0]["detail"]["error"] == "InputError"


# -- access and portability ----------------------------------------------------------------------


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "section":
            self.ids.append(dict(attrs)["id"] or "")


def test_access_report_answers_what_is_done_with_the_data(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path)
    custos.profile(EMAIL, purpose="customer_service", actor="api-key-42")
    request = dsr.access(custos, EMAIL, output=tmp_path / "out")
    json_file, html_file = (Path(f) for f in request.result["files"])
    assert stat.S_IMODE(json_file.stat().st_mode) == 0o600
    report = orjson.loads(json_file.read_bytes())
    assert set(ACCESS_SECTIONS) <= set(report)
    held = {(a["attribute"], a["value"], a["source"]) for a in report["attributes"]}
    assert ("email", EMAIL, "shop") in held and ("note", "<script>alert(1)</script>", "crm") in held
    assert all(a["received_at"] for a in report["attributes"])
    assert report["interactions"][0]["text"] == "Asked about her order"
    assert report["consent"]["ledger"][0]["purpose"] == "marketing_email"
    purposes = {p["purpose"]: p for p in report["purposes"]}
    assert purposes["marketing_email"]["lawful_basis"] == "consent"
    assert purposes["marketing_email"]["uses_your_data_now"] is True
    assert purposes["personalization"]["uses_your_data_now"] is False
    assert "email" in purposes["marketing_email"]["your_fields_it_may_use"]
    assert [r["actor"] for r in report["recipients"]] == ["api-key-42"]
    assert report["retention"]["policy"] == custos.settings.retention_policy
    assert {s["source"] for s in report["sources"]} == {"crm", "shop", "calls"}
    assert report["merge_history"]["links"] and report["quarantine"][0]["line"] == 6
    page = html_file.read_text(encoding="utf-8")
    parser = _Sections()
    parser.feed(page)
    assert {"attributes", "consent", "purposes", "recipients", "retention"} <= set(parser.ids)
    assert "script" not in parser.tags and "&lt;script&gt;" in page


def test_access_report_of_a_demo_person_has_every_section(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", secret_key_file=str(tmp_path / "secret.key")
    )
    demo = run_demo(tmp_path / "demo", people=60, seed=3, settings=settings)
    assert demo.example is not None
    with Custos.open(str(demo.store), settings) as custos:
        request = dsr.access(custos, demo.example["profile_id"], output=tmp_path / "out")
    report = orjson.loads(Path(request.result["files"][0]).read_bytes())
    for section in ACCESS_SECTIONS:
        assert section in report, section
    assert len(report["attributes"]) > 5 and report["golden_record"]
    assert report["merge_history"]["links"]  # the demo's example has several records
    assert "demo" in {r["actor"] for r in report["recipients"]}
    assert len(report["purposes"]) == len(custos.taxonomy.purposes)
    page = Path(request.result["files"][1]).read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")


def test_portable_export_is_json_and_csv(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path)
    request = dsr.export(custos, EMAIL, output=tmp_path / "out")
    json_file, csv_file = (Path(f) for f in request.result["files"])
    data = orjson.loads(json_file.read_bytes())
    assert {r["record_id"] for r in data["records"]} == {"r1", "s1"}
    assert data["interactions"][0]["fields"]["text"] == "Asked about her order"
    assert data["consents"][0]["status"] == "granted"
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text(encoding="utf-8"))))
    assert {r["kind"] for r in rows} == {"records", "interactions", "consent"}
    assert any(r.get("email") == EMAIL for r in rows)


# -- the command line -------------------------------------------------------------------------


def test_cli_requests(store_url: str, tmp_path: Path, settings: Settings) -> None:
    runner = CliRunner(env={"CUSTOS_SECRET_KEY_FILE": settings.secret_key_file})

    def run(*args: str, code: int = 0, answer: str | None = None) -> str:
        result = runner.invoke(
            cli, ["--db", store_url, *args], input=answer, catch_exceptions=False
        )
        assert result.exit_code == code, result.output
        return result.output

    with Custos.open(store_url, settings) as custos:
        load(custos, tmp_path)
    out = run("dsr", "access", EMAIL, "--output", str(tmp_path / "out"))
    assert "done" in out and "access.html" in out
    run("dsr", "restrict", EMAIL, "--reason", "contests accuracy")
    assert "refused" in run("profile", "show", EMAIL, code=3)
    run("dsr", "restrict", EMAIL, "--lift")
    run("dsr", "rectify", EMAIL, "--attribute", "city", "--value", "Xantenhausen-Nord")
    run("dsr", "erase", EMAIL, code=1)  # no confirmation given
    assert "nothing erased" in run("dsr", "erase", EMAIL, code=1, answer="n\n")  # issue 17/11
    out = run("dsr", "erase", EMAIL, "--yes")
    assert "recipients" in out and "raw_records" in out
    listed = orjson.loads(run("dsr", "list", "--json"))
    assert [r["kind"] for r in listed] == ["erase", "rectify", "restrict", "restrict", "access"]
    ref = listed[0]["request"]
    assert orjson.loads(run("dsr", "show", ref, "--json"))["state"] == "done"
    assert "quenby" not in run("dsr", "show", ref).lower()
    assert "no profile" in run("dsr", "access", EMAIL, code=2)


def test_an_erasure_removes_what_a_failed_spark_run_left_in_the_engine_location(
    custos: Custos, tmp_path: Path
) -> None:
    """A failed Spark run keeps its snapshot (everyone's names and contacts) and scored pairs
    to resume from; an erasure removes them, so no copy of the person is left there."""
    load(custos, tmp_path)
    location = tmp_path / "engine"
    custos.settings = custos.settings.model_copy(update={"engine_location": str(location)})
    snapshot = location / "runs" / "a1b2c3" / "snapshot"
    snapshot.mkdir(parents=True)
    (snapshot / "part-0.parquet").write_bytes(b"ben@example.com")
    (location / "models" / "d4e5f6").mkdir(parents=True)
    request = dsr.erase(custos, "ben@example.com")
    assert request.step("purge").detail["engine_work_folders_removed"] == 2
    assert list((location / "runs").iterdir()) == [] and list((location / "models").iterdir()) == []
    # a location on a cluster's file system is named in the receipt, to be cleaned there
    custos.settings = custos.settings.model_copy(update={"engine_location": "hdfs://nn/custos"})
    request = dsr.erase(custos, "bea@example.com")
    assert request.step("purge").detail["engine_location_not_reached"] == "hdfs://nn/custos"
