"""The preference centre API: the authenticated way to record a person's consent decisions.

``POST /v1/profiles/{profile_id}/consent`` (keys bound to the purpose ``consent_management``)
appends a grant, denial or withdrawal to the person's ledger, with how it was made (method),
what shows it (evidence) and who recorded it (the key, and the actor it names). Such an event
is the person's own say: it supersedes what earlier events of their records said. Collection
with the public write key can only *restrict* consent (its calls are claims of a device); this
is where a preference page's server grants.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from custos.api.auth import choose_purpose
from custos.api.deps import App, Reader
from custos.api.errors import answers
from custos.service import api_reads

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])


class Decision(BaseModel):
    """One consent decision of the person, as a preference page records it."""

    purpose: str = Field(min_length=1, max_length=100, description="The purpose decided on.")
    status: Literal["granted", "denied", "withdrawn"]
    method: str = Field(
        min_length=1,
        max_length=100,
        description="How the person decided: preference_page, checkout, call, …",
    )
    evidence: str = Field(
        min_length=1,
        max_length=2000,
        description="What shows the decision: form and notice version, request id, session …",
    )
    actor: str | None = Field(
        default=None,
        max_length=200,
        description="Who acted (the person, or the agent on their behalf); default: the key.",
    )
    explicit: bool = Field(
        default=False, description="Explicit consent (needed for health and other special data)."
    )
    notice_version: str | None = Field(default=None, max_length=100)
    source: str = Field(
        default="preference_centre",
        min_length=1,
        max_length=200,
        description="The consent source the event is recorded under.",
    )


class Recorded(BaseModel):
    """The event recorded, and the person's state for the purpose now."""

    event: int = Field(description="The id of the consent event.")
    profile_id: str
    purpose: str
    state: dict[str, Any]


@router.post(
    "/{profile_id}/consent",
    response_model=None,
    responses=answers(Recorded, 400, 401, 403, 404, 422),
)
def record(custos: App, key: Reader, profile_id: str, body: Decision) -> dict[str, Any]:
    """Record a grant, denial or withdrawal of the person (needs purpose consent_management);
    answers the event id and the person's state for the purpose now."""
    choose_purpose(key, "consent_management")
    found = api_reads.find_by(custos, "profile_id", profile_id)
    actor = key.name if not body.actor else f"{key.name} for {body.actor}"
    event = custos.record_consent(
        found,
        purpose=body.purpose,
        status=body.status,
        source=body.source,
        method=body.method,
        explicit=body.explicit,
        notice_version=body.notice_version,
        evidence=f"{body.evidence} (recorded by {actor})",
        actor=key.name,
    )
    state = custos.consent(found, actor=key.name)["states"][body.purpose]
    return {"event": event, "profile_id": found, "purpose": body.purpose, "state": state}
