"""The Python API of custos: one object per store, one method per workflow.

The CLI, and later the REST API and web UI, are thin layers over :class:`Custos`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from custos.consent import cache
from custos.consent.guard import source_categories
from custos.consent.taxonomy import UNCLASSIFIED, load_taxonomy
from custos.core.errors import ConfigError
from custos.core.fields import Kind
from custos.core.keys import load_or_create_key
from custos.core.settings import Settings
from custos.identity import incremental, models, profiles
from custos.identity.resolve import ResolveSummary, resolve
from custos.ingest.mapping import MapFile
from custos.ingest.pipeline import (
    IngestSummary,
    ProgressFn,
    ReadRules,
    ingest_file,
)
from custos.ingest.rows import Memos
from custos.service import dsr, keys, reads
from custos.service import pii as pii_policy
from custos.service.facades import (
    AdminFacade,
    AuditFacade,
    CollectFacade,
    ConsentFacade,
    DsrFacade,
    InsightFacade,
    ProfilesFacade,
)
from custos.service.facades.base import as_dict, as_dicts, delegate
from custos.service.facades.consent import events_and_problems
from custos.service.street_keys import rekey_streets
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
    """A custos instance over one store.

    Its workflows are grouped in sub-facades that return frozen dataclasses:
    :attr:`profiles`, :attr:`consent`, :attr:`dsr`, :attr:`insight`, :attr:`collect`,
    :attr:`audit` and :attr:`admin`. The methods that return dicts are the compatibility
    surface: each delegates to its facade (``custos.stats()`` is ``custos.admin.stats()`` as a
    dict; ``custos.consent(key)`` is ``custos.consent.show(key)`` as a dict).
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.profiles = ProfilesFacade(self)
        self.consent = ConsentFacade(self)
        self.dsr = DsrFacade(self)
        self.insight = InsightFacade(self)
        self.collect = CollectFacade(self)
        self.audit = AuditFacade(self)
        self.admin = AdminFacade(self)
        self.taxonomy = load_taxonomy(Path(settings.taxonomy) if settings.taxonomy else None)
        key_file, checkpoint = audit_files(settings, store.url)
        store.audit_anchor = audit.Anchor(load_or_create_key(key_file), checkpoint)
        #: the store's latest matching model, parsed once, with its scorer of new records
        self.model_cache = models.ModelCache()
        #: the collection keys' identity secrets, each derived once from the secret key file
        self.identity_secrets = keys.IdentitySecrets(settings.secret_key_file)
        #: the normal forms ingestion remembers (cleared by an erasure)
        self.memos = Memos()
        #: the ids of the sources this instance has written to (see :class:`sink.SourceIds`)
        self.source_ids: dict[tuple[str, Kind], int] = {}

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

    # -- compatibility surface: the workflows as methods, results as dicts ---------------------
    lookup_identifier = delegate("profiles", ProfilesFacade.lookup)
    find_profile = delegate("profiles", ProfilesFacade.find)
    profile = delegate("profiles", ProfilesFacade.read)
    explain = delegate("profiles", ProfilesFacade.explain, as_dict)
    merge = delegate("profiles", ProfilesFacade.merge)
    unmerge = delegate("profiles", ProfilesFacade.unmerge, as_dict)
    review_queue = delegate("profiles", ProfilesFacade.review_queue, as_dict)
    review_decide = delegate("profiles", ProfilesFacade.review_decide, as_dict)
    refresh_consent = delegate("consent", ConsentFacade.refresh)
    record_consent = delegate("consent", ConsentFacade.record)
    record_signals = delegate("consent", ConsentFacade.signals, events_and_problems)
    tcf_vendor = delegate("consent", ConsentFacade.vendor, as_dict)
    audit_verify = delegate("audit", AuditFacade.verify)
    audit_checkpoint = delegate("audit", AuditFacade.checkpoint)
    audit_entries = delegate("audit", AuditFacade.entries, as_dicts)
    stats = delegate("admin", AdminFacade.stats, as_dict)
    quarantine = delegate("admin", AdminFacade.quarantined, as_dicts)
    match_models = delegate("admin", AdminFacade.models, as_dicts)

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
        rules = self.read_rules(map_path, pii, encoding)
        summary = ingest_file(self.store, path, source, rules, kind=kind, progress=progress)
        tagged = self.source_categories().get(summary.source, {})
        summary.unclassified = [
            c for c in summary.extra_columns if self.taxonomy.category(c, tagged) == UNCLASSIFIED
        ]
        if summary.kind is Kind.CONSENTS and summary.stored:
            self.refresh_consent()
        audit.record(
            self.store,
            actor,
            "ingest",
            detail={
                "source": summary.source,
                "kind": summary.kind.value,
                "file": summary.file,
                "read": summary.read,
                "stored": summary.stored,
                "changed": summary.changed,
                "pii": rules.pii,
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
        unknown = sorted(set(map_file.categories.values()) - set(self.taxonomy.categories))
        if unknown:
            raise ConfigError(
                f"map file {map_path} tags columns with unknown categories: {', '.join(unknown)}",
                hint=f"categories are: {', '.join(sorted(self.taxonomy.categories))}",
            )
        return map_file, policy

    def read_rules(
        self, map_path: Path | None, pii: str | None = None, encoding: str | None = None
    ) -> ReadRules:
        """The rules an ingestion (or a quarantine retry) reads rows by: the map file and
        free-text policy of :meth:`ingest_options`, the taxonomy's purposes and the check that
        keeps erased persons' rows out."""
        map_file, policy = self.ingest_options(map_path, pii, encoding)
        return ReadRules(
            settings=self.settings,
            map_file=map_file,
            suppressed=dsr.suppression_check(self),
            pii=policy,
            purposes=frozenset(self.taxonomy.purposes),
            text_filter=pii_policy.text_filter(self.settings, policy),
            memos=self.memos,
        )

    def resolve(
        self,
        *,
        full: bool = False,
        retrain: bool = False,
        actor: str = "cli",
        progress: Callable[[str], None] | None = None,
    ) -> ResolveSummary:
        """Build or update the profiles (stable ids are kept).

        By default, when a matching model is saved and profiles exist, only the records and
        interactions in no profile yet are attached (incremental); ``full`` rebuilds every
        profile from every record, scoring pairs on the configured engine (``engine``);
        ``retrain`` trains and saves a new model version first (and implies ``full``).
        ``progress`` is told each phase of a full run as it starts. Street keys of an older
        form are made again first (:func:`~custos.service.street_keys.rekey_streets`).
        """
        rekey_streets(self.store)
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
            summary = resolve(
                self.store, self.settings, retrain=retrain, actor=actor, progress=progress
            )
            clock = time.perf_counter()
            self.refresh_consent(full=True)
            summary.phases["consent"] = time.perf_counter() - clock
        audit.record(
            self.store,
            actor,
            "resolve",
            detail={
                "mode": summary.mode,
                "model_version": summary.model_version,
                "profiles": summary.profiles,
                "created": summary.created,
                "merged": summary.merged,
                "split": summary.split,
            },
        )
        return summary

    def export_profiles(
        self, purpose: str | None, *, actor: str = "cli"
    ) -> Iterator[dict[str, Any]]:
        """Every profile ``purpose`` may see, with the fields it may see (audited)."""
        return reads.export_profiles(self, purpose, actor=actor)

    def source_categories(self) -> dict[str, dict[str, str]]:
        """Source → {extra column → data category}, as tagged by map files."""
        with self.store.read() as conn:
            return source_categories(conn)

    # -- exports -----------------------------------------------------------------------------
    def xref(self, *, actor: str | None = None) -> Iterator[tuple[str, str, str]]:
        """(source, record_id, profile_id) for every ingested record and interaction: ids only,
        no personal values. With an ``actor``, the export is audited (the rows handed out,
        however it ends) under ``identity_curation``."""
        if not actor:
            with self.store.read() as conn:
                yield from profiles.iter_xref(conn)
            return
        handed = {"rows": 0}
        with (
            reads.GuardSession(
                self, "identity_curation", actor=actor, action="export.xref", detail=handed
            ),
            self.store.read() as conn,
        ):
            for row in profiles.iter_xref(conn):
                handed["rows"] += 1
                yield row
