"""``custos.insight``: sentiment of interactions (scored, per segment and period, around an
event, per person) and rule-based segments, each read through the guard."""

from __future__ import annotations

from dataclasses import dataclass

from custos.service import insight
from custos.service.facades.base import Facade, Result, workflow


@dataclass(frozen=True, slots=True)
class MoodPoint(Result):
    """One scored interaction of a person's timeline."""

    at: str
    channel: str | None
    #: the label, or ``uncertain`` below the confidence threshold
    label: str
    score: float | None
    confidence: float | None


@dataclass(frozen=True, slots=True)
class Mood(Result):
    """A person's sentiment timeline and current mood (None without confident scores)."""

    profile_id: str
    mood: float | None
    timeline: tuple[MoodPoint, ...]


@dataclass(frozen=True, slots=True)
class SegmentInfo(Result):
    """A saved segment and its rule."""

    name: str
    where: str
    created_at: str


class InsightFacade(Facade):
    """Insight: ``custos.insight.score()``, ``.trend(by)``, ``.impact(event)``, ``.mood(key)``,
    ``.segments()``, ``.create_segment(name, where)``, ``.segment_members(name, purpose=…)``."""

    score = workflow(insight.score)
    trend = workflow(insight.trend)
    impact = workflow(insight.impact)
    create_segment = workflow(insight.create_segment)
    segment_members = workflow(insight.segment_members)

    def mood(self, key: str, *, purpose: str = "analytics", actor: str = "cli") -> Mood:
        """A person's sentiment timeline and current mood, if the purpose may use the profile."""
        found = insight.mood(self._app, key, purpose=purpose, actor=actor)
        return Mood(
            profile_id=found["profile_id"],
            mood=found["mood"],
            timeline=tuple(MoodPoint(**point) for point in found["timeline"]),
        )

    def segments(self) -> list[SegmentInfo]:
        """The saved segments, by name."""
        return [SegmentInfo(**row) for row in insight.segments(self._app)]
