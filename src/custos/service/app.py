"""The Python API of custos: one object per store, one method per workflow.

The CLI, and later the REST API and web UI, are thin layers over :class:`Custos`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from custos.core.errors import InputError, NotFoundError
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.identity import profiles
from custos.identity.resolve import ResolveSummary, resolve
from custos.ingest import normalise
from custos.ingest.normalise import FieldError
from custos.ingest.pipeline import IngestSummary, ProgressFn, ingest_file
from custos.store import Store, audit, open_store
from custos.store import tables as t


class Custos:
    """A custos instance over one store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    @classmethod
    def open(cls, db: str | None = None, settings: Settings | None = None) -> Custos:
        """Open the store at ``db`` (default: the ``CUSTOS_DB`` setting), migrating on first use."""
        settings = settings or Settings()
        if db:
            settings = settings.model_copy(update={"db": db})
        return cls(open_store(settings.db), settings)

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()

    def __enter__(self) -> Custos:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workflows ------------------------------------------------------------------------------
    def ingest(
        self,
        path: Path,
        source: str,
        *,
        kind: Kind | None = None,
        map_path: Path | None = None,
        progress: ProgressFn | None = None,
        actor: str = "cli",
    ) -> IngestSummary:
        """Ingest one file into ``source`` (bad rows go to quarantine, nothing is lost)."""
        summary = ingest_file(
            self.store,
            path,
            source,
            settings=self.settings,
            kind=kind,
            map_path=map_path,
            progress=progress,
        )
        with self.store.write() as conn:
            audit.append(
                conn,
                actor=actor,
                action="ingest",
                detail={
                    "source": summary.source,
                    "kind": summary.kind.value,
                    "file": summary.file,
                    "read": summary.read,
                    "stored": summary.stored,
                    "duplicates": summary.duplicates,
                    "quarantined": summary.quarantined,
                },
            )
        return summary

    def resolve(self, *, actor: str = "cli") -> ResolveSummary:
        """Rebuild profiles from every record and interaction (stable ids are kept)."""
        summary = resolve(self.store, self.settings)
        with self.store.write() as conn:
            audit.append(
                conn,
                actor=actor,
                action="resolve",
                detail={
                    "profiles": summary.profiles,
                    "created": summary.created,
                    "merged": summary.merged,
                },
            )
        return summary

    def find_profile(self, key: str) -> str:
        """The active profile id for a profile id, an e-mail or a phone number."""
        with self.store.read() as conn:
            found = profiles.canonical_profile_id(conn, key)
            if found:
                return found
            candidates: list[str] = []
            if "@" in key:
                try:
                    email = normalise.email(key)
                except FieldError:
                    email = None
                if email:
                    candidates = profiles.profiles_by_identifier(conn, "email", email)
            elif any(c.isdigit() for c in key):
                try:
                    phone = normalise.phone(key, self.settings.default_region)
                except FieldError:
                    phone = None
                if phone:
                    candidates = profiles.profiles_by_identifier(conn, "phone", phone)
        if not candidates:
            raise NotFoundError(
                "no profile matches that key", hint="give a profile id, an e-mail or a phone"
            )
        if len(candidates) > 1:
            raise InputError(
                f"the key matches {len(candidates)} profiles: {', '.join(candidates)}",
                hint="show one of them by its profile id",
            )
        return candidates[0]

    def profile(
        self, key: str, *, actor: str = "cli", purpose: str | None = None
    ) -> dict[str, Any]:
        """A profile's golden record with provenance, identifiers, members and interactions."""
        profile_id = self.find_profile(key)
        with self.store.read() as conn:
            detail = profiles.profile_detail(conn, profile_id)
        with self.store.write() as conn:
            audit.append(
                conn, actor=actor, action="profile.show", purpose=purpose, subjects=[profile_id]
            )
        return detail

    def xref(self) -> Iterator[tuple[str, str, str]]:
        """(source, record_id, profile_id) for every ingested record and interaction."""
        with self.store.read() as conn:
            yield from profiles.iter_xref(conn)

    def stats(self) -> dict[str, int]:
        """Counts of sources, records, interactions, consent events, profiles, quarantined rows."""
        with self.store.read() as conn:

            def count(table: Any, *where: Any) -> int:
                return int(
                    conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
                )

            return {
                "sources": count(t.sources),
                "records": count(t.records),
                "interactions": count(t.interactions),
                "consent_events": count(t.consent_events),
                "profiles": count(t.profiles, t.profiles.c.status == "active"),
                "merged_profile_ids": count(t.profiles, t.profiles.c.status == "merged"),
                "linked": count(t.profile_members),
                "quarantined": count(t.quarantine),
            }

    def quarantine(self, *, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Quarantined rows (newest first): where they are, what is wrong and how to fix it."""
        query = (
            select(
                t.quarantine.c.id,
                t.sources.c.name.label("source"),
                t.quarantine.c.kind,
                t.quarantine.c.file_name,
                t.quarantine.c.line_no,
                t.quarantine.c.record_id,
                t.quarantine.c.field,
                t.quarantine.c.reason,
                t.quarantine.c.fix,
            )
            .join(t.sources, t.sources.c.id == t.quarantine.c.source_id)
            .order_by(t.quarantine.c.id.desc())
            .limit(limit)
        )
        if source:
            query = query.where(t.sources.c.name == source)
        with self.store.read() as conn:
            return [{str(k): v for k, v in r.items()} for r in conn.execute(query).mappings()]
