"""What a resolution computed from a snapshot of the store depends on, and the rows it looked at
again.

Full and incremental resolution read the store in one snapshot, compute without the write lock,
and take it only to write their result (so ingestion and collection go on meanwhile). Under
the lock, :class:`SnapshotMark` tells whether the store changed in a way the result cannot
absorb; :func:`recheck_marks` and :func:`unmark` take the rows marked for a recheck off the
list only when they are still as the resolution saw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select

from custos.store import Store, meta
from custos.store import tables as t

#: Resolutions computed from a snapshot before one runs under the write lock throughout (when
#: each found the store changed in a way its plan cannot absorb, see :class:`SnapshotMark`).
SNAPSHOT_ATTEMPTS = 2


@dataclass(frozen=True)
class SnapshotMark:
    """What a plan computed from a snapshot depends on, besides the rows it read (full and
    incremental resolution alike).

    Rows added since (ingestion, collection: ids above ``highest``) do not spoil it: they stay
    in no profile, for the next incremental resolution. Rows changed in place since (a new
    version of a record, an anonymous call that got its user id) are marked in
    ``identity_recheck`` by whoever changed them, which the plan leaves alone. Anything else
    (an erasure deleting rows, a decision, merge or unmerge by a person, another resolution)
    means computing again."""

    highest: int  # the highest raw id
    decision: int  # the newest identity decision
    event: int  # the newest profile event (merge, unmerge, rectification, ...)
    graph: str  # the identity graph's version
    #: erasures so far (the only deletions of records and interactions; counted in the store's
    #: meta by the erasure itself, so one is noticed even when it deleted the newest rows and
    #: ingestion gave their ids out again)
    erased: int

    @classmethod
    def read(cls, conn: Connection, highest: int | None = None) -> SnapshotMark:
        """The mark of the store as ``conn`` sees it (``highest``: the highest raw id it was
        taken at, kept: rows added since do not spoil it). A few indexed look-ups: it is read
        twice by every resolution, one of a single record too."""
        if highest is None:
            top = select(func.coalesce(func.max(t.raw_records.c.id), 0))
            highest = int(conn.execute(top).scalar_one())
        decision, event = (
            int(conn.execute(select(func.coalesce(func.max(c), 0))).scalar_one())
            for c in (t.identity_decisions.c.id, t.profile_events.c.id)
        )
        graph = meta.get(conn, meta.GRAPH_VERSION) or "0"
        erased = int(meta.get(conn, meta.ERASURES) or 0)
        return cls(highest, decision, event, graph, erased)


def recheck_marks(conn: Connection) -> dict[int, Any]:
    """The rows marked for a recheck → their ingestion time (as stored), for :func:`unmark`."""
    # The few marked ids first, then their rows by primary key (a join lets SQLite walk every
    # raw record: a tenth of a second at a million, on each incremental resolution).
    ids = sorted(set(conn.execute(select(t.identity_recheck.c.raw_id)).scalars()))
    found: dict[int, Any] = {}
    for chunk in Store.of(conn).chunks(ids):
        found.update(
            conn.execute(
                select(t.raw_records.c.id, t.raw_records.c.ingested_at).where(
                    t.raw_records.c.id.in_(chunk)
                )
            ).all()
        )
    return found


def unmark(conn: Connection, rechecked: dict[int, Any]) -> None:
    """Take the rows off ``identity_recheck`` that are still as a resolution saw them (by
    their ingestion time then: a new version of a record is ingested later)."""
    ids = sorted(rechecked)
    for chunk in Store.of(conn).chunks(ids):
        now = dict(
            conn.execute(
                select(t.raw_records.c.id, t.raw_records.c.ingested_at).where(
                    t.raw_records.c.id.in_(chunk)
                )
            ).all()
        )
        done = [r for r in chunk if r not in now or now[r] == rechecked[r]]
        if done:
            conn.execute(delete(t.identity_recheck).where(t.identity_recheck.c.raw_id.in_(done)))
