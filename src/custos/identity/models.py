"""Trained matching models kept in the store, versioned: a later run reuses the newest one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from custos.identity.matcher import DESIGN_VERSION
from custos.store import tables as t


@dataclass(frozen=True)
class SavedModel:
    """One trained model: Splink settings (m, u, prior) and the term frequencies behind it."""

    version: int
    trained_at: datetime
    trained_on: int
    model: dict[str, Any]
    term_frequencies: dict[str, dict[str, float]]


#: Parsed models by (version, trained_at, size of the frequencies): parsing the term frequencies
#: of a million records takes longer than attaching a record, so it is done once per process.
_parsed: dict[tuple[int, datetime, int], SavedModel] = {}


def latest(conn: Connection) -> SavedModel | None:
    """The newest model of the current design, or None (then a run trains one)."""
    m = t.match_models
    head = conn.execute(
        select(m.c.version, m.c.trained_at, m.c.trained_on, func.length(m.c.term_frequencies))
        .where(m.c.design == DESIGN_VERSION)
        .order_by(m.c.version.desc())
        .limit(1)
    ).first()
    if head is None:
        return None
    key = (int(head[0]), head[1], int(head[3] or 0))
    found = _parsed.get(key)
    if found is None:
        row = conn.execute(
            select(m.c.model, m.c.term_frequencies).where(m.c.version == head[0])
        ).one()
        found = SavedModel(
            key[0], head[1], head[2], orjson.loads(row.model), orjson.loads(row.term_frequencies)
        )
        _parsed.clear()
        _parsed[key] = found
    return found


def save(
    conn: Connection,
    model: dict[str, Any],
    term_frequencies: dict[str, dict[str, float]],
    *,
    trained_on: int,
    threshold: float,
) -> int:
    """Store a newly trained model as the next version; returns its version number."""
    m = t.match_models
    version = int(conn.execute(select(func.coalesce(func.max(m.c.version), 0))).scalar_one()) + 1
    conn.execute(
        m.insert().values(
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
    m = t.match_models
    query = select(m.c.version, m.c.design, m.c.trained_at, m.c.trained_on, m.c.threshold)
    return [
        {
            "version": r.version,
            "design": r.design,
            "trained_at": r.trained_at.isoformat(),
            "trained_on": r.trained_on,
            "threshold": float(r.threshold),
        }
        for r in conn.execute(query.order_by(m.c.version.desc()))
    ]
