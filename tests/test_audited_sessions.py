"""Reads that go through one guard session: a segment attribute the purpose may not see is
refused and audited (trend, impact and segment members alike, each under its own action,
naming the attribute and nothing else); an aggregate release whose file cannot be written is
registered and audited, with the persons it counted."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from custos.core.errors import AccessDenied
from custos.service import Custos, insight
from custos.service.aggregate import aggregate
from custos.store import releases as register
from custos.store import tables as t
from tests.test_release import load
from tests.test_release import settings as settings  # the research purpose, a key of its own


def _entries(app: Custos) -> list[tuple[str, str, dict[str, Any]]]:
    log = t.audit_log
    with app.store.read() as conn:
        rows = conn.execute(select(log.c.action, log.c.purpose, log.c.detail)).all()
    return [
        (action, purpose, orjson.loads(detail) if isinstance(detail, str | bytes) else detail)
        for action, purpose, detail in rows
    ]


def test_grouping_by_a_hidden_field_is_refused_and_audited(custos: Custos) -> None:
    with pytest.raises(AccessDenied, match="last_name"):
        insight.trend(custos, "last_name", actor="t")  # analytics may not see identity
    with pytest.raises(AccessDenied, match="last_name"):
        insight.impact(custos, date(2024, 1, 1), by="last_name", actor="t")
    refusals = [
        (action, purpose, d["refused"], d["count"], d["fields"])
        for action, purpose, d in _entries(custos)
    ]
    assert refusals == [
        ("insight.trend", "analytics", 1, 0, ["last_name"]),
        ("insight.impact", "analytics", 1, 0, ["last_name"]),
    ]


def test_a_segment_by_a_hidden_field_is_refused_and_audited(custos: Custos) -> None:
    insight.create_segment(custos, "lees", "last_name = 'Lee'")
    with pytest.raises(AccessDenied, match="last_name"):
        insight.segment_members(custos, "lees", purpose="analytics", actor="t")
    [(action, purpose, detail)] = _entries(custos)
    assert (action, purpose) == ("insight.segment", "analytics")
    assert detail["refused"] == 1 and detail["fields"] == ["last_name"]


def test_a_field_the_purpose_may_see_leaves_no_refusal(custos: Custos) -> None:
    insight._check_by(custos, "country", "analytics", actor="t", action="insight.trend")
    assert _entries(custos) == []


def test_an_aggregate_release_that_cannot_be_written_is_registered_and_audited(
    custos: Custos, tmp_path: Path
) -> None:
    load(custos, tmp_path, people=200)
    blocked = tmp_path / "a-folder.csv"
    blocked.mkdir()  # a folder where the file should go: the write fails
    with pytest.raises(OSError):
        aggregate(
            custos,
            purpose="clinical_research",
            quasi_identifiers=["sex"],
            sensitive=["finding"],
            output=blocked,
            source="clinic",
            reference_date=date(2026, 1, 1),
        )
    with custos.store.read() as conn:
        [entry] = register.entries(conn, "clinical_research", kind=None)
    [(action, purpose, detail)] = [e for e in _entries(custos) if e[0].startswith("release")]
    assert (action, purpose) == ("release", "clinical_research")
    assert detail["kind"] == "aggregate" and detail["release"] == entry.id
    assert detail["count"] == len(entry.persons) > 0
