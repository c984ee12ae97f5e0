"""Trend and event-impact statistics: a planted change is found, noise is not flagged."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from custos.insight.stats import Observation, holm, impact, trend, week_of

EVENT = date(2026, 6, 1)


def _observations(drop: dict[str, float], seed: int = 3) -> list[Observation]:
    rng = random.Random(seed)
    out = []
    for seg in ("DE", "FR", "IT", "ES", "NL"):
        for person in range(60):
            for _ in range(rng.randint(1, 4)):  # several interactions of one person
                day = rng.randint(-60, 59)
                at = datetime(2026, 6, 1, 12, tzinfo=UTC) + timedelta(days=day)
                shift = drop.get(seg, 0.0) if day >= 0 else 0.0
                score = max(-1.0, min(1.0, rng.gauss(0.2 + shift, 0.35)))
                out.append(Observation(seg, (seg, person), at, score))
    return out


def test_a_planted_drop_is_found_with_the_right_sign_and_nothing_else_is_flagged() -> None:
    result = impact(_observations({"FR": -0.4}), EVENT, window_days=60)
    flagged = [s for s in result if s.significant]
    assert [s.segment for s in flagged] == ["FR"]
    fr = flagged[0]
    assert fr.delta < -0.25 and fr.ci_high < 0 < 0.5 + fr.ci_low
    assert fr.did < -0.25  # its own drop, not one every segment shares
    assert result[0].segment == "FR"  # sorted by effect
    assert all(s.n_before <= 60 and s.n_after <= 60 for s in result)  # persons, not rows


def test_no_change_flags_nothing_across_seeds() -> None:
    false_flags = sum(
        s.significant
        for seed in range(8)
        for s in impact(_observations({}, seed=seed), EVENT, rounds=500, seed=seed)
    )
    assert false_flags <= 1  # Holm keeps the family-wise error near 5% per run


def test_a_shared_drop_shows_in_delta_but_not_in_the_difference_in_differences() -> None:
    result = impact(_observations({s: -0.3 for s in ("DE", "FR", "IT", "ES", "NL")}), EVENT)
    assert all(s.delta < -0.15 for s in result)
    assert all(abs(s.did) < 0.15 for s in result)


def test_small_segments_are_not_tested() -> None:
    obs = [Observation("tiny", i, datetime(2026, 5, 20 + i, tzinfo=UTC), -0.5) for i in range(3)]
    obs += [Observation("tiny", 9, datetime(2026, 6, 5, tzinfo=UTC), 0.9)]
    (only,) = impact(obs, EVENT)
    assert not only.significant and only.p_value == 1.0


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]


def test_weekly_trend_counts_persons_and_interactions() -> None:
    obs = _observations({"FR": -0.4})
    points = trend(obs)
    assert {p.period.weekday() for p in points} == {0}
    assert sum(p.interactions for p in points) == len(obs)
    fr_after = [
        p for p in points if p.segment == "FR" and p.period >= week_of(datetime(2026, 6, 8))
    ]
    fr_before = [
        p for p in points if p.segment == "FR" and p.period < week_of(datetime(2026, 5, 25))
    ]
    assert sum(p.mean for p in fr_after) / len(fr_after) < sum(p.mean for p in fr_before) / len(
        fr_before
    )
    assert all(p.ci_low <= p.mean <= p.ci_high and p.persons <= p.interactions for p in points)
