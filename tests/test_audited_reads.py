"""An export stopped early is audited with what it handed out: a consumer that takes one row,
a pipe closed by `head`, a generator dropped half-way."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from custos.service import Custos
from custos.service.reads import entry_subjects
from custos.store import tables as t
from tests.conftest import write


def _crm(folder: Path, people: int) -> Path:
    lines = ["record_id,first_name,last_name,email"]
    lines += [f"r{i},Ann{i},Lee{i},ann{i}@example.com" for i in range(people)]
    # every tenth person twice (another record, the same e-mail): resolution has work to do
    lines += [f"d{i},Ann{i},Lee{i},ann{i}@example.com" for i in range(0, people, 10)]
    return write(folder / "crm.csv", "\n".join(lines) + "\n")


def _entries(app: Custos, action: str) -> list[tuple[list[str], dict[str, Any]]]:
    a = t.audit_log
    with app.store.read() as conn:
        rows = conn.execute(select(a.c.subjects, a.c.detail).where(a.c.action == action)).all()
    out = []
    for subjects, detail in rows:
        found = orjson.loads(detail) if isinstance(detail, str | bytes) else detail
        out.append((entry_subjects(subjects, found), found))
    return out


def test_a_stream_stopped_after_one_row_is_audited(custos: Custos, tmp_path: Path) -> None:
    custos.ingest(_crm(tmp_path, 5), "crm")
    custos.resolve()
    [first] = list(islice(custos.export_profiles("customer_service", actor="t"), 1))
    [(subjects, detail)] = _entries(custos, "export.profiles")
    assert subjects == [first["profile_id"]] and detail["count"] == 1
    assert "email" in detail["fields"]
    rows = list(islice(custos.xref(actor="t"), 2))
    [(_, xref)] = _entries(custos, "export.xref")
    assert len(rows) == 2 and xref["rows"] == 2
    # A generator never started hands out nothing and is not audited.
    custos.export_profiles("customer_service", actor="t")
    assert len(_entries(custos, "export.profiles")) == 1


def test_cli_export_piped_into_head_is_audited(tmp_path: Path) -> None:
    """`custos export profiles … | head -n 1`: the pipe closes after the first line, the
    export stops, and its audit entry names the profiles written before that."""
    db = str(tmp_path / "c.db")
    with Custos.open(db) as app:
        app.ingest(_crm(tmp_path, 1000), "crm")
        app.resolve()
    command = (
        f"{sys.executable} -c 'from custos.cli import main; main()' --db {db} "
        "export profiles --purpose customer_service | head -n 1"
    )
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, env=dict(os.environ), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1
    with Custos.open(db) as app:
        [(subjects, detail)] = _entries(app, "export.profiles")
    assert 1 <= len(subjects) < 1000 and detail["count"] == len(subjects)
    assert orjson.loads(done.stdout)["profile_id"] == subjects[0]
