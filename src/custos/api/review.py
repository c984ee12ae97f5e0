"""The review queue over REST: pairs of records that resolution scored but did not link, read
under the purpose identity_curation (record references and match weights, no personal values),
and decided (accept: one person; reject: two persons) with an admin key bound to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from custos.api.auth import choose_purpose
from custos.api.deps import Admin, App, Reader
from custos.api.errors import ApiError, answers
from custos.service.app import Custos
from custos.service.keys import ApiKey
from custos.service.review import LARGEST, PURPOSE

router = APIRouter(prefix="/v1/review", tags=["review"])

PairId = Annotated[int, Path(ge=1, le=LARGEST, description="The pair's id, from GET /v1/review.")]


class Decision(BaseModel):
    """Why the pair was decided, and which records the client saw listed under its id."""

    reason: str = Field(
        default="", max_length=2000, description="Kept with the decision (profile explain)."
    )
    left: str | None = Field(
        default=None,
        max_length=500,
        description="SOURCE:RECORD_ID of one record as listed; with right, the decision is "
        "refused (400) if the id names another pair by now (a resolution renumbers the queue).",
    )
    right: str | None = Field(default=None, max_length=500, description="The other record.")


def _decide(
    custos: Custos, key: ApiKey, pair_id: int, body: Decision | None, accept: bool
) -> dict[str, Any]:
    choose_purpose(key, PURPOSE)
    body = body or Decision()
    if (body.left is None) != (body.right is None):
        raise ApiError(400, "give both left and right, or neither", hint="SOURCE:RECORD_ID each")
    expect = (body.left, body.right) if body.left is not None and body.right is not None else None
    return custos.review_decide(
        pair_id, accept=accept, actor=key.name, reason=body.reason, expect=expect
    )


class Queue(BaseModel):
    """A page of pairs waiting for review."""

    items: list[dict[str, Any]]
    total: int
    next_offset: int | None


class Side(BaseModel):
    """One record of a decided pair, and its profile now."""

    record: str = Field(description="SOURCE:RECORD_ID")
    profile_id: str | None


class Decided(BaseModel):
    """The decision kept, and the records' profiles after it."""

    id: int
    decision: Literal["together", "apart"]
    profile_id: str | None = Field(description="The profile the two records share now, if one.")
    left: Side
    right: Side


QUEUE_ANSWERS = answers(Queue, 400, 401, 403, 422)
Route = TypeVar("Route", bound=Callable[..., Any])
DECIDE_ANSWERS = answers(Decided, 400, 401, 403, 404, 422)
DECIDE_ANSWERS[400]["description"] = (
    "The pair was decided already, is in one profile by now, or is not the left and right "
    "records given."
)


@router.get(
    "",
    summary="List the pairs waiting for review",
    response_model=None,
    responses=QUEUE_ANSWERS,
)
def review_queue(
    custos: App,
    key: Reader,
    status: Annotated[
        Literal["possible", "conflict"] | None,
        Query(description="Only pairs of this kind (default: both)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Pairs per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=LARGEST, description="Pairs to skip.")] = 0,
) -> dict[str, Any]:
    """Pairs of records that resolution scored but did not link, strongest match weight first:
    each with its `id`, `status` (`possible` or `conflict`), `weight`, `reason`, the match
    weight per compared field (`fields`), and for `left` and `right` the `record`
    (SOURCE:RECORD_ID) and its `profile_id`. Pairs decided already, or whose records are in one
    profile by now, are left out. Needs a key bound to the purpose identity_curation; audited."""
    choose_purpose(key, PURPOSE)
    queue = custos.review_queue(limit=limit, offset=offset, status=status, actor=key.name)
    following = offset + limit
    return {**queue, "next_offset": following if following < queue["total"] else None}


def _decision_route(verb: str, summary: str) -> Callable[[Route], Route]:
    """The route of one decision on a pair (accept or reject): same answers, own summary."""
    return router.post(
        f"/{{pair_id}}/{verb}", summary=summary, response_model=None, responses=DECIDE_ANSWERS
    )


@_decision_route("accept", "Accept a pair: one person, joined for good")
def accept(
    custos: App, key: Admin, pair_id: PairId, body: Decision | None = None
) -> dict[str, Any]:
    """The two records are one person: a decision "together" is kept (every later run obeys
    it) and the profiles are rebuilt; `profile_id` is the profile the two records share now.
    Needs an admin key bound to identity_curation."""
    return _decide(custos, key, pair_id, body, accept=True)


@_decision_route("reject", "Reject a pair: two persons, kept apart for good")
def reject(
    custos: App, key: Admin, pair_id: PairId, body: Decision | None = None
) -> dict[str, Any]:
    """The two records are two persons: a decision "apart" is kept, so no later run links
    them, and the pair leaves the queue. Needs an admin key bound to identity_curation."""
    return _decide(custos, key, pair_id, body, accept=False)
