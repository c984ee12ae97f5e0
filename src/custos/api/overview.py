"""The consent overview for the people who run custos: consent per purpose (counts only, no
persons). The audit log is in :mod:`custos.api.audit`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from custos.api.auth import choose_purpose
from custos.api.deps import App, Reader
from custos.api.errors import answers
from custos.service import api_reads, search

router = APIRouter(tags=["overview"])


class Overview(BaseModel):
    """Per purpose: its lawful basis and counts of profiles by consent state."""

    purposes: list[dict[str, Any]]


class Source(BaseModel):
    """A source: its kind, rows stored, last ingestion, quarantined rows."""

    name: str
    kind: str
    rows: int
    last_ingested_at: str | None
    quarantine_open: int = Field(description="Open quarantine entries of the source.")


class Sources(BaseModel):
    """Every source, by name."""

    items: list[Source]


class PurposeItem(BaseModel):
    """A purpose of the taxonomy."""

    name: str
    basis: str = Field(description="The lawful basis (consent, legitimate_interest, …).")
    description: str
    categories: list[str] = Field(description="The data categories it may use.")


class Purposes(BaseModel):
    """The purposes of the taxonomy."""

    items: list[PurposeItem]


@router.get("/v1/consent/overview", response_model=None, responses=answers(Overview, 400, 401, 403))
def consent_overview(custos: App, key: Reader) -> dict[str, Any]:
    """Per purpose: its lawful basis and how many profiles granted, denied or withdrew, or have
    no record (admin keys, or keys bound to consent_management)."""
    if not key.allows("admin"):
        choose_purpose(key, "consent_management")
    return {"purposes": api_reads.consent_overview(custos, actor=key.name)}


@router.get("/v1/sources", response_model=None, responses=answers(Sources, 401, 403))
def sources(custos: App, key: Reader) -> dict[str, Any]:
    """Each source: kind, rows stored, when it last ingested, quarantined rows (counts only)."""
    return {"items": search.sources(custos)}


@router.get("/v1/purposes", response_model=None, responses=answers(Purposes, 401, 403))
def purposes(custos: App, key: Reader) -> dict[str, Any]:
    """The purposes of the taxonomy: lawful basis, description, the categories each may use."""
    return {"items": search.purposes(custos)}
