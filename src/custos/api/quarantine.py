"""The quarantine over REST (admin keys only): rows that were not stored, each with where it was
(source, file, line, record id), the field, what is wrong and how to fix it, and the number of
open entries per source. Never the raw row: it may hold a person's data."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from custos.api.audit import LARGEST
from custos.api.deps import Admin, App
from custos.api.errors import answers
from custos.service import admin_reads

router = APIRouter(tags=["overview"])


class QuarantinePage(BaseModel):
    """Quarantine entries, newest first, and the open entries per source."""

    items: list[dict[str, Any]] = Field(
        description="Each entry: id, source, kind, file_name, line_no, record_id, field, "
        "reason, fix, created_at (never the raw row)."
    )
    sources: list[dict[str, Any]] = Field(description="Per source: its name and open entries.")
    next_cursor: int | None = Field(description="Pass back as cursor for older entries.")


@router.get("/v1/quarantine", response_model=None, responses=answers(QuarantinePage, 401, 403, 422))
def quarantine(
    custos: App,
    key: Admin,
    source: Annotated[str | None, Query(max_length=200, description="Only this source.")] = None,
    status: Annotated[
        Literal["open", "all"], Query(description="Open entries only (default), or all.")
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=1000, description="Entries, newest first.")] = 100,
    cursor: Annotated[
        int | None, Query(ge=1, le=LARGEST, description="next_cursor of the previous page.")
    ] = None,
) -> dict[str, Any]:
    """Quarantined rows, newest first: source, file, line, record id, field, reason and the fix,
    with the open entries per source (admin keys only; the read is audited)."""
    return admin_reads.quarantine_page(
        custos, actor=key.name, limit=limit, status=status, source=source, before=cursor
    )
