"""The risk report of a release: figures on a tiny hand-computed table, and FILE.risk.json."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.settings import Settings
from custos.privacy.deid import Row
from custos.privacy.deid.risk import assess
from custos.service import Custos
from custos.service.release import release
from tests.test_release import load, settings  # noqa: F401 - the fixture


def test_risk_figures_on_a_hand_computed_table() -> None:
    # Released: group A (30s, F) = p1 p2 p3 with flu, flu, asthma; group B (40s, M) = p4 p5 with
    # asthma, asthma (p5 holds two rows, flu and asthma: weight 1/2 each).
    released = [
        Row("p1", ("30s", "F"), ("flu",)),
        Row("p2", ("30s", "F"), ("flu",)),
        Row("p3", ("30s", "F"), ("asthma",)),
        Row("p4", ("40s", "M"), ("asthma",)),
        Row("p5", ("40s", "M"), ("asthma",)),
        Row("p5", ("40s", "M"), ("flu",)),
    ]
    # The population adds one suppressed person to group B's signature and one elsewhere.
    population = [*released, Row("p6", ("40s", "M"), ("flu",)), Row("p7", ("90+", "F"), ("hd",))]
    risk = assess(released, ["finding"], population)
    assert (risk.persons, risk.groups) == (5, 2)
    assert risk.prosecutor_max == pytest.approx(1 / 2)
    assert risk.prosecutor_mean == pytest.approx((3 * (1 / 3) + 2 * (1 / 2)) / 5)  # 0.4
    assert risk.journalist_max == pytest.approx(1 / 3)  # B has 3 persons in the population
    assert risk.journalist_mean == pytest.approx(1 / 3)
    assert risk.marketer == pytest.approx(2 / 5)
    assert risk.unique_share == 0.0
    # Whole release: flu 2.5, asthma 2.5 of 5 → (0.5, 0.5). A: flu 2/3, asthma 1/3 → 1/6;
    # B: flu 0.5/2, asthma 1.5/2 → 0.25.
    assert risk.t_closeness == {"finding": pytest.approx(0.25)}
    assert (risk.suppressed_persons, risk.suppressed_share) == (2, pytest.approx(2 / 7))


def test_a_unique_person_is_certain_for_the_prosecutor() -> None:
    released = [Row("p1", ("30s",), ("flu",)), Row("p2", ("40s",), ("flu",))]
    risk = assess(released, ["finding"])
    assert risk.prosecutor_max == 1.0 and risk.unique_share == 1.0 and risk.marketer == 1.0
    assert risk.suppressed_persons == 0 and risk.t_closeness == {"finding": 0.0}


def test_every_release_writes_its_risk_report(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path)
    out = tmp_path / "r.csv"
    report = release(
        custos,
        purpose="clinical_research",
        quasi_identifiers=["age", "sex", "postcode"],
        sensitive=["finding"],
        k=5,
        l_div=2,
        output=out,
        source="clinic",
        max_suppression=0.1,
    )
    path = out.with_name("r.csv.risk.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = orjson.loads(path.read_bytes())
    assert written["release"] == report.release_id
    assert written["persons"] == report.persons == report.risk["persons"]
    assert written["prosecutor_max"] <= 1 / 5  # k=5 holds
    assert written["unique_share"] == 0.0
    assert written["suppressed_persons"] == report.suppressed_persons


def test_the_cli_shows_the_risk_and_json_carries_it(
    store_url: str,
    tmp_path: Path,
    settings: Settings,  # noqa: F811 - the fixture
) -> None:
    with Custos.open(store_url, settings) as custos:
        load(custos, tmp_path)
    env = {"CUSTOS_SECRET_KEY_FILE": settings.secret_key_file, "CUSTOS_TAXONOMY": settings.taxonomy}
    args = ["--db", store_url, "release", "--purpose", "clinical_research", "-q", "age,sex"]
    args += ["-s", "finding", "--source", "clinic", "--output", str(tmp_path / "r.csv")]
    result = CliRunner(env=env).invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "prosecutor" in result.output and "t-closeness finding" in result.output
    result = CliRunner(env=env).invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert orjson.loads(result.stdout)["risk"]["marketer"] > 0
