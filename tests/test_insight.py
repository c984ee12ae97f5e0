"""Insight on the synthetic company: scoring, the planted event, trends, moods and segments —
every read through the consent guard."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.errors import AccessDenied, InputError
from custos.core.fields import Kind
from custos.service import Custos, insight
from custos.store import tables as t
from custos.synthetic import generate_company
from custos.synthetic.interactions import PLANTED_EVENT


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scored synthetic company (SQLite; built once for this module)."""
    root = tmp_path_factory.mktemp("insight")
    manifest = generate_company(root / "co", people=1500, seed=11)
    db = root / "c.db"
    with Custos.open(str(db)) as app:
        order = {"records": 0, "interactions": 1, "consents": 2}
        for silo in sorted(manifest.files, key=lambda f: order[f.kind]):
            app.ingest(silo.path, silo.source, kind=Kind(silo.kind), map_path=silo.map_path)
        app.resolve()
        summary = insight.score(app, engine="lexicon")
        assert summary.scored > 1000
    return db


def test_the_planted_drop_is_found_and_nothing_else_is_flagged(company: Path) -> None:
    with Custos.open(str(company)) as app:
        result = insight.impact(
            app, PLANTED_EVENT[0], window_days=120, by="country", channel="social"
        )
    flagged = [s for s in result if s.significant]
    assert [s.segment for s in flagged] == [PLANTED_EVENT[1]]
    assert flagged[0].delta < -0.2 and flagged[0].ci_high < 0


def test_scoring_twice_scores_nothing_and_a_new_engine_rescores(company: Path) -> None:
    with Custos.open(str(company)) as app:
        assert insight.score(app, engine="lexicon").scored == 0
        with app.store.read() as conn:
            total = conn.execute(
                select(func.count()).select_from(t.interaction_sentiment)
            ).scalar_one()
        assert insight.score(app, engine="fake").scored == total  # other engine: all again
        assert insight.score(app, engine="fake").scored == 0
        insight.score(app, engine="lexicon")


def test_trend_by_week_with_a_chart(company: Path, tmp_path: Path) -> None:
    chart = tmp_path / "trend.svg"
    with Custos.open(str(company)) as app:
        points = insight.trend(app, "country", chart=chart)
    assert points and all(p.period.weekday() == 0 for p in points)
    assert chart.read_text().lstrip().startswith("<?xml")


def test_grouping_by_a_field_the_purpose_may_not_see_is_refused(company: Path) -> None:
    with Custos.open(str(company)) as app, pytest.raises(AccessDenied, match="last_name"):
        insight.trend(app, "last_name")  # analytics may not see identity


def test_mood_of_a_profile_and_refusal_for_another_purpose(company: Path) -> None:
    with Custos.open(str(company)) as app:
        obs, _ = insight.observations(app, "country", "analytics", actor="test")
        pid = str(obs[0].person)  # a profile analytics may use, with scored interactions
        report = insight.mood(app, pid)
        assert report["timeline"] and -1 <= report["mood"] <= 1
        with pytest.raises(AccessDenied):
            insight.mood(app, pid, purpose="marketing_email")


def test_segments_select_by_rule_and_export_only_what_the_purpose_may_see(company: Path) -> None:
    with Custos.open(str(company)) as app:
        insight.create_segment(app, "young_de", "country = 'DE' and age_band in ('20-29', '30-39')")
        with pytest.raises(InputError, match="exists"):
            insight.create_segment(app, "young_de", "country = 'DE'")
        with pytest.raises(InputError, match="unknown field"):
            insight.create_segment(app, "bad", "income > 3")
        rows = insight.segment_members(app, "young_de", purpose="analytics")
        assert rows and all(
            r["country"] == "DE" and r["age_band"] in ("20-29", "30-39") for r in rows
        )
        assert not any("last_name" in r or "email" in r or "date_of_birth" in r for r in rows)
        with pytest.raises(AccessDenied):
            insight.segment_members(app, "young_de", purpose="marketing_email")


