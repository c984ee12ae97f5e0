"""``custos.admin``: what the store holds (counts, quarantined rows, matching model versions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from custos.identity import models
from custos.service import admin_reads
from custos.service.facades.base import Facade, Result
from custos.store import tables as t


@dataclass(frozen=True, slots=True)
class StoreStats(Result):
    """Counts of what the store holds."""

    sources: int
    records: int
    interactions: int
    consent_events: int
    #: active profiles
    profiles: int
    #: profile ids merged into another (they redirect to their survivor)
    merged_profile_ids: int
    #: records and interactions linked to a profile
    linked: int
    #: open quarantined rows
    quarantined: int


@dataclass(frozen=True, slots=True)
class QuarantinedRow(Result):
    """A quarantined row: where it is, what is wrong and how to fix it."""

    id: int
    source: str
    kind: str
    file_name: str | None
    line_no: int | None
    record_id: str | None
    field: str | None
    reason: str
    fix: str | None
    #: when the row landed after all (None while it waits)
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ModelVersion(Result):
    """A saved matching model version (without its parameters)."""

    version: int
    design: str
    trained_at: str
    trained_on: int
    threshold: float


class AdminFacade(Facade):
    """The store at a glance: ``custos.admin.stats()``, ``.quarantined()``, ``.models()``."""

    def stats(self) -> StoreStats:
        """Counts of sources, records, interactions, consent events, profiles, quarantined rows."""
        with self._app.store.read() as conn:

            def count(table: Any, *where: Any) -> int:
                return int(
                    conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
                )

            return StoreStats(
                sources=count(t.sources),
                records=count(t.records),
                interactions=count(t.interactions),
                consent_events=count(t.consent_events),
                profiles=count(t.profiles, t.profiles.c.status == "active"),
                merged_profile_ids=count(t.profiles, t.profiles.c.status == "merged"),
                linked=count(t.profile_members),
                quarantined=count(t.quarantine, admin_reads.is_open()),
            )

    def quarantined(
        self, *, source: str | None = None, limit: int = 100, open_only: bool = True
    ) -> list[QuarantinedRow]:
        """Quarantined rows (newest first); the open ones (still waiting), or with
        ``open_only=False`` the closed ones too (with the time their rows landed)."""
        query = (
            admin_reads.quarantine_entries("closed_at")
            .order_by(t.quarantine.c.id.desc())
            .limit(limit)
        )
        if source:
            query = query.where(t.sources.c.name == source)
        if open_only:
            query = query.where(admin_reads.is_open())
        with self._app.store.read() as conn:
            return [QuarantinedRow(**row) for row in conn.execute(query).mappings()]

    def models(self) -> list[ModelVersion]:
        """The saved matching model versions, newest first."""
        with self._app.store.read() as conn:
            return [ModelVersion(**row) for row in models.history(conn)]
