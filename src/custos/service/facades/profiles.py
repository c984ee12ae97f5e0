"""``custos.profiles``: find a person, read their profile as a purpose may see it, export, and
curate identity (why records belong together, merge, unmerge, the review queue)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from custos.core.errors import InputError, NotFoundError
from custos.identity import profiles
from custos.identity.resolve import ResolveSummary
from custos.ingest import normalise
from custos.ingest.normalise import FieldError
from custos.ingest.pipeline import default_region
from custos.service import api_reads, curation, reads, review
from custos.service.facades.base import Facade, Result


@dataclass(frozen=True, slots=True)
class GoldenAttribute(Result):
    """A golden attribute with where it came from (no provenance where the purpose may not
    learn of its source)."""

    attribute: str
    value: str
    source: str | None
    record_id: str | None
    observed_at: str | None
    rule: str


@dataclass(frozen=True, slots=True)
class Profile(Result):
    """A profile as a purpose may see it: golden record with provenance, identifiers, member
    records, interactions and the merge evidence (each as far as the purpose may see it)."""

    profile_id: str
    status: str
    created_at: str
    updated_at: str
    golden: tuple[GoldenAttribute, ...]
    identifiers: Mapping[str, list[str]]
    records: tuple[Mapping[str, Any], ...]
    interactions: tuple[Mapping[str, Any], ...]
    interaction_count: int
    evidence: tuple[Mapping[str, Any], ...]
    #: the profile ids merged into this one (they redirect here)
    merged_ids: tuple[str, ...]
    purpose: str

    @classmethod
    def from_dict(cls, shown: Mapping[str, Any]) -> Profile:
        """The profile from its read (:func:`custos.service.reads.guarded_profile`)."""
        return cls(
            **{
                **shown,
                "golden": tuple(GoldenAttribute(**g) for g in shown["golden"]),
                "records": tuple(shown["records"]),
                "interactions": tuple(shown["interactions"]),
                "evidence": tuple(shown["evidence"]),
                "merged_ids": tuple(shown["merged_ids"]),
            }
        )

    def value(self, attribute: str) -> str | None:
        """The golden value of ``attribute``, None when the profile has none (or the purpose
        may not see it)."""
        return next((g.value for g in self.golden if g.attribute == attribute), None)


@dataclass(frozen=True, slots=True)
class ExportedProfile(Result):
    """One profile of an export: the golden attributes and identifiers the purpose may see."""

    profile_id: str
    attributes: Mapping[str, str]
    identifiers: Mapping[str, list[str]]

    def to_dict(self) -> dict[str, Any]:
        """The export's row: ``profile_id``, the attributes, ``identifiers``."""
        return {"profile_id": self.profile_id, **self.attributes, "identifiers": self.identifiers}


@dataclass(frozen=True, slots=True)
class RecordLinks(Result):
    """Why one record belongs to its profile: the links (rule, weight) or decisions."""

    record: str
    why: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Explanation(Result):
    """Why each record belongs to the profile (record references only, no personal values)."""

    profile_id: str
    records: tuple[RecordLinks, ...]
    decisions: tuple[Mapping[str, Any], ...]
    #: pairs resolution scored but did not link: possible matches (whose restrictions apply to
    #: this profile) and conflicts refused
    not_linked: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Unmerged(Result):
    """Records split off a profile: the profile each record is in now, and the re-resolution."""

    profile_id: str
    records: Mapping[str, str | None]
    resolve: ResolveSummary


@dataclass(frozen=True, slots=True)
class ReviewPage(Result):
    """A page of the review queue (record references and match weights only)."""

    items: tuple[Mapping[str, Any], ...]
    total: int


@dataclass(frozen=True, slots=True)
class ReviewDecision(Result):
    """A decided pair of the review queue: each record and the profile it is in now."""

    id: int
    decision: str
    #: the profile both records are in now (accepted), None when kept apart
    profile_id: str | None
    left: Mapping[str, str | None]
    right: Mapping[str, str | None]


