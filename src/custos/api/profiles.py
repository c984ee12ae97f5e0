"""The profile API: look up, list and read profiles, their interactions and consent, and curate
merges. Every read is served under one of the key's purposes, through the guard, and audited with
the key's name as the actor."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from custos.api.auth import choose_purpose
from custos.api.deps import Admin, App, Reader
from custos.api.errors import ApiError, answers
from custos.service import api_reads, search
from custos.service.app import Custos
from custos.service.keys import ApiKey

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])

Purpose = Annotated[
    str | None, Query(description="The purpose the read serves (one of the key's purposes).")
]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="Items per page.")]
#: The deepest page an offset may ask for (a larger one is refused with 422, not a 500 from the
#: database's integer range).
MAX_OFFSET = 1_000_000
#: How many ``where`` filters one listing may combine.
MAX_FILTERS = 10
FILTER_NAME = re.compile(r"[A-Za-z0-9_]{1,100}")


class Lookup(BaseModel):
    """Find a profile by exactly one identifier (sent in the body, so it stays out of logs)."""

    profile_id: str | None = None
    email: str | None = None
    phone: str | None = None
    customer_id: str | None = Field(default=None, description="An external (customer) id.")
    social_handle: str | None = None


class Unmerge(BaseModel):
    """Records to split off a profile."""

    records: list[str] = Field(min_length=1, description="SOURCE:RECORD_ID of each record.")
    reason: str = ""


class Merge(BaseModel):
    """Two profiles to join for good."""

    other: str = Field(min_length=1, description="The id of the profile to join with.")
    reason: str = ""


class Page(BaseModel):
    """A page of profiles."""

    purpose: str
    items: list[dict[str, Any]] = Field(description="Each profile as the purpose may see it.")
    next_cursor: str | None = Field(description="Pass back as cursor for the next page.")


class Match(BaseModel):
    """A profile a search found, with what the purpose may see of it (else null)."""

    profile_id: str
    name: str | None
    email: str | None
    phone: str | None
    score: float = Field(ge=0, le=1, description="How well it matches, 0–1.")


class Matches(BaseModel):
    """A page of search results, best first."""

    items: list[Match]
    next_cursor: str | None = Field(description="Pass back as cursor for the next page.")


class Profile(BaseModel):
    """One profile as the purpose may see it."""

    profile_id: str
    purpose: str | None
    status: str
    created_at: str
    updated_at: str
    golden: list[dict[str, Any]] = Field(description="The golden attributes with provenance.")
    identifiers: dict[str, list[str]]
    records: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    interactions: list[dict[str, Any]]
    interaction_count: int
    merged_ids: list[str]


class Interactions(BaseModel):
    """A page of a profile's interactions, newest first."""

    profile_id: str
    purpose: str
    items: list[dict[str, Any]]
    total: int
    next_offset: int | None


class Consent(BaseModel):
    """A person's consent state per purpose, and the ledger."""

    profile_id: str
    as_of: str | None
    states: dict[str, dict[str, Any]] = Field(description="Per purpose: its state now.")
    possible_matches: list[Any]
    ledger: list[dict[str, Any]]


class Sentiment(BaseModel):
    """A person's current mood and sentiment timeline."""

    profile_id: str
    mood: Any
    timeline: list[Any]


class Explanation(BaseModel):
    """Why each record belongs to the profile."""

    profile_id: str
    records: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    not_linked: list[Any]


class Unmerged(BaseModel):
    """The records split off (each with its profile now) and the resolution run."""

    profile_id: str
    records: dict[str, str] = Field(description="SOURCE:RECORD_ID → its profile id now.")
    resolve: dict[str, Any]


class Merged(BaseModel):
    """The surviving (older) profile id."""

    profile_id: str


#: a read of one profile under a purpose
READ = (400, 401, 403, 404, 422)
#: a read answered with an ETag (see _cached)
CACHED = answers(Profile, 304, *READ)
CACHED[200]["headers"] = CACHED[304]["headers"] = {
    "ETag": {"required": True, "schema": {"type": "string"}},
    "Cache-Control": {"required": True, "schema": {"type": "string"}},
}


def _cached(request: Request, response: Response, body: dict[str, Any]) -> Any:
    """Answer with an ETag (304 when the client has this version already)."""
    data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    tag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/json", headers=headers)


@router.get("", response_model=None, responses=answers(Page, 400, 401, 403, 422))
def list_profiles(
    custos: App,
    key: Reader,
    purpose: Purpose = None,
    limit: Limit = None,
    cursor: Annotated[
        str | None, Query(max_length=40, description="next_cursor of the previous page.")
    ] = None,
    where: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_FILTERS,
            description="attribute:value filters on golden attributes (repeatable, all must "
            "match).",
        ),
    ] = None,
    offset: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> dict[str, Any]:
    """The profiles the purpose may see, in id order, a page at a time (keyset paging: pass
    ``next_cursor`` back as ``cursor``). A page examines a bounded number of profiles, so a
    filter few match may answer fewer than ``limit`` items and still a ``next_cursor``."""
    if offset is not None:
        raise ApiError(
            400,
            "profiles are paged with cursor, not offset",
            hint="pass the next_cursor of the previous page as cursor",
        )
    chosen = choose_purpose(key, purpose)
    filters: dict[str, str] = {}
    for item in where or []:
        name, sep, value = item.partition(":")
        if not sep or not FILTER_NAME.fullmatch(name):
            raise ApiError(
                400,
                "a filter is attribute:value (the attribute in letters, digits and _)",
                hint="e.g. where=country:DE",
            )
        filters[name] = value
    size = limit or custos.settings.api_page_size
    items, next_cursor = api_reads.profile_page(
        custos, chosen, actor=key.name, limit=size, after=cursor, where=filters
    )
    return {"purpose": chosen, "items": items, "next_cursor": next_cursor}


