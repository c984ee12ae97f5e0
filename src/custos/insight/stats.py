"""Statistics of sentiment over time: weekly trends per segment and the impact of an event.

Pure functions over observations (segment, person, time, score); the service layer reads them
through the consent guard. The unit of analysis is the person, not the interaction: one angry
customer who calls ten times is one voice, so scores are averaged per person and period before
segments are compared (interactions of one person are not independent).

Impact of an event: per segment, the persons' mean score in a window before the date against
the window after it; the confidence interval of the difference is a bootstrap percentile
interval, the p-value a two-sided permutation test, and the p-values of all segments are
adjusted together (Holm) so that testing many segments does not flag some by chance. Each
segment's change is also shown against the others' (difference in differences), so a drop that
every segment shares is told apart from one that is the segment's own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

MAX_WINDOW_DAYS = 180  # the longest default window of an impact analysis, each side


@dataclass(frozen=True, slots=True)
class Observation:
    """One scored interaction: its segment, its person, when, and the sentiment score."""

    segment: str
    person: Hashable
    at: datetime
    score: float


@dataclass(frozen=True)
class SegmentImpact:
    """How one segment's sentiment changed across the event date."""

    segment: str
    n_before: int
    n_after: int
    mean_before: float
    mean_after: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    did: float  # the change minus the change of all other segments (difference in differences)
    window_days: int  # days on each side of the event date
    tested: bool  # enough persons on both sides to test (``min_persons``)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class TrendPoint:
    """One segment in one period: how many spoke, how they felt, how sure we are."""

    segment: str
    period: date
    interactions: int
    persons: int
    mean: float
    ci_low: float
    ci_high: float
    share_negative: float


def _person_means(observations: Iterable[Observation]) -> dict[str, dict[Hashable, float]]:
    sums: dict[str, dict[Hashable, list[float]]] = defaultdict(lambda: defaultdict(list))
    for o in observations:
        sums[o.segment][o.person].append(o.score)
    return {
        seg: {p: float(np.mean(v)) for p, v in persons.items()} for seg, persons in sums.items()
    }


def _permutation_p(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, rounds: int) -> float:
    """Two-sided permutation test of a difference in means."""
    observed = abs(b.mean() - a.mean())
    pooled = np.concatenate([a, b])
    n = len(a)
    hits = 0
    for start in range(0, rounds, 500):
        k = min(500, rounds - start)
        idx = np.argsort(rng.random((k, len(pooled))), axis=1)
        shuffled = pooled[idx]
        diff = np.abs(shuffled[:, n:].mean(axis=1) - shuffled[:, :n].mean(axis=1))
        hits += int((diff >= observed - 1e-12).sum())
    return (hits + 1) / (rounds + 1)


