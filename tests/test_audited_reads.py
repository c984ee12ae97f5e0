"""An export stopped early is audited with what it handed out: a consumer that takes one row,
a pipe closed by `head`, a generator dropped half-way."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from custos.api.app import create_app
from custos.core.errors import AccessDenied
from custos.service import Custos, api_reads, insight, keys
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


def _consume(rows: Iterator[dict[str, Any]], taken: list[str], fail_at: int) -> None:
    """A consumer that writes rows and fails (a full disk, say) at the ``fail_at``-th."""
    for n, row in enumerate(rows):
        taken.append(row["profile_id"])
        if n == fail_at:
            raise OSError("no space left on device")


def test_an_export_failing_mid_stream_is_audited(custos: Custos, tmp_path: Path) -> None:
    """The consumer raises after the third row: the entry names exactly those three."""
    custos.ingest(_crm(tmp_path, 8), "crm")
    custos.resolve()
    taken: list[str] = []
    with contextlib.suppress(OSError):  # the traceback, and the stopped export, go with it
        _consume(custos.export_profiles("customer_service", actor="t"), taken, 2)
    [(subjects, detail)] = _entries(custos, "export.profiles")
    assert len(taken) == 3 and subjects == taken and detail["count"] == 3


def test_refused_reads_are_audited_as_refused(custos: Custos, tmp_path: Path) -> None:
    """No lawful basis: one profile, the mood, the sentiment export and a listing filtered by a
    hidden field are each refused and audited as refused (no subjects)."""
    custos.ingest(_crm(tmp_path, 3), "crm")
    custos.resolve()
    [pid, *_] = [row["profile_id"] for row in custos.export_profiles("customer_service", actor="t")]
    with pytest.raises(AccessDenied):
        custos.profile(pid, purpose="marketing_email", actor="t")
    with pytest.raises(AccessDenied):
        insight.mood(custos, pid, purpose="marketing_email", actor="t")
    with pytest.raises(AccessDenied):
        insight.export_interactions(custos, "marketing_email", actor="t")
    with pytest.raises(AccessDenied):
        api_reads.profile_page(
            custos, "customer_service", actor="t", limit=5, where={"no_such_field": "x"}
        )
    for action in ("profile.show", "insight.mood", "export.interactions", "profile.list"):
        [(subjects, detail)] = _entries(custos, action)
        assert subjects == [] and detail["count"] == 0, action
    [(_, shown)] = _entries(custos, "profile.show")
    assert shown["refused"] == 1


def test_each_api_read_is_audited_once(tmp_path: Path) -> None:
    """Every REST read of a person, shown or refused, leaves exactly one audit entry."""
    with Custos.open(str(tmp_path / "c.db")) as app:
        app.ingest(_crm(tmp_path, 3), "crm")
        app.resolve()
        key = keys.create(app, "desk", ["customer_service", "marketing_email"])
        client = TestClient(create_app(app))
        pid = next(iter(app.xref()))[2]
        headers = {"Authorization": f"Bearer {key}"}
        reads = [
            ("get", f"/v1/profiles/{pid}?purpose=customer_service", 200, "profile.show"),
            ("get", f"/v1/profiles/{pid}?purpose=marketing_email", 404, "profile.show"),
            ("get", f"/v1/profiles/{pid}/interactions?purpose=customer_service", 200, None),
            ("get", f"/v1/profiles/{pid}/sentiment?purpose=marketing_email", 404, None),
            ("get", "/v1/profiles?purpose=customer_service&limit=2", 200, "profile.list"),
            ("post", "/v1/profiles/lookup?purpose=customer_service", 200, "profile.show"),
        ]
        for method, url, status, action in reads:
            before = _count(app)
            body = {"json": {"email": "ann1@example.com"}} if method == "post" else {}
            answer = client.request(method.upper(), url, headers=headers, **body)
            assert answer.status_code == status, (url, answer.text)
            assert _count(app) == before + 1, url
            if action is not None:
                assert _last_action(app) == action, url


def _count(app: Custos) -> int:
    with app.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.audit_log)).scalar_one())


def _last_action(app: Custos) -> str:
    a = t.audit_log
    with app.store.read() as conn:
        return str(conn.execute(select(a.c.action).order_by(a.c.id.desc()).limit(1)).scalar())
