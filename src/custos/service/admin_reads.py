"""Reads for the people who run custos (admin keys): the audit log and the quarantine, a page
at a time, newest first. Ids, counts, field names and reasons only: no audit entry's subjects
and no quarantined row's raw values (they may hold a person's data)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ColumnElement, Select, func, select

from custos.service.reads import entry_subjects
from custos.store import audit
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos


def audit_page(
    app: Custos,
    *,
    actor: str,
    limit: int,
    before: int | None = None,
    who: str | None = None,
    purpose: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Audit entries older than entry ``before``, newest first, filtered by actor (``who``),
    purpose, action (exact, or every action under it when it ends with ``.``, e.g.
    ``profile.``) and time (``since`` inclusive, ``until`` exclusive): who, what, for which
    purpose, when and how many profiles (a count, no ids or values). Returns (items, the id to
    pass as ``before`` for the next page, or None). The read itself is audited."""
    query = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(t.audit_log.c.id < before)
    if who:
        query = query.where(t.audit_log.c.actor == who)
    if purpose:
        query = query.where(t.audit_log.c.purpose == purpose)
    if action:
        prefix = action.endswith(".")
        query = query.where(
            t.audit_log.c.action.startswith(action) if prefix else t.audit_log.c.action == action
        )
    if since is not None:
        query = query.where(t.audit_log.c.at >= since)
    if until is not None:
        query = query.where(t.audit_log.c.at < until)
    out: list[dict[str, Any]] = []
    with app.store.read() as conn:
        rows = conn.execute(query).all()
    for row in rows[:limit]:
        detail = orjson.loads(row.detail or "{}")
        out.append(
            {
                "id": row.id,
                "at": row.at.isoformat(),
                "actor": row.actor,
                "action": row.action,
                "purpose": row.purpose,
                "subjects": len(entry_subjects(row.subjects, detail)),
            }
        )
    audit.record(app.store, actor, "audit.list", detail={"entries": len(out)})
    return out, (out[-1]["id"] if len(rows) > limit else None)


def is_open() -> ColumnElement[bool]:
    """The condition of a quarantine entry still to be worked off (its row has not landed
    since)."""
    return t.quarantine.c.closed_at.is_(None)


def quarantine_entries(last: str) -> Select[Any]:
    """Quarantine entries as listed (API, web, Python), with their source's name; ``last``:
    the entry's time shown (``created_at`` or ``closed_at``)."""
    return select(
        t.quarantine.c.id,
        t.sources.c.name.label("source"),
        *t.quarantine.c[
            "kind", "file_name", "line_no", "record_id", "field", "reason", "fix", last
        ],
    ).join(t.sources, t.sources.c.id == t.quarantine.c.source_id)


def _quarantine(status: str) -> Select[Any]:
    query = quarantine_entries("created_at")
    return query.where(is_open()) if status == "open" else query


def quarantine_page(
    app: Custos,
    *,
    actor: str,
    limit: int,
    status: str = "open",
    source: str | None = None,
    before: int | None = None,
) -> dict[str, Any]:
    """Quarantine entries (``status`` open or all) older than entry ``before``, newest first,
    optionally of one source: where each row was (source, file, line, record id), the field,
    what is wrong and how to fix it; never the raw row. With the number of open entries per
    source, and the id to pass as ``before`` for the next page (``next_cursor``). Audited."""
    query = _quarantine(status).order_by(t.quarantine.c.id.desc()).limit(limit + 1)
    if source:
        query = query.where(t.sources.c.name == source)
    if before is not None:
        query = query.where(t.quarantine.c.id < before)
    counted = (
        select(t.sources.c.name, func.count())
        .join(t.quarantine, t.quarantine.c.source_id == t.sources.c.id)
        .where(is_open())
        .group_by(t.sources.c.name)
        .order_by(t.sources.c.name)
    )
    with app.store.read() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        per_source = [{"source": name, "open": n} for name, n in conn.execute(counted)]
    items = [
        {str(k): v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()}
        for r in rows[:limit]
    ]
    audit.record(app.store, actor, "quarantine.list", detail={"entries": len(items)})
    return {
        "items": items,
        "sources": per_source,
        "next_cursor": items[-1]["id"] if len(rows) > limit else None,
    }
