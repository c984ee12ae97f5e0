"""Stable profile ids over changing clusters.

Clusters are recomputed from the graph; profile ids are not. Each cluster inherits the id of the
oldest existing profile that most of it came from; a profile whose records all went into a
cluster that already has an older id is merged into it (and its id redirects there); a cluster
with no history gets a new id derived from its earliest record, so a fresh store given the same
data produces the same ids.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

PREFIX = "cus_"


def new_profile_id(anchor: str, taken: set[str]) -> str:
    """A fresh id derived from the anchor record's key, unique among ``taken``."""
    salt = 0
    while True:
        digest = hashlib.blake2b(f"{anchor}\x1f{salt}".encode(), digest_size=8).hexdigest()
        candidate = PREFIX + digest
        if candidate not in taken:
            return candidate
        salt += 1


@dataclass
class Assignment:
    """The outcome: an id per cluster, new ids, the merges (loser → survivor) and the splits
    (a new id → the profile most of its records came from)."""

    cluster_ids: list[str] = field(default_factory=list)
    created: set[str] = field(default_factory=set)
    merged: dict[str, str] = field(default_factory=dict)
    retired: set[str] = field(default_factory=set)
    split: dict[str, str] = field(default_factory=dict)


def assign_ids(
    clusters: Sequence[Sequence[int]],
    anchors: Sequence[str],
    previous: dict[int, str],
    created_at: dict[str, datetime],
    existing_ids: set[str],
) -> Assignment:
    """Give each cluster a profile id, keeping ids stable across runs.

    ``previous`` maps a member (raw id) to its profile before this run; ``created_at`` holds the
    creation time of every active profile; ``anchors`` is a stable key per cluster for new ids.
    """
    overlap: dict[str, Counter[int]] = defaultdict(Counter)
    for index, members in enumerate(clusters):
        for member in members:
            old = previous.get(member)
            if old is not None:
                overlap[old][index] += 1
    out = Assignment(cluster_ids=[""] * len(clusters))
    # Oldest profiles choose first, each taking the cluster holding most of its records.
    for old in sorted(overlap, key=lambda pid: (created_at.get(pid, datetime.max), pid)):
        free = [
            (count, -index) for index, count in overlap[old].items() if not out.cluster_ids[index]
        ]
        if free:
            _, neg_index = max(free)
            out.cluster_ids[-neg_index] = old
    kept = set(out.cluster_ids)
    taken = set(existing_ids)
    for index, pid in enumerate(out.cluster_ids):
        if not pid:
            pid = new_profile_id(anchors[index], taken)
            out.cluster_ids[index] = pid
            out.created.add(pid)
            taken.add(pid)
            came: Counter[str] = Counter()
            if previous:
                came.update(previous[m] for m in clusters[index] if m in previous)
            if came:  # records of an existing profile, split off it
                out.split[pid] = min(came, key=lambda old: (-came[old], old))
    for old, counts in overlap.items():
        if old in kept:
            continue
        # Every record of ``old`` went to clusters that kept an older id: merge into the
        # one that took most of them.
        index = max(counts, key=lambda i: (counts[i], -i))
        out.merged[old] = out.cluster_ids[index]
    out.retired = set(created_at) - kept - set(out.merged) - out.created
    return out
