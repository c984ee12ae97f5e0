"""The tamper-evident audit log: each entry hashes the one before it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, select

from custos.store import tables as t

GENESIS = "0" * 64


def _digest(
    prev: str,
    at: datetime,
    actor: str,
    action: str,
    purpose: str | None,
    subjects: str,
    detail: str,
) -> str:
    body = "\x1f".join((prev, at.isoformat(), actor, action, purpose or "", subjects, detail))
    return hashlib.sha256(body.encode()).hexdigest()


def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    purpose: str | None = None,
    subjects: Iterable[str] = (),
    detail: dict[str, object] | None = None,
) -> str:
    """Append one entry (inside the caller's write transaction) and return its hash."""
    prev = conn.execute(
        select(t.audit_log.c.hash).order_by(t.audit_log.c.id.desc()).limit(1)
    ).scalar()
    prev = prev or GENESIS
    at = datetime.now(UTC).replace(microsecond=0)
    subject_text = ",".join(sorted(subjects))
    detail_text = orjson.dumps(detail or {}, option=orjson.OPT_SORT_KEYS).decode()
    digest = _digest(prev, at, actor, action, purpose, subject_text, detail_text)
    conn.execute(
        t.audit_log.insert().values(
            at=at,
            actor=actor,
            action=action,
            purpose=purpose,
            subjects=subject_text,
            detail=detail_text,
            prev_hash=prev,
            hash=digest,
        )
    )
    return digest


def verify(conn: Connection) -> int | None:
    """The id of the first entry whose hash does not match, or None when the chain is intact."""
    prev = GENESIS
    for row in conn.execute(select(t.audit_log).order_by(t.audit_log.c.id)):
        expected = _digest(
            prev, row.at, row.actor, row.action, row.purpose, row.subjects or "", row.detail or ""
        )
        if row.prev_hash != prev or row.hash != expected:
            return int(row.id)
        prev = row.hash
    return None