@router.get("/search", response_model=None, responses=answers(Matches, 400, 401, 403, 422))
def search_profiles(
    custos: App,
    key: Reader,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description="A name (fuzzy), an e-mail (or its beginning), a phone or a profile id.",
        ),
    ],
    purpose: Purpose = None,
    by: Annotated[
        Literal["name", "email", "phone", "id"] | None,
        Query(description="What q is (default: read from its form)."),
    ] = None,
    limit: Limit = None,
    cursor: Annotated[
        str | None, Query(max_length=40, description="next_cursor of the previous page.")
    ] = None,
) -> dict[str, Any]:
    """Profiles the purpose may see that match ``q``, best first, with the name, e-mail and phone
    it may see and a score (0–1); a search by a field it may not see is refused (403)."""
    chosen = choose_purpose(key, purpose)
    size = limit or custos.settings.api_page_size
    items, next_cursor = search.search(custos, q, chosen, actor=key.name, limit=size, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/lookup", response_model=None, responses=CACHED)
def lookup(
    request: Request,
    response: Response,
    custos: App,
    key: Reader,
    body: Lookup,
    purpose: Purpose = None,
) -> Any:
    """A profile by its id, e-mail, phone, external (customer) id or social handle."""
    given = {k: v for k, v in body.model_dump().items() if v}
    if len(given) != 1:
        raise ApiError(400, "give exactly one identifier", hint=", ".join(api_reads.LOOKUP_KINDS))
    chosen = choose_purpose(key, purpose)
    ((kind, value),) = given.items()
    shown = api_reads.lookup(custos, kind, value, chosen, actor=key.name)
    return _cached(request, response, shown)


@router.get("/{profile_id}", response_model=None, responses=CACHED)
def show(
    request: Request,
    response: Response,
    custos: App,
    key: Reader,
    profile_id: str,
    purpose: Purpose = None,
) -> Any:
    """One profile (a merged-away id redirects) as the purpose may see it; ETag for caching."""
    chosen = choose_purpose(key, purpose)
    found = api_reads.visible(
        custos, "profile_id", profile_id, chosen, actor=key.name, action="profile.show"
    )
    shown = custos.profile(found, purpose=chosen, actor=key.name)
    return _cached(request, response, shown)


@router.get(
    "/{profile_id}/interactions", response_model=None, responses=answers(Interactions, *READ)
)
def interactions(
    custos: App,
    key: Reader,
    profile_id: str,
    purpose: Purpose = None,
    limit: Limit = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> dict[str, Any]:
    """A profile's interactions, newest first, with the fields the purpose may see."""
    chosen = choose_purpose(key, purpose)
    found = api_reads.visible(
        custos, "profile_id", profile_id, chosen, actor=key.name, action="profile.interactions"
    )
    size = limit or custos.settings.api_page_size
    items, total = api_reads.interactions(
        custos, found, chosen, actor=key.name, limit=size, offset=offset
    )
    return {
        "profile_id": found,
        "purpose": chosen,
        "items": items,
        "total": total,
        "next_offset": offset + size if offset + size < total else None,
    }


def _found_for(custos: Custos, key: ApiKey, profile_id: str, purpose: str) -> str:
    """The profile, for a read that needs ``purpose`` itself (the key must be bound to it)."""
    choose_purpose(key, purpose)
    return api_reads.find_by(custos, "profile_id", profile_id)


@router.get("/{profile_id}/consent", response_model=None, responses=answers(Consent, *READ))
def consent(custos: App, key: Reader, profile_id: str) -> dict[str, Any]:
    """The person's consent state per purpose and the ledger (needs purpose consent_management)."""
    return custos.consent(_found_for(custos, key, profile_id, "consent_management"), actor=key.name)


@router.get("/{profile_id}/sentiment", response_model=None, responses=answers(Sentiment, *READ))
def sentiment(custos: App, key: Reader, profile_id: str, purpose: Purpose = None) -> dict[str, Any]:
    """The person's current mood and sentiment timeline, when the purpose may use them."""
    chosen = choose_purpose(key, purpose)
    found = api_reads.visible(
        custos, "profile_id", profile_id, chosen, actor=key.name, action="insight.mood"
    )
    return api_reads.sentiment(custos, found, chosen, actor=key.name)


@router.get("/{profile_id}/explain", response_model=None, responses=answers(Explanation, *READ))
def explain(custos: App, key: Reader, profile_id: str) -> dict[str, Any]:
    """Why each record belongs to the profile (needs purpose identity_curation)."""
    return custos.explain(_found_for(custos, key, profile_id, "identity_curation"), actor=key.name)


@router.post("/{profile_id}/unmerge", response_model=None, responses=answers(Unmerged, *READ))
def unmerge(custos: App, key: Admin, profile_id: str, body: Unmerge) -> dict[str, Any]:
    """Split records off a profile for good (admin keys only)."""
    found = api_reads.find_by(custos, "profile_id", profile_id)
    return custos.unmerge(found, body.records, actor=key.name, reason=body.reason)


@router.post("/{profile_id}/merge", response_model=None, responses=answers(Merged, *READ))
def merge(custos: App, key: Admin, profile_id: str, body: Merge) -> dict[str, Any]:
    """Join two profiles for good; the older id survives (admin keys only)."""
    first = api_reads.find_by(custos, "profile_id", profile_id)
    second = api_reads.find_by(custos, "profile_id", body.other)
    return {"profile_id": custos.merge(first, second, actor=key.name, reason=body.reason)}
