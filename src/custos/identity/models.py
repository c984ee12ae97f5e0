"""Trained matching models kept in the store, versioned: a later run reuses the newest one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from custos.identity.matcher import DESIGN_VERSION, Scorer
from custos.store import tables as t


@dataclass(frozen=True)
class SavedModel:
    """One trained model: Splink settings (m, u, prior) and the term frequencies behind it."""

    version: int
    trained_at: datetime
    trained_on: int
    model: dict[str, Any]
    term_frequencies: dict[str, dict[str, float]]

    @cached_property
    def scorer(self) -> Scorer:
        """The model's scorer of new records (built on first use, kept with the model)."""
        key = f"{self.version}@{self.trained_at.isoformat()}"
        return Scorer(self.model, self.term_frequencies, key)


def latest(conn: Connection, cache: ModelCache | None = None) -> SavedModel | None:
    """The newest model of the current design, or None (then a run trains one); parsed once
    per ``cache`` (parsed again without one)."""
    table = t.match_models
    head = conn.execute(
        select(
            table.c.version,
            table.c.trained_at,
            table.c.trained_on,
            func.length(table.c.term_frequencies),
        )
        .where(table.c.design == DESIGN_VERSION)
        .order_by(table.c.version.desc())
        .limit(1)
    ).first()
    if head is None:
        return None
    key = (int(head[0]), head[1], int(head[3] or 0))
    found = cache.parsed.get(key) if cache is not None else None
    if found is None:
        row = conn.execute(
            select(table.c.model, table.c.term_frequencies).where(table.c.version == head[0])
        ).one()
        found = SavedModel(
            key[0], head[1], head[2], orjson.loads(row.model), orjson.loads(row.term_frequencies)
        )
        if cache is not None:
            cache.parsed = {key: found}  # one model at a time: a newer one replaces the old
    return found


@dataclass
class ModelCache:
    """The latest parsed model of one store, by (version, trained_at, size of the
    frequencies), with its scorer: parsing the term frequencies of a million records takes
    longer than attaching a record, so a custos instance keeps them (see :meth:`latest`)."""

    parsed: dict[tuple[int, datetime, int], SavedModel] = field(default_factory=dict)

    def latest(self, conn: Connection) -> SavedModel | None:
        """:func:`latest`, parsed once while it stays the latest."""
        return latest(conn, self)


def save(
    conn: Connection,
    model: dict[str, Any],
    term_frequencies: dict[str, dict[str, float]],
    *,
    trained_on: int,
    threshold: float,
) -> int:
    """Store a newly trained model as the next version; returns its version number."""
    table = t.match_models
    latest_version = select(func.coalesce(func.max(table.c.version), 0))
    version = int(conn.execute(latest_version).scalar_one()) + 1
    conn.execute(
        table.insert().values(
            version=version,
            design=DESIGN_VERSION,
            trained_at=datetime.now(UTC),
            trained_on=trained_on,
            threshold=str(threshold),
            model=orjson.dumps(model).decode(),
            term_frequencies=orjson.dumps(term_frequencies).decode(),
        )
    )
    return version


def history(conn: Connection) -> list[dict[str, Any]]:
    """Every saved model version, newest first, without the parameters."""
    table = t.match_models
    query = select(
        table.c.version, table.c.design, table.c.trained_at, table.c.trained_on, table.c.threshold
    )
    return [
        {
            "version": r.version,
            "design": r.design,
            "trained_at": r.trained_at.isoformat(),
            "trained_on": r.trained_on,
            "threshold": float(r.threshold),
        }
        for r in conn.execute(query.order_by(table.c.version.desc()))
    ]
