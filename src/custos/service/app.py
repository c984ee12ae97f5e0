"""The Python API of custos: one object per store, one method per workflow.

The CLI, and later the REST API and web UI, are thin layers over :class:`Custos`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import func, select

from custos.consent import cache, ledger
from custos.consent.guard import permits, source_categories
from custos.consent.signals import signals_from_event
from custos.consent.taxonomy import UNCLASSIFIED, load_taxonomy
from custos.core.errors import ConfigError, InputError, NotFoundError, StoreError
from custos.core.fields import Kind
from custos.core.keys import load_or_create_key
from custos.core.settings import Settings
from custos.identity import incremental, models, profiles
from custos.identity.resolve import ResolveSummary, resolve
from custos.ingest import normalise
from custos.ingest.mapping import MapFile
from custos.ingest.normalise import FieldError
from custos.ingest.pipeline import (
    IngestSummary,
    ProgressFn,
    default_region,
    ensure_source,
    ingest_file,
)
from custos.service import (
    admin_reads,
    api_reads,
    curation,
    dsr,
    keys,
    reads,
    review,
    tcf_vendors,
)
from custos.service import pii as pii_policy
from custos.store import Store, audit, open_store
from custos.store import tables as t


def audit_files(settings: Settings, url: str) -> tuple[Path, Path]:
    """The audit key file and the audit checkpoint file of the store at ``url`` (the settings
    ``audit_key_file`` and ``audit_checkpoint_file``, or their defaults)."""
    key_file = Path(settings.audit_key_file or Path(settings.secret_key_file).parent / "audit.key")
    if settings.audit_checkpoint_file:
        return key_file.expanduser(), Path(settings.audit_checkpoint_file).expanduser()
    return key_file.expanduser(), audit.checkpoint_path(key_file.expanduser(), url)


class Custos:
    """A custos instance over one store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.taxonomy = load_taxonomy(Path(settings.taxonomy) if settings.taxonomy else None)
        key_file, checkpoint = audit_files(settings, store.url)
        store.audit_anchor = audit.Anchor(load_or_create_key(key_file), checkpoint)
        #: the store's latest matching model, parsed once, with its scorer of new records
        self.model_cache = models.ModelCache()
        #: the collection keys' identity secrets, each derived once from the secret key file
        self.identity_secrets = keys.IdentitySecrets(settings.secret_key_file)

    @classmethod
    def open(
        cls, db: str | None = None, settings: Settings | None = None, *, create: bool = True
    ) -> Custos:
        """Open the store at ``db`` (default: the ``CUSTOS_DB`` setting), migrating on first use;
        not ``create``, a store that does not exist yet is refused (``StoreError``)."""
        settings = settings or Settings()
        if db:
            settings = settings.model_copy(update={"db": db})
        store = open_store(settings.db, create=create)
        try:
            return cls(store, settings)
        except BaseException:  # e.g. a key file that cannot be read: no connections left open
            store.close()
            raise

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
        pii: str | None = None,
        encoding: str | None = None,
        actor: str = "cli",
    ) -> IngestSummary:
        """Ingest one file into ``source`` (bad rows go to quarantine, nothing is lost; a
        record id seen before with other values becomes a new version of its record).

        Free text is redacted, pseudonymised or kept by ``pii``, else the map file's ``pii``,
        else the ``pii_policy`` setting (redact): what the policy removes is never stored.
        ``encoding`` (of a CSV file) overrides the map file's. A consent event for a purpose the
        taxonomy does not know is quarantined; the extra columns no purpose may use yet are
        listed in ``summary.unclassified``.
        """
        map_file, policy = self.ingest_options(map_path, pii, encoding)
        summary = ingest_file(
            self.store,
            path,
            source,
            settings=self.settings,
            kind=kind,
            map_file=map_file,
            progress=progress,
            suppressed=dsr.suppression_check(self),
            pii=policy,
            purposes=frozenset(self.taxonomy.purposes),
        )
        tagged = self.source_categories().get(summary.source, {})
        summary.unclassified = [
            c for c in summary.extra_columns if self.taxonomy.category(c, tagged) == UNCLASSIFIED
        ]
        if summary.kind is Kind.CONSENTS and summary.stored:
            self.refresh_consent()
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
                    "changed": summary.changed,
                    "pii": policy,
                    "duplicates": summary.duplicates,
                    "quarantined": summary.quarantined,
                },
            )
        return summary

    def ingest_options(
        self, map_path: Path | None, pii: str | None = None, encoding: str | None = None
    ) -> tuple[MapFile, str]:
        """The map file (``encoding`` overriding its own) and the free-text policy of an
        ingestion; refuses unknown encodings, policies and categories."""
        map_file = MapFile.load(map_path) if map_path else MapFile()
        if encoding:
            try:
                map_file = MapFile.model_validate({**map_file.model_dump(), "encoding": encoding})
            except ValidationError as exc:
                raise ConfigError(
                    f"--encoding: {exc.errors()[0]['msg']}", hint="e.g. --encoding cp1252"
                ) from None
        policy = pii_policy.check_policy(pii or map_file.pii or self.settings.pii_policy)
        pii_policy.register(self.settings)
        unknown = sorted(set(map_file.categories.values()) - set(self.taxonomy.categories))
        if unknown:
            raise ConfigError(
                f"map file {map_path} tags columns with unknown categories: {', '.join(unknown)}",
                hint=f"categories are: {', '.join(sorted(self.taxonomy.categories))}",
            )
        return map_file, policy

    def resolve(
        self, *, full: bool = False, retrain: bool = False, actor: str = "cli"
    ) -> ResolveSummary:
        """Build or update the profiles (stable ids are kept).

        By default, when a matching model is saved and profiles exist, only the records and
        interactions in no profile yet are attached (incremental); ``full`` rebuilds every
        profile from every record; ``retrain`` trains and saves a new model version first (and
        implies ``full``).
        """
        saved = None
        if self.settings.probabilistic_matching and not (full or retrain):
            with self.store.read() as conn:
                has_profiles = conn.execute(select(t.profile_members.c.raw_id).limit(1)).first()
                saved = self.model_cache.latest(conn) if has_profiles else None
        if saved is not None:
            summary = incremental.attach(self.store, self.settings, saved, actor=actor)
            # Only the touched profiles' consent states change; consent events themselves are
            # brought up to date when they are ingested or recorded.
            if summary.touched and summary.previous_graph is not None:
                with self.store.write() as conn:
                    cache.refresh_profiles(
                        self.store, conn, summary.touched, was=summary.previous_graph
                    )
        else:
            summary = resolve(self.store, self.settings, retrain=retrain, actor=actor)
            clock = time.perf_counter()
            self.refresh_consent(full=True)
            summary.phases["consent"] = time.perf_counter() - clock
        with self.store.write() as conn:
            audit.append(
                conn,
                actor=actor,
                action="resolve",
                detail={
                    "mode": summary.mode,
                    "model_version": summary.model_version,
                    "profiles": summary.profiles,
                    "created": summary.created,
                    "merged": summary.merged,
                },
            )
        return summary

    def match_models(self) -> list[dict[str, Any]]:
        """The saved matching model versions, newest first."""
        with self.store.read() as conn:
            return models.history(conn)

    def lookup_identifier(self, key: str) -> tuple[str, str] | None:
        """The identifier a look-up key names, normalised: ``("email", …)`` or ``("phone",
        …)``; None for anything else (a profile id)."""
        try:
            if "@" in key:
                email = normalise.email(key)
                return ("email", email) if email else None
            if any(c.isdigit() for c in key):
                phone = normalise.phone(key, default_region(self.settings))
                return ("phone", phone) if phone else None
        except FieldError:
            return None
        return None

    def find_profile(self, key: str) -> str:
        """The active profile id for a profile id, an e-mail or a phone number."""
        with self.store.read() as conn:
            found = profiles.canonical_profile_id(conn, key)
            if found:
                return found
            candidates: list[str] = []
            named = self.lookup_identifier(key)
            if named is not None and named[0] == "email":
                candidates = profiles.profiles_by_identifier(conn, "email", named[1])
            elif named is not None:
                candidates = api_reads.profiles_by_phone(conn, named[1])
        if not candidates:
            raise NotFoundError(
                "no profile matches that key", hint="give a profile id, an e-mail or a phone"
            )
        if len(candidates) > 1:
            raise InputError(
                f"the key matches {len(candidates)} profiles (a shared identifier)",
                hint="give another identifier of the person, or their profile id",
            )
        return candidates[0]

    def profile(
        self, key: str, *, purpose: str | None, actor: str = "cli", as_of: datetime | None = None
    ) -> dict[str, Any]:
        """A profile as ``purpose`` may see it: golden record with provenance, identifiers,
        member records and interactions (refused without a lawful basis; audited)."""
        return reads.guarded_profile(
            self, self.find_profile(key), purpose, actor=actor, as_of=as_of
        )

    def export_profiles(
        self, purpose: str | None, *, actor: str = "cli"
    ) -> Iterator[dict[str, Any]]:
        """Every profile ``purpose`` may see, with the fields it may see (audited)."""
        return reads.export_profiles(self, purpose, actor=actor)

    def source_categories(self) -> dict[str, dict[str, str]]:
        """Source → {extra column → data category}, as tagged by map files."""
        with self.store.read() as conn:
            return source_categories(conn)

    # -- consent -----------------------------------------------------------------------------
    def refresh_consent(self, purposes: Iterable[str] | None = None, *, full: bool = False) -> None:
        """Bring the materialised consent states up to date (reads are correct without it; this
        keeps bulk reads fast). Runs after resolution and after consent is recorded."""
        with self.store.write() as conn:
            if purposes is None:
                purposes = (
                    conn.execute(select(t.consent_events.c.purpose).distinct()).scalars().all()
                )
            for purpose in sorted(set(purposes)):
                cache.refresh(self.store, conn, purpose, full=full)

    def consent(
        self, key: str, *, as_of: datetime | None = None, actor: str = "cli"
    ) -> dict[str, Any]:
        """A person's consent ledger and the state per purpose (now, or as of a time)."""
        profile_id = self.find_profile(key)
        with self.store.read() as conn:
            events = ledger.events_by_profile(conn, None, [profile_id]).get(profile_id, [])
            rows = ledger.ledger_rows(conn, [e.id for e in events])
            possible = (
                ledger.possible_links(conn, profile_id)
                if any(e.stream.startswith(ledger.POSSIBLE_STREAM) for e in events)
                else []
            )
        by_purpose: dict[str, list[ledger.LedgerEvent]] = {}
        for event in events:
            by_purpose.setdefault(event.purpose, []).append(event)
        borrowed = {e.id for e in events if e.stream.startswith(ledger.POSSIBLE_STREAM)}
        states = {}
        for name, purpose in sorted(self.taxonomy.purposes.items()):
            state = ledger.derive_state(by_purpose.get(name, []), as_of)
            states[name] = {
                "status": state.status,
                "explicit": state.explicit,
                "since": state.since.isoformat() if state.since else None,
                "basis": purpose.basis.value,
                "allowed": permits(purpose, state),
                # the state rests on events of a possible match (restrictions only)
                "via_possible_match": bool(borrowed.intersection(state.event_ids)),
            }
        for row in rows:
            row["via_possible_match"] = row["id"] in borrowed
        with self.store.write() as conn:
            audit.append(
                conn,
                actor=actor,
                action="consent.show",
                purpose="consent_management",
                subjects=[profile_id],
            )
        return {
            "profile_id": profile_id,
            "as_of": as_of.isoformat() if as_of else None,
            "states": states,
            # records of other profiles scored close to this one's: their restrictions apply
            "possible_matches": possible,
            "ledger": [
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
                for row in rows
            ],
        }

    def tcf_vendor(
        self, key: str, *, purpose: str, vendor: int, actor: str = "cli"
    ) -> dict[str, Any]:
        """May the person's data go to IAB TCF vendor ``vendor`` for ``purpose``? Only when the
        guard allows the purpose and the person's TC string allows the vendor (audited)."""
        return tcf_vendors.vendor_decision(self, key, purpose=purpose, vendor=vendor, actor=actor)

    def record_consent(
        self,
        key: str,
        *,
        purpose: str,
        status: str,
        source: str,
        method: str = "manual",
        explicit: bool = False,
        notice_version: str | None = None,
        evidence: str | None = None,
        at: datetime | None = None,
        actor: str = "cli",
    ) -> int:
        """Append a consent event for the person behind ``key`` (a profile id, e-mail or phone)."""
        self.taxonomy.purpose(purpose)
        profile_id = self.find_profile(key)
        with self.store.write() as conn:
            source_id = ensure_source(conn, source, Kind.CONSENTS)
            event_id = ledger.append_event(
                conn,
                source_id=source_id,
                profile_id=profile_id,
                purpose=purpose,
                status=status,
                at=at or datetime.now(UTC),
                method=method,
                explicit=explicit,
                notice_version=notice_version,
                evidence=evidence,
            )
            cache.refresh(self.store, conn, purpose)
            audit.append(
                conn,
                actor=actor,
                action=f"consent.{status}",
                purpose=purpose,
                subjects=[profile_id],
                detail={"event": event_id, "source": source, "method": method},
            )
        return event_id

    def record_signals(
        self,
        message: dict[str, Any],
        *,
        identifiers: dict[str, str],
        source: str,
        headers: dict[str, str] | None = None,
        actor: str = "collect",
    ) -> tuple[list[int], list[str]]:
        """Turn the consent signals of one collected event (Segment or RudderStack shape, TCF
        string, GPC) into ledger events for the person with these normalised identifiers (the
        caller vouches for them: collection's own path keeps unverified calls from granting).
        Events are timed now; a signal's own time (a TC string's last update) is the client's
        claim, kept in the evidence.

        Returns the new event ids and the problems (unreadable signals are reported, not guessed).
        """
        found, problems = signals_from_event(message, self.taxonomy.signals, headers)
        when = datetime.now(UTC)
        ids: list[int] = []
        with self.store.write() as conn:
            source_id = ensure_source(conn, source, Kind.CONSENTS)
            for signal in found:
                if signal.purpose not in self.taxonomy.purposes:
                    problems.append(f"signal maps to unknown purpose {signal.purpose}")
                    continue
                ids.append(
                    ledger.append_event(
                        conn,
                        source_id=source_id,
                        identifiers=identifiers,
                        purpose=signal.purpose,
                        status=signal.status,
                        at=when,
                        method=signal.method,
                        evidence=signal.evidence
                        + (f"; client time {signal.at.isoformat()}" if signal.at else ""),
                    )
                )
            for purpose in sorted(
                {s.purpose for s in found if s.purpose in self.taxonomy.purposes}
            ):
                cache.refresh(self.store, conn, purpose)
            if ids:
                audit.append(
                    conn,
                    actor=actor,
                    action="consent.signal",
                    detail={"events": ids, "source": source},
                )
        return ids, problems

    # -- audit ----------------------------------------------------------------------------------
    def audit_verify(self, checkpoints: Iterable[Path] = ()) -> audit.Finding | None:
        """What shows the audit log was changed, truncated or rewritten (checked against its
        key, its checkpoint file and any exported ``checkpoints``), or None when intact."""
        anchor = self.store.audit_anchor
        assert anchor is not None
        extra = [audit.Checkpoint.load(path, anchor.key) for path in checkpoints]
        with self.store.read() as conn:
            return audit.verify(conn, anchor, extra)

    def audit_checkpoint(self) -> bytes:
        """The signed head of the verified audit log (JSON), also recorded in the checkpoint
        file; refused when the log does not verify."""
        anchor = self.store.audit_anchor
        assert anchor is not None
        with self.store.read() as conn:
            finding = audit.verify(conn, anchor)
            if finding is not None:
                raise StoreError(finding.reason, hint="see custos audit verify")
            head = audit.head(conn)
        anchor.advance(head)
        return head.signed(anchor.key)

    def audit_entries(
        self, *, profile: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Audit entries, newest first, optionally those that touched one profile."""
        wanted = self.find_profile(profile) if profile else None
        out: list[dict[str, Any]] = []
        with self.store.read() as conn:
            query = select(t.audit_log).order_by(t.audit_log.c.id.desc())
            result = conn.execution_options(yield_per=500).execute(query)
            for row in result:
                detail = orjson.loads(row.detail or "{}")
                subjects = reads.entry_subjects(row.subjects, detail)
                if wanted and wanted not in subjects:
                    continue
                detail.pop("subjects_z", None)
                out.append(
                    {
                        "id": row.id,
                        "at": row.at.isoformat(),
                        "actor": row.actor,
                        "action": row.action,
                        "purpose": row.purpose,
                        "subjects": subjects
                        if len(subjects) <= 20
                        else f"{len(subjects)} profiles",
                        "detail": detail,
                    }
                )
                if len(out) >= limit:
                    break
            result.close()  # leaving early: release the server-side cursor (PostgreSQL)
        return out

    def explain(self, key: str, *, actor: str = "cli") -> dict[str, Any]:
        """Why each record belongs to the profile (links with rule and weight, decisions)."""
        return curation.explain(self, key, actor=actor)

    def unmerge(
        self, key: str, records: list[str], *, actor: str = "cli", reason: str = ""
    ) -> dict[str, Any]:
        """Split records (SOURCE:RECORD_ID) off a profile; later runs keep them apart."""
        return curation.unmerge(self, key, records, actor=actor, reason=reason)

    def merge(self, first: str, second: str, *, actor: str = "cli", reason: str = "") -> str:
        """Join two profiles for good; returns the surviving (older) id."""
        return curation.merge(self, first, second, actor=actor, reason=reason)[0]

    def review_queue(
        self, *, limit: int = 50, offset: int = 0, status: str | None = None, actor: str = "cli"
    ) -> dict[str, Any]:
        """Pairs resolution scored but did not link, strongest first, waiting for a person's
        decision (record references and match weights only; audited)."""
        return review.review_queue(self, limit=limit, offset=offset, status=status, actor=actor)

    def review_decide(
        self,
        candidate_id: int,
        *,
        accept: bool,
        actor: str = "cli",
        reason: str = "",
        expect: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Accept (join for good) or reject (keep apart for good) a pair of the review queue;
        with ``expect`` (its two records as listed), refused if the id names another pair now."""
        return review.decide(
            self, candidate_id, accept=accept, actor=actor, reason=reason, expect=expect
        )

    def xref(self, *, actor: str | None = None) -> Iterator[tuple[str, str, str]]:
        """(source, record_id, profile_id) for every ingested record and interaction: ids only,
        no personal values. With an ``actor``, the export is written to the audit log."""
        rows = 0
        try:
            with self.store.read() as conn:
                for row in profiles.iter_xref(conn):
                    rows += 1
                    yield row
        finally:  # an export stopped early is audited too, with the rows it handed out
            if actor:
                with self.store.write() as conn:
                    audit.append(
                        conn,
                        actor=actor,
                        action="export.xref",
                        purpose="identity_curation",
                        detail={"rows": rows},
                    )

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
                "quarantined": count(t.quarantine, admin_reads.is_open()),
            }

    def quarantine(
        self, *, source: str | None = None, limit: int = 100, open_only: bool = True
    ) -> list[dict[str, Any]]:
        """Quarantined rows (newest first): where they are, what is wrong and how to fix it;
        the open ones (still waiting), or with ``open_only=False`` the closed ones too (with
        the time their rows landed)."""
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
                t.quarantine.c.closed_at,
            )
            .join(t.sources, t.sources.c.id == t.quarantine.c.source_id)
            .order_by(t.quarantine.c.id.desc())
            .limit(limit)
        )
        if source:
            query = query.where(t.sources.c.name == source)
        if open_only:
            query = query.where(admin_reads.is_open())
        with self.store.read() as conn:
            return [{str(k): v for k, v in r.items()} for r in conn.execute(query).mappings()]
