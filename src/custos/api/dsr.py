"""The data-subject request API (admin keys only): access (Art. 15), portability (Art. 20),
rectification (Art. 16), restriction (Art. 18) and erasure (Art. 17).

The person's key (profile id, e-mail or phone) travels in the request body, never in a URL, so it
stays out of access logs. Requests are tracked and audited as the CLI's are (purpose
``legal_compliance``), with the API key's name as the actor. Reports are made in memory and
answered directly: nothing of the person is written to a file.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from custos.api.deps import Admin, App
from custos.api.errors import ApiError, answers, responses
from custos.service import dsr

router = APIRouter(prefix="/v1/dsr", tags=["data-subject requests"])

#: The standalone report has no scripts and no external assets; forbid them outright.
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
#: A request reference: ``dsr-12`` or ``12`` (ASCII digits that fit the store's integer).
REF = re.compile(r"(?:dsr-)?[0-9]{1,18}", re.IGNORECASE)
KEY_DESCRIPTION = "The person: a profile id, an e-mail or a phone number."


class Subject(BaseModel):
    """The person a request is about."""

    key: str = Field(min_length=1, description=KEY_DESCRIPTION)


class Rectify(Subject):
    """One attribute to correct."""

    attribute: str = Field(min_length=1)
    value: str
    reason: str = ""


class Restrict(Subject):
    """Restrict processing, or lift the restriction."""

    reason: str = ""
    lift: bool = False


class Erase(Subject):
    """Erase the person everywhere; ``confirm`` must be true."""

    confirm: bool = False


class State(BaseModel):
    """A request's reference, kind, subject, state and steps (ids and counts only)."""

    request: str
    kind: str
    profile_id: str | None
    state: str
    steps: list[dict[str, Any]]
    found_by: dict[str, Any] | None = Field(
        description="Which identifier found the person, in which sources (never values)."
    )


class Access(State):
    """The request, and the person's complete access report."""

    report: dict[str, Any]


class Export(State):
    """The request, and the data the person provided."""

    data: dict[str, Any]


class Erased(State):
    """The request, and its receipt (who to notify)."""

    receipt: dict[str, Any] | None


class Shown(BaseModel):
    """A request with its steps and result."""

    request: str
    kind: str
    profile_id: str | None
    state: str
    actor: str
    created_at: str
    updated_at: str
    steps: list[dict[str, Any]]
    result: dict[str, Any]


#: a request about a person: the admin key, the person found, the body valid
ABOUT = (400, 401, 403, 404, 422)


def _ref(request_id: str) -> str:
    """The reference, if it can name a request (else 404 before the store is asked)."""
    if not REF.fullmatch(request_id):
        raise ApiError(404, "not a request reference", hint="write dsr-12 or 12")
    return request_id


def _state(shown: dict[str, Any]) -> dict[str, Any]:
    """A request's reference, kind, subject id, state and steps (ids and counts only), and
    which identifier found the person, in which sources (kinds and names, never values)."""
    found = {"found_by": shown["result"].get("found_by")}
    return {**{k: shown[k] for k in ("request", "kind", "profile_id", "state", "steps")}, **found}


@router.post("/access", response_model=None, responses=answers(Access, *ABOUT))
def access(custos: App, key: Admin, body: Subject) -> dict[str, Any]:
    """Art. 15: the person's complete access report (JSON); its HTML is at
    ``/v1/dsr/{request}/report.html``."""
    request, report = dsr.access_in_memory(custos, body.key, actor=key.name)
    return {**_state(request.as_dict()), "report": report}


@router.post("/export", response_model=None, responses=answers(Export, *ABOUT))
def export(custos: App, key: Admin, body: Subject) -> dict[str, Any]:
    """Art. 20: the data the person provided, in a portable form (JSON)."""
    request, data = dsr.export_in_memory(custos, body.key, actor=key.name)
    return {**_state(request.as_dict()), "data": data}


@router.post("/rectify", response_model=None, responses=answers(State, *ABOUT))
def rectify(custos: App, key: Admin, body: Rectify) -> dict[str, Any]:
    """Art. 16: correct one attribute (a new record that becomes its provenance)."""
    request = dsr.rectify(
        custos,
        body.key,
        attribute=body.attribute,
        value=body.value,
        reason=body.reason,
        actor=key.name,
    )
    return _state(request.as_dict())


@router.post("/restrict", response_model=None, responses=answers(State, *ABOUT))
def restrict(custos: App, key: Admin, body: Restrict) -> dict[str, Any]:
    """Art. 18: restrict processing (every purpose but legal obligation), or lift it."""
    request = dsr.restrict(custos, body.key, reason=body.reason, lift=body.lift, actor=key.name)
    return _state(request.as_dict())


@router.post("/erase", response_model=None, responses=answers(Erased, *ABOUT))
def erase(custos: App, key: Admin, body: Erase) -> dict[str, Any]:
    """Art. 17: erase the person everywhere; answers the receipt (Art. 19: who to notify)."""
    if not body.confirm:
        raise ApiError(
            400,
            "erasure deletes the person for good: send confirm: true",
            hint='{"key": …, "confirm": true}',
        )
    request = dsr.erase(custos, body.key, actor=key.name)
    return {**_state(request.as_dict()), "receipt": request.result.get("receipt")}


@router.get("/{request_id}", response_model=None, responses=answers(Shown, *ABOUT))
def show(custos: App, key: Admin, request_id: str) -> dict[str, Any]:
    """A request's state and steps (ids and counts only)."""
    return dsr.show(custos, _ref(request_id))


@router.get(
    "/{request_id}/report.html",
    response_class=Response,
    responses={
        200: {
            "description": "The report.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **responses(*ABOUT),
    },
)
def report_html(custos: App, key: Admin, request_id: str) -> Response:
    """The access report of a completed access request as a standalone HTML page."""
    page = dsr.access_html(custos, _ref(request_id), actor=key.name)
    return Response(page, media_type="text/html; charset=utf-8", headers=REPORT_HEADERS)
