"""From links to profiles, without I/O: the one path that full and incremental resolution share.

:func:`plan_profiles` takes what resolution loaded and scored (the nodes, their exact links and
scored pairs, people's decisions) and what the store knew before (:class:`History`), and returns
a :class:`ProfilePlan`: the clusters (:func:`~custos.identity.plan.plan_links`), a stable profile
id for each (:func:`~custos.identity.ids.assign_ids`), the links that made them (merge evidence)
and the pairs left for review. It reads and writes nothing; the profile writer
(:mod:`custos.identity.writer`) stores it, and the same inputs always give the same plan.

A full run plans every node; an incremental run (``new``: the raw ids it attaches) plans the new
rows together with every member of the profiles they may touch, under the same rules, and keeps
the clusters that changed: those holding a new row, and the parts of a profile that the new
evidence splits (a landline that a new record shows to be a family's, a second person of the
name at the address).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from custos.core.settings import Settings
from custos.identity.graph import Edge, ExactResult, Node
from custos.identity.ids import Assignment, assign_ids
from custos.identity.plan import Plan, ReviewPair, plan_links

#: ``identity_candidates`` columns of a review row (``created_at`` is added by the writer).
REVIEW_COLUMNS = ("id", "left_raw_id", "right_raw_id", "status", "weight", "reason", "detail")
#: ``merge_evidence`` columns of an evidence row (``created_at`` is added by the writer).
EVIDENCE_COLUMNS = ("id", "profile_id", "left_raw_id", "right_raw_id", "rule", "weight", "detail")


@dataclass(frozen=True)
class Decisions:
    """People's decisions: links they forced (``together``) and pairs they kept apart."""

    together: list[Edge] = field(default_factory=list)
    apart: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class History:
    """What the store knew before this run."""

    #: raw id → its profile (every membership in a full run; the touched profiles' in an
    #: incremental one)
    previous: dict[int, str] = field(default_factory=dict)
    #: active profiles (that may keep their id) → when they were created: the oldest chooses first
    created_at: dict[str, datetime] = field(default_factory=dict)
    #: every profile id given so far (a new id is never one of them)
    taken: set[str] = field(default_factory=set)


def scoring_threshold(settings: Settings) -> float:
    """The lowest match weight a scored pair is kept from (possible matches included)."""
    return min(settings.possible_match, settings.match_threshold)


@dataclass
class ProfilePlan:
    """What a resolution decided: clusters with stable ids, their links, the review queue."""

    links: Plan  # every cluster and link of the run (see :func:`plan_links`)
    clusters: list[list[int]]  # the clusters this run writes (raw ids, sorted)
    assigned: Assignment  # a profile id per cluster, created, merged and retired ids
    used: list[Edge]  # the links that joined :attr:`clusters` (the merge evidence to write)

    @cached_property
    def member_of(self) -> dict[int, str]:
        """raw id → its profile, for the members of :attr:`clusters`."""
        return {
            raw_id: pid
            for pid, members in zip(self.assigned.cluster_ids, self.clusters, strict=True)
            for raw_id in members
        }

    @property
    def review(self) -> list[ReviewPair]:
        """The scored pairs left for people to review, strongest first."""
        return self.links.review

    def evidence_rows(self, after: int = 0) -> Iterator[tuple[Any, ...]]:
        """``merge_evidence`` rows (in :data:`EVIDENCE_COLUMNS` order) of :attr:`used`, with ids
        from ``after + 1``."""
        member_of = self.member_of
        for i, e in enumerate(self.used, after + 1):
            weight = None if e.weight is None else f"{e.weight:.4f}"
            yield (i, member_of[e.left], e.left, e.right, e.rule, weight, e.detail)

    def review_rows(self, known: dict[tuple[int, int], int]) -> list[tuple[Any, ...]]:
        """``identity_candidates`` rows (in :data:`REVIEW_COLUMNS` order) of the pairs kept for
        review. A pair already in the queue keeps its id (``known``: the pairs stored, by their
        records, lower raw id first), a new one gets the next id never used: an id a person
        looked at names the same pair after any later run, or none."""
        next_id = max(known.values(), default=0) + 1
        out: list[tuple[Any, ...]] = []
        for pair in self.review:
            found = known.get((min(pair.left, pair.right), max(pair.left, pair.right)))
            if found is None:
                found, next_id = next_id, next_id + 1
            weight = f"{pair.weight:.4f}"
            out.append(
                (found, pair.left, pair.right, pair.status, weight, pair.reason, pair.detail)
            )
        return out


def plan_profiles(
    nodes: Sequence[Node],
    exact: ExactResult,
    probable: Sequence[Edge],
    decisions: Decisions,
    settings: Settings,
    history: History,
    anchors: Callable[[Sequence[int]], list[str]],
    *,
    new: set[int] | None = None,
    extra: Sequence[Edge] = (),
) -> ProfilePlan:
    """Cluster ``nodes`` under the linking rules (:func:`~custos.identity.plan.plan_links`, with
    the thresholds of ``settings``) and give each cluster a stable profile id. ``anchors`` name
    raw ids' records stably (their source and record id): a new profile's id derives from its
    first member's. With ``new`` (an incremental run, whose ``nodes`` are the new rows and every
    member of the profiles of ``history``) only the clusters that changed are planned: those
    holding a new row, and those whose members are not exactly a profile's before."""
    links = plan_links(
        nodes,
        exact,
        probable,
        decisions.together,
        decisions.apart,
        match_threshold=settings.match_threshold,
        possible_match=settings.possible_match,
        extra=extra,
    )
    clusters, used = links.clusters, links.used
    named = anchors([members[0] for members in clusters])
    assigned = assign_ids(clusters, named, history.previous, history.created_at, history.taken)
    if new is not None:
        # (a cluster that is exactly a profile of before, with no new row, is none of this
        # run's business: it keeps its id, members, evidence and golden record)
        before: dict[str, set[int]] = {}
        for raw_id, pid in history.previous.items():
            before.setdefault(pid, set()).add(raw_id)
        changed = [
            i
            for i, (members, pid) in enumerate(zip(clusters, assigned.cluster_ids, strict=True))
            if new.intersection(members) or before.get(pid) != set(members)
        ]
        clusters = [clusters[i] for i in changed]
        assigned.cluster_ids = [assigned.cluster_ids[i] for i in changed]
        planned = {raw_id for members in clusters for raw_id in members}
        used = [e for e in used if e.left in planned]
    return ProfilePlan(links, clusters, assigned, used)
