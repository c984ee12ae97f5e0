"""Merge redirects: a merged-away profile id points (``merged_into``) at the profile that took
its records over, so an id handed out once keeps answering (DESIGN invariant 4).

The one place that follows them, for identity, consent and data-subject requests alike. The
writer keeps redirects flat (an older redirect to a loser is moved to the survivor), but readers
follow chains anyway, at most :data:`MAX_REDIRECTS` steps (a cycle ends there).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import Connection, select

from custos.store.base import Store
from custos.store.tables import profiles

#: Steps followed before a chain is taken for a cycle.
MAX_REDIRECTS = 100
MERGED = "merged"


def _follow(profile_id: str, merged: Mapping[str, str]) -> str:
    """Where the redirects in ``merged`` (merged-away id → its target) lead from
    ``profile_id``."""
    target = profile_id
    for _ in range(MAX_REDIRECTS):
        if target not in merged:
            break
        target = merged[target]
    return target


def redirects(conn: Connection) -> dict[str, str]:
    """Every merged-away profile id → the active id it now belongs to (one read of all of them,
    for work on every profile)."""
    merged: dict[str, str] = dict(
        conn.execute(
            select(profiles.c.id, profiles.c.merged_into).where(
                profiles.c.status == MERGED, profiles.c.merged_into.is_not(None)
            )
        ).all()
    )
    return {pid: _follow(target, merged) for pid, target in merged.items()}


def active_ids(conn: Connection, profile_ids: Collection[str]) -> dict[str, str | None]:
    """Each of a few profile ids → the active id it stands for now, following merge redirects;
    None for an id the store does not know (or a chain that ends nowhere)."""
    merged: dict[str, str] = {}
    known: set[str] = set()
    wanted = sorted(set(profile_ids))
    for _ in range(MAX_REDIRECTS):
        for chunk in Store.of(conn).chunks(wanted):
            query = select(profiles.c.id, profiles.c.status, profiles.c.merged_into).where(
                profiles.c.id.in_(chunk)
            )
            for pid, status, target in conn.execute(query):
                known.add(pid)
                if status == MERGED and target is not None:
                    merged[pid] = target
        wanted = sorted({merged[p] for p in wanted if p in merged} - known)
        if not wanted:
            break
    out: dict[str, str | None] = {}
    for pid in profile_ids:
        target = _follow(pid, merged) if pid in known else None
        out[pid] = target if target in known and target not in merged else None
    return out


def merged_into(conn: Connection, profile_ids: Collection[str]) -> dict[str, str]:
    """Every profile id whose redirects lead to one of ``profile_ids`` → that one, in the order
    found (nearest first)."""
    out: dict[str, str] = {}
    frontier = {pid: pid for pid in profile_ids}
    for _ in range(MAX_REDIRECTS):
        found: dict[str, str] = {}
        for chunk in Store.of(conn).chunks(list(frontier)):
            query = select(profiles.c.id, profiles.c.merged_into).where(
                profiles.c.merged_into.in_(chunk)
            )
            for pid, target in conn.execute(query):
                if pid not in out and pid not in profile_ids:
                    found[pid] = frontier[target]
        out.update(found)
        frontier = found
        if not frontier:
            break
    return out
