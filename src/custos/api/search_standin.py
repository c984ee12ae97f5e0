"""TEMPORARY stand-in for ``GET /v1/profiles/search`` (issue 17: another branch builds the real
search). It keeps the contract the web UI is written against (``items`` with ``profile_id``, the
name, e-mail and phone fields the purpose may see and ``score``; ``next_cursor``) so the UI's
name search can be tested on this branch. Drop this module and its line in api/app.py when the
real route is merged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from custos.api.auth import choose_purpose
from custos.api.deps import App, Reader
from custos.api.errors import answers
from custos.service import api_reads

router = APIRouter(tags=["profiles"])
SHOWN = ("first_name", "last_name", "email", "phone")


class Hits(BaseModel):
    """Profiles whose name, e-mail or phone hold every word of the query."""

    items: list[dict[str, Any]]
    next_cursor: str | None


@router.get("/v1/profiles/search", response_model=None, responses=answers(Hits, 400, 401, 403, 422))
def search(
    custos: App,
    key: Reader,
    q: Annotated[str, Query(max_length=200)] = "",
    purpose: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,6}$")] = None,
) -> dict[str, Any]:
    """Stand-in: a case-blind substring match over one listing page (drop at merge)."""
    chosen = choose_purpose(key, purpose)
    page, _ = api_reads.profile_page(custos, chosen, actor=key.name, limit=1000)
    words = q.casefold().split()
    hits = [
        {"profile_id": p["profile_id"], **{f: p[f] for f in SHOWN if f in p}, "score": 1.0}
        for p in page
        if all(w in " ".join(str(p.get(f, "")) for f in SHOWN).casefold() for w in words)
    ]
    start = int(cursor or 0)
    following = start + limit
    return {
        "items": hits[start:following],
        "next_cursor": str(following) if following < len(hits) else None,
    }
