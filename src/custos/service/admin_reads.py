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
    log = t.audit_log
    query = select(log).order_by(log.c.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(log.c.id < before)
    if who:
        query = query.where(log.c.actor == who)
    if purpose:
        query = query.where(log.c.purpose == purpose)
    if action:
        prefix = action.endswith(".")
        query = query.where(log.c.action.startswith(action) if prefix else log.c.action == action)
    if since is not None:
        query = query.where(log.c.at >= since)
    if until is not None:
        query = query.where(log.c.at < until)
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


def _quarantine(status: str) -> Select[Any]:
    q, s = t.quarantine, t.sources
    query = select(
        q.c.id,
        s.c.name.label("source"),
        q.c.kind,
        q.c.file_name,
        q.c.line_no,
        q.c.record_id,
        q.c.field,
        q.c.reason,
        q.c.fix,
        q.c.created_at,
    ).join(s, s.c.id == q.c.source_id)
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
    q, s = t.quarantine, t.sources
    query = _quarantine(status).order_by(q.c.id.desc()).limit(limit + 1)
    if source:
        query = query.where(s.c.name == source)
    if before is not None:
        query = query.where(q.c.id < before)
    counted = (
        select(s.c.name, func.count())
        .join(q, q.c.source_id == s.c.id)
        .where(is_open())
        .group_by(s.c.name)
        .order_by(s.c.name)
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