class ProfilesFacade(Facade):
    """Profiles: ``custos.profiles.find(key)``, ``.get(key, purpose=…)``, ``.export(purpose)``,
    ``.explain(key)``, ``.merge(a, b)``, ``.unmerge(key, records)``, ``.review_queue()``,
    ``.review_decide(id, accept=…)``."""

    def lookup(self, key: str) -> tuple[str, str] | None:
        """The identifier a look-up key names, normalised: ``("email", …)`` or ``("phone",
        …)``; None for anything else (a profile id)."""
        try:
            if "@" in key:
                email = normalise.email(key)
                return ("email", email) if email else None
            if any(c.isdigit() for c in key):
                phone = normalise.phone(key, default_region(self._app.settings))
                return ("phone", phone) if phone else None
        except FieldError:
            return None
        return None

    def find(self, key: str) -> str:
        """The active profile id for a profile id, an e-mail or a phone number."""
        with self._app.store.read() as conn:
            found = profiles.canonical_profile_id(conn, key)
            if found:
                return found
            candidates: list[str] = []
            named = self.lookup(key)
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

    def get(
        self, key: str, *, purpose: str | None, actor: str = "cli", as_of: datetime | None = None
    ) -> Profile:
        """A profile as ``purpose`` may see it (refused without a lawful basis; audited)."""
        return Profile.from_dict(self.read(key, purpose=purpose, actor=actor, as_of=as_of))

    def read(
        self, key: str, *, purpose: str | None, actor: str = "cli", as_of: datetime | None = None
    ) -> dict[str, Any]:
        """:meth:`get` as the plain dict of a JSON body."""
        return reads.guarded_profile(self._app, self.find(key), purpose, actor=actor, as_of=as_of)

    def export(self, purpose: str | None, *, actor: str = "cli") -> Iterator[ExportedProfile]:
        """Every profile ``purpose`` may see, with the fields it may see (audited, also when
        the caller stops early)."""
        rows = reads.export_profiles(self._app, purpose, actor=actor)
        try:
            for row in rows:
                identifiers = row.pop("identifiers")
                yield ExportedProfile(row.pop("profile_id"), row, identifiers)
        finally:  # stopped early: close the read now, which writes its audit entry
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    def explain(self, key: str, *, actor: str = "cli") -> Explanation:
        """Why each record belongs to the profile (links with rule and weight, decisions)."""
        found = curation.explain(self._app, key, actor=actor)
        return Explanation(
            profile_id=found["profile_id"],
            records=tuple(RecordLinks(r["record"], tuple(r["why"])) for r in found["records"]),
            decisions=tuple(found["decisions"]),
            not_linked=tuple(found["not_linked"]),
        )

    def merge(self, first: str, second: str, *, actor: str = "cli", reason: str = "") -> str:
        """Join two profiles for good; returns the surviving (older) id."""
        return curation.merge(self._app, first, second, actor=actor, reason=reason)[0]

    def unmerge(
        self, key: str, records: list[str], *, actor: str = "cli", reason: str = ""
    ) -> Unmerged:
        """Split records (SOURCE:RECORD_ID) off a profile; later runs keep them apart."""
        return Unmerged(**curation.unmerge(self._app, key, records, actor=actor, reason=reason))

    def review_queue(
        self, *, limit: int = 50, offset: int = 0, status: str | None = None, actor: str = "cli"
    ) -> ReviewPage:
        """Pairs resolution scored but did not link, strongest first, waiting for a person's
        decision (record references and match weights only; audited)."""
        page = review.review_queue(
            self._app, limit=limit, offset=offset, status=status, actor=actor
        )
        return ReviewPage(items=tuple(page["items"]), total=page["total"])

    def review_decide(
        self,
        candidate_id: int,
        *,
        accept: bool,
        actor: str = "cli",
        reason: str = "",
        expect: tuple[str, str] | None = None,
    ) -> ReviewDecision:
        """Accept (join for good) or reject (keep apart for good) a pair of the review queue;
        with ``expect`` (its two records as listed), refused if the id names another pair now."""
        return ReviewDecision(
            **review.decide(
                self._app, candidate_id, accept=accept, actor=actor, reason=reason, expect=expect
            )
        )