def _bootstrap_ci(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, rounds: int, level: float
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(b) - mean(a), resampling persons."""
    ma = a[rng.integers(0, len(a), (rounds, len(a)))].mean(axis=1)
    mb = b[rng.integers(0, len(b), (rounds, len(b)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(mb - ma, [tail, 100 - tail])
    return float(low), float(high)


def _bootstrap_mean_ci(
    values: np.ndarray, rng: np.random.Generator, rounds: int, level: float
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling persons: it stays inside the range
    of the values (a score's [-1, 1]), where mean ± 1.96 standard errors would not."""
    if len(values) < 2:
        return float(values[0]), float(values[0])
    means = values[rng.integers(0, len(values), (rounds, len(values)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def longest_window(
    observations: Iterable[Observation], event: date, *, cap: int = MAX_WINDOW_DAYS
) -> int:
    """The longest window (days) before and after ``event`` that the observations cover on both
    sides, at most ``cap``: a short default hides a drop in a small segment."""
    first = last = None
    for o in observations:
        day = o.at.date()
        first = day if first is None or day < first else first
        last = day if last is None or day > last else last
    if first is None or last is None or first >= event or last < event:
        return cap
    return max(1, min(cap, (event - first).days, (last - event).days + 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (controls the chance of any false flag)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def impact(
    observations: Iterable[Observation],
    event: date,
    *,
    window_days: int | None = None,
    alpha: float = 0.05,
    min_persons: int = 10,
    rounds: int = 2000,
    seed: int = 0,
) -> list[SegmentImpact]:
    """Sentiment per segment before vs after ``event``, sorted by effect (largest drop first).

    Segments with fewer than ``min_persons`` persons on either side are reported with no
    test (p = 1, not significant, ``tested`` false): too few voices to tell a change from noise.
    ``window_days`` defaults to :func:`longest_window`.
    """
    observations = list(observations)
    if window_days is None:
        window_days = longest_window(observations, event)
    rng = np.random.default_rng(seed)
    start = datetime.combine(event - timedelta(days=window_days), datetime.min.time())
    middle = datetime.combine(event, datetime.min.time())
    end = datetime.combine(event + timedelta(days=window_days), datetime.min.time())
    before: list[Observation] = []
    after: list[Observation] = []
    for o in observations:
        at = o.at.replace(tzinfo=None)
        if start <= at < middle:
            before.append(o)
        elif middle <= at < end:
            after.append(o)
    pb, pa = _person_means(before), _person_means(after)
    segments = sorted(set(pb) | set(pa))
    rows: list[dict[str, Any]] = []
    for seg in segments:
        a = np.array(list(pb.get(seg, {}).values()), dtype=float)
        b = np.array(list(pa.get(seg, {}).values()), dtype=float)
        row: dict[str, Any] = {
            "segment": seg,
            "n_before": len(a),
            "n_after": len(b),
            "mean_before": float(a.mean()) if len(a) else math.nan,
            "mean_after": float(b.mean()) if len(b) else math.nan,
        }
        row["delta"] = row["mean_after"] - row["mean_before"]
        row["tested"] = len(a) >= min_persons and len(b) >= min_persons
        if row["tested"]:
            row["ci_low"], row["ci_high"] = _bootstrap_ci(a, b, rng, rounds, 1 - alpha)
            row["p_raw"] = _permutation_p(a, b, rng, rounds)
        else:
            row["ci_low"], row["ci_high"], row["p_raw"] = math.nan, math.nan, 1.0
        rows.append(row)
    adjusted = holm([r["p_raw"] for r in rows])
    out: list[SegmentImpact] = []
    for row, p in zip(rows, adjusted, strict=True):
        others = [r for r in rows if r is not row and not math.isnan(r["delta"])]
        weight = sum(r["n_before"] + r["n_after"] for r in others)
        rest = (
            sum(r["delta"] * (r["n_before"] + r["n_after"]) for r in others) / weight
            if weight
            else 0.0
        )
        delta = row["delta"]
        out.append(
            SegmentImpact(
                segment=row["segment"],
                n_before=row["n_before"],
                n_after=row["n_after"],
                mean_before=row["mean_before"],
                mean_after=row["mean_after"],
                delta=delta,
                ci_low=row["ci_low"],
                ci_high=row["ci_high"],
                p_value=p,
                significant=p < alpha,
                did=delta - rest if not math.isnan(delta) else math.nan,
                window_days=window_days,
                tested=row["tested"],
            )
        )
    out.sort(key=lambda s: (math.isnan(s.delta), s.delta))
    return out


def week_of(moment: datetime) -> date:
    """The Monday of ``moment``'s ISO week."""
    day = moment.date()
    return day - timedelta(days=day.weekday())


def month_of(moment: datetime) -> date:
    """The first day of ``moment``'s month."""
    return moment.date().replace(day=1)


def trend(
    observations: Iterable[Observation],
    *,
    interval: str = "week",
    negative_below: float = -0.05,
    rounds: int = 1000,
    seed: int = 0,
) -> list[TrendPoint]:
    """Per segment and period: interactions, persons, mean score with a 95% percentile bootstrap
    interval over person means (inside [-1, 1], as the score is), and the share of negative
    interactions."""
    rng = np.random.default_rng(seed)
    bucket = {"week": week_of, "month": month_of}[interval]
    groups: dict[tuple[str, date], list[Observation]] = defaultdict(list)
    for o in observations:
        groups[(o.segment, bucket(o.at))].append(o)
    points: list[TrendPoint] = []
    for (seg, period), obs in sorted(groups.items()):
        persons = _person_means(obs)[seg]
        values = np.array(list(persons.values()), dtype=float)
        mean = float(values.mean())
        low, high = _bootstrap_mean_ci(values, rng, rounds, 0.95)
        points.append(
            TrendPoint(
                segment=seg,
                period=period,
                interactions=len(obs),
                persons=len(values),
                mean=mean,
                ci_low=low,
                ci_high=high,
                share_negative=sum(1 for o in obs if o.score < negative_below) / len(obs),
            )
        )
    return points