def test_cli_impact_json_contract(company: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--db", str(company), "insight", "impact", "--date", PLANTED_EVENT[0].isoformat(),
         "--window", "120d", "--by", "country", "--format", "json", "--channel", "social"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    keys = {"segment", "n_before", "n_after", "mean_before", "mean_after", "delta", "ci_low",
            "ci_high", "p_value", "significant"}  # fmt: skip
    assert all(keys <= set(r) for r in rows)
    assert [r["segment"] for r in rows if r["significant"]] == [PLANTED_EVENT[1]]
    assert date.fromisoformat(PLANTED_EVENT[0].isoformat()) == PLANTED_EVENT[0]


def test_analyses_score_texts_nobody_has_scored_yet(tmp_path: Path) -> None:
    """An impact analysis right after ingestion works: it scores what it needs first."""
    from custos.core.settings import Settings

    manifest = generate_company(tmp_path / "co", people=300, seed=3)
    db = str(tmp_path / "fresh.db")
    with Custos.open(db, Settings(db=db, sentiment_engine="lexicon")) as app:
        order = {"records": 0, "interactions": 1, "consents": 2}
        for silo in sorted(manifest.files, key=lambda f: order[f.kind]):
            app.ingest(silo.path, silo.source, kind=Kind(silo.kind), map_path=silo.map_path)
        app.resolve()
        points = insight.trend(app, "country")
        assert points and sum(p.interactions for p in points) > 100
        with app.store.read() as conn:
            engines = set(conn.execute(select(t.interaction_sentiment.c.engine)).scalars())
        assert engines == {"lexicon"}
        assert insight.score(app, missing_only=True).scored == 0


def test_cli_impact_says_too_few_texts_instead_of_nan_and_uses_the_longest_window(
    company: Path,
) -> None:
    """Issue 17 item 7: small segments printed `+nan … +nan`; the default window was 60 days."""
    result = CliRunner().invoke(
        cli,
        ["--db", str(company), "insight", "impact", "--date", PLANTED_EVENT[0].isoformat(),
         "--channel", "social"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "nan" not in result.output
    assert "too few texts (" in result.output
    with Custos.open(str(company)) as app:
        rows = insight.impact(app, PLANTED_EVENT[0], by="country", channel="social")
        obs, _ = insight.observations(app, "country", "analytics", actor="test", channel="social")
    window = rows[0].window_days
    first = min(o.at.date() for o in obs)
    last = max(o.at.date() for o in obs)
    assert window == min(180, (PLANTED_EVENT[0] - first).days, (last - PLANTED_EVENT[0]).days + 1)
    assert window > 60  # the data allow more than the old default
    assert f"sentiment {window} days before and after" in result.output
    small = [s for s in rows if not s.tested]
    assert small and all(min(s.n_before, s.n_after) < 10 for s in small)
    assert [s.segment for s in rows if s.significant] == [PLANTED_EVENT[1]]


def test_trend_intervals_stay_inside_the_score_range() -> None:
    """Issue 17 item 7: a normal interval of a few persons near -1 left [-1, 1]."""
    from datetime import UTC, datetime

    from custos.insight import stats

    at = datetime(2026, 3, 2, tzinfo=UTC)
    obs = [stats.Observation("DE", p, at, s) for p, s in enumerate((-1.0, -1.0, -0.9, -0.6))]
    obs += [stats.Observation("AT", 9, at, 0.95)]
    for p in stats.trend(obs):
        assert -1 <= p.ci_low <= p.mean <= p.ci_high <= 1
    de = next(p for p in stats.trend(obs) if p.segment == "DE")
    assert de.ci_low == -1.0 and de.ci_high < -0.6


def test_cli_trend_writes_a_chart_only_when_asked(
    company: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17 item 7: `insight trend` wrote sentiment-trend.svg into the current folder."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--db", str(company), "insight", "trend", "--by", "country"])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == [] and "chart:" not in result.output
    chart = tmp_path / "c.svg"
    args = ["--db", str(company), "insight", "trend", "--by", "country", "--chart", str(chart)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert chart.exists() and f"chart: {chart}" in result.output
