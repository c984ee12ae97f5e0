"""Aggregate releases: noisy counts per group, never negative, ε registered against the
purpose's budget; a release past the budget is refused, audited, JSON with --json."""

from __future__ import annotations

import csv
import math
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.errors import ConfigError
from custos.core.settings import Settings
from custos.privacy.deid.noise import alpha, noisy_counts, threshold
from custos.service import Custos
from custos.service.aggregate import aggregate
from custos.store import tables as t
from tests.test_release import load
from tests.test_release import settings as settings  # the research purpose, a key of its own


def test_noise_is_discrete_laplace_and_small_counts_are_not_listed() -> None:
    rng = np.random.default_rng(3)
    counts = {(str(i),): 1000 for i in range(4000)}
    noisy = noisy_counts(counts, epsilon=1.0, sensitivity=1, rng=rng)
    errors = [noisy.counts[c] - 1000 for c in counts]
    a = alpha(1.0, 1)
    assert abs(float(np.mean(np.abs(errors))) - 2 * a / (1 - a * a)) < 0.05  # E|X| = 2α/(1-α²)
    assert abs(float(np.mean(errors))) < 0.1 and any(errors)
    assert threshold(1.0, 1) == 15 and threshold(0.5, 1) > threshold(1.0, 1)
    # (seeded: a group of three shows when its noise is 12 or more, about once in 200,000
    # draws; 4,000 unseeded groups made this test fail about once in 150 runs)
    small = noisy_counts(
        {(str(i),): i % 4 for i in range(4000)}, epsilon=1.0, sensitivity=1, rng=rng
    )
    assert not small.counts  # a group of a few persons (or none) never shows, nor goes below 0
    big = noisy_counts({("a",): 40, ("b",): 0}, epsilon=1.0, sensitivity=1, rng=rng)
    assert all(v >= big.threshold > 0 for v in big.counts.values())


def exact_counts(files: dict[str, Path]) -> Counter[tuple[str, str]]:
    """Consenting patients per (sex, finding), each once per finding (the test's own count)."""
    with files["persons"].open(encoding="utf-8") as handle:
        sex = {r["email"]: r["sex"] for r in csv.DictReader(handle)}
    with files["consents"].open(encoding="utf-8") as handle:
        consenting = {r["email"] for r in csv.DictReader(handle)}
    with files["visits"].open(encoding="utf-8") as handle:
        held = {(r["email"], r["finding"]) for r in csv.DictReader(handle)}
    return Counter((sex[e], f) for e, f in held if e in consenting)


def test_aggregate_counts_are_noisy_and_registered(custos: Custos, tmp_path: Path) -> None:
    files = load(custos, tmp_path, people=400)
    out = tmp_path / "agg.csv"
    report = aggregate(
        custos,
        purpose="clinical_research",
        quasi_identifiers=["sex"],
        sensitive=["finding"],
        output=out,
        epsilon=1.0,
        source="clinic",
        per_person=4,  # up to four findings each: every one counts, sensitivity 4
        reference_date=date(2026, 1, 1),
        rng=np.random.default_rng(7),
    )
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    truth = exact_counts(files)
    released = {(r["sex"], r["finding"]): int(r["count"]) for r in rows}
    assert set(released) <= set(truth) and len(released) >= 8
    assert all(v >= report.noise["threshold"] for v in released.values())
    assert any(released[c] != truth[c] for c in released)  # noised
    assert all(abs(released[c] - truth[c]) < 60 for c in released)  # and still useful
    meta = orjson.loads(Path(report.metadata).read_bytes())
    assert meta["kind"] == "aggregate" and meta["epsilon"] == 1.0 and meta["sensitivity"] == 4
    assert meta["budget"] == {"epsilon": 3.0, "spent": 1.0, "left": 2.0}
    assert "persons" not in meta  # an exact count of persons is not noised: not released
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_cli_aggregate_budget_is_spent_and_then_refused(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    with Custos.open(store_url, settings) as custos:
        load(custos, tmp_path, people=200)
    runner = CliRunner(
        env={
            "CUSTOS_SECRET_KEY_FILE": settings.secret_key_file,
            "CUSTOS_TAXONOMY": settings.taxonomy or "",
            "CUSTOS_RELEASE_EPSILON_BUDGET": "1.5",
        }
    )
    args = ["--db", store_url, "release", "--aggregate", "-p", "clinical_research", "-q", "age"]
    args += ["--level", "age=3", "-s", "finding", "--source", "clinic", "-o"]
    result = runner.invoke(cli, [*args, str(tmp_path / "a.csv"), "--json"])
    assert result.exit_code == 0, result.output
    made = orjson.loads(result.stdout)
    assert made["epsilon"] == 1.0 and made["epsilon_left"] == 0.5
    header = (tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "age,finding,count"
    # ε=1 more would spend 2 of 1.5: refused, counts only, audited, nothing written.
    result = runner.invoke(cli, [*args, str(tmp_path / "b.csv"), "--json"])
    assert result.exit_code == 1, result.output
    refusal = orjson.loads(result.stdout)
    assert refusal["refused"] is True and refusal["counts"]["epsilon_left"] == 0.5
    assert not (tmp_path / "b.csv").exists() and not (tmp_path / "b.csv.meta.json").exists()
    result = runner.invoke(cli, [*args, str(tmp_path / "b.csv")])
    assert result.exit_code == 1 and "refused" in result.output and "0.5 is left" in result.output
    result = runner.invoke(cli, [*args, str(tmp_path / "c.csv"), "--epsilon", "0.5"])
    assert result.exit_code == 0, result.output
    assert "0 left" in result.output
    result = runner.invoke(cli, [*args, str(tmp_path / "d.csv"), "--linkable"])
    assert result.exit_code == 2 and "row releases" in result.output
    listed = runner.invoke(cli, ["--db", store_url, "release", "list", "--json"])
    entries = orjson.loads(listed.stdout)
    assert [(e["kind"], e["epsilon"]) for e in entries] == [("aggregate", 1.0), ("aggregate", 0.5)]
    assert math.isclose(entries[-1]["epsilon_spent"], 1.5) and entries[-1]["epsilon_left"] == 0
    shown = runner.invoke(cli, ["--db", store_url, "release", "list"])
    assert "ε spent / left 1.5 / 0" in shown.stdout
    with Custos.open(store_url, settings) as custos, custos.store.read() as conn:
        audit = conn.execute(select(t.audit_log.c.action, t.audit_log.c.detail)).all()
    refused = [d for a, d in audit if a == "release_refused"]
    assert len(refused) == 2 and all('"epsilon_left":0.5' in (d or "") for d in refused)


def test_aggregate_refuses_direct_identifiers_and_a_level_out_of_range(
    custos: Custos, tmp_path: Path
) -> None:
    load(custos, tmp_path)
    common = {"purpose": "clinical_research", "output": tmp_path / "x.csv", "source": "clinic"}
    for qis, levels, message in (
        (["email"], {}, "direct identifiers"),
        (["age"], {"age": 9}, "levels 0-"),
        (["age"], {"sex": 1}, "not a quasi-identifier"),
    ):
        with pytest.raises(ConfigError, match=message):
            aggregate(custos, quasi_identifiers=qis, levels=levels, **common)  # type: ignore[arg-type]
    assert not (tmp_path / "x.csv").exists()
