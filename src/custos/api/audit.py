"""The audit log over REST (admin keys only): who read what, for which purpose, when, and how
many profiles; filtered by actor, purpose, action and time, a page at a time. Ids and counts
only, never a subject's id or value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from custos.api.deps import Admin, App
from custos.api.errors import ApiError, answers
from custos.service import admin_reads

router = APIRouter(tags=["overview"])

#: the largest entry id a cursor may name (past it a 422, not the database's integer range)
LARGEST = 2**62


class AuditPage(BaseModel):
    """Audit entries, newest first."""

    items: list[dict[str, Any]] = Field(
        description="Each entry: id, at, actor, action, purpose, subjects (how many profiles)."
    )
    next_cursor: int | None = Field(description="Pass back as cursor for older entries.")


def _utc(at: datetime | None, name: str) -> datetime | None:
    """The time in UTC (naive: taken to be UTC); a time that has none is refused."""
    if at is None:
        return None
    try:
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            400, f"{name} is outside the range of times", hint="e.g. 2026-01-31"
        ) from None


@router.get("/v1/audit", response_model=None, responses=answers(AuditPage, 400, 401, 403, 422))
def audit_log(
    custos: App,
    key: Admin,
    actor: Annotated[str | None, Query(max_length=200, description="Only this key.")] = None,
    purpose: Annotated[str | None, Query(max_length=100, description="Only this purpose.")] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=50,
            description="Only this action; ending in a dot, every action under it (profile.).",
        ),
    ] = None,
    since: Annotated[
        datetime | None, Query(description="Entries at or after this time (ISO 8601).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Entries before this time (ISO 8601).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Entries, newest first.")] = 100,
    cursor: Annotated[
        int | None, Query(ge=1, le=LARGEST, description="next_cursor of the previous page.")
    ] = None,
) -> dict[str, Any]:
    """Audit entries newest first, filtered by actor, purpose, action and time: actor, action,
    purpose, when, and the number of profiles (admin keys only; the read is audited)."""
    items, following = admin_reads.audit_page(
        custos,
        actor=key.name,
        limit=limit,
        before=cursor,
        who=actor,
        purpose=purpose,
        action=action,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
    )
    return {"items": items, "next_cursor": following}
