"""The consent overview for the people who run custos: consent per purpose (counts only, no
persons). The audit log is in :mod:`custos.api.audit`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from custos.api.auth import choose_purpose
from custos.api.deps import App, Reader
from custos.api.errors import answers
from custos.service import api_reads

router = APIRouter(tags=["overview"])


class Overview(BaseModel):
    """Per purpose: its lawful basis and counts of profiles by consent state."""

    purposes: list[dict[str, Any]]


@router.get("/v1/consent/overview", response_model=None, responses=answers(Overview, 400, 401, 403))
def consent_overview(custos: App, key: Reader) -> dict[str, Any]:
    """Per purpose: its lawful basis and how many profiles granted, denied or withdrew, or have
    no record (admin keys, or keys bound to consent_management)."""
    if not key.allows("admin"):
        choose_purpose(key, "consent_management")
    return {"purposes": api_reads.consent_overview(custos, actor=key.name)}
