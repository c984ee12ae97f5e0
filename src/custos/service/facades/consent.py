"""``custos.consent``: a person's consent (the ledger and the state per purpose), recording
consent events and collected signals, and IAB TCF vendor decisions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from custos.consent import cache, ledger
from custos.consent.guard import permits
from custos.consent.signals import signals_from_event
from custos.core.fields import Kind
from custos.ingest.pipeline import ensure_source
from custos.service import tcf_vendors
from custos.service.facades.base import Facade, Result
from custos.store import audit
from custos.store import tables as t


@dataclass(frozen=True, slots=True)
class PurposeState(Result):
    """A person's consent state for one purpose, and whether the purpose may use their data."""

    status: str
    explicit: bool
    #: when the state took effect (ISO 8601), None without any event
    since: str | None
    #: the purpose's lawful basis (``consent``, ``contract``, ``legitimate_interest`` …)
    basis: str
    allowed: bool
    #: the state rests on events of a possible match (restrictions only)
    via_possible_match: bool


@dataclass(frozen=True, slots=True)
class ConsentView(Result):
    """A person's consent ledger and their state per purpose (now, or ``as_of`` a time)."""

    profile_id: str
    as_of: str | None
    states: Mapping[str, PurposeState]
    #: records of other profiles scored close to this one's: their restrictions apply
    possible_matches: tuple[Mapping[str, Any], ...]
    #: the person's consent events, oldest first (times in ISO 8601)
    ledger: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class SignalsRecorded(Result):
    """What the consent signals of one collected event became."""

    #: the new ledger event ids
    events: tuple[int, ...]
    #: signals that could not be read or map to no known purpose (reported, not guessed)
    problems: tuple[str, ...]


def events_and_problems(found: SignalsRecorded) -> tuple[list[int], list[str]]:
    """The recorded signals as (event ids, problems)."""
    return list(found.events), list(found.problems)


@dataclass(frozen=True, slots=True)
class VendorDecision(Result):
    """May the person's data go to an IAB TCF vendor for a purpose, and why."""

    profile_id: str
    purpose: str
    vendor: int
    allowed: bool
    reason: str


class ConsentFacade(Facade):
    """Consent workflows: ``custos.consent.show(key)``, ``.record(…)``, ``.signals(…)``,
    ``.vendor(…)``, ``.refresh()``. Calling it (``custos.consent(key)``) is the compatibility
    surface: :meth:`show` as a dict."""

    def __call__(
        self, key: str, *, as_of: datetime | None = None, actor: str = "cli"
    ) -> dict[str, Any]:
        """Compatibility surface: :meth:`show` as a plain dict."""
        return self.show(key, as_of=as_of, actor=actor).to_dict()

    def show(self, key: str, *, as_of: datetime | None = None, actor: str = "cli") -> ConsentView:
        """A person's consent ledger and the state per purpose (now, or as of a time); audited
        under ``consent_management``."""
        app = self._app
        profile_id = app.find_profile(key)
        with app.store.read() as conn:
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
        for name, purpose in sorted(app.taxonomy.purposes.items()):
            state = ledger.derive_state(by_purpose.get(name, []), as_of)
            states[name] = PurposeState(
                status=state.status,
                explicit=state.explicit,
                since=state.since.isoformat() if state.since else None,
                basis=purpose.basis.value,
                allowed=permits(purpose, state),
                via_possible_match=bool(borrowed.intersection(state.event_ids)),
            )
        audit.record(
            app.store, actor, "consent.show", purpose="consent_management", subjects=[profile_id]
        )
        return ConsentView(
            profile_id=profile_id,
            as_of=as_of.isoformat() if as_of else None,
            states=states,
            possible_matches=tuple(possible),
            ledger=tuple(
                {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
                | {"via_possible_match": row["id"] in borrowed}
                for row in rows
            ),
        )

    def record(
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
        """Append a consent event for the person behind ``key`` (a profile id, e-mail or phone);
        returns its id (audited)."""
        app = self._app
        app.taxonomy.purpose(purpose)
        profile_id = app.find_profile(key)
        with app.store.write() as conn:
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
            cache.refresh(app.store, conn, purpose)
            audit.append(
                conn,
                actor=actor,
                action=f"consent.{status}",
                purpose=purpose,
                subjects=[profile_id],
                detail={"event": event_id, "source": source, "method": method},
            )
        return event_id

    def signals(
        self,
        message: dict[str, Any],
        *,
        identifiers: dict[str, str],
        source: str,
        headers: dict[str, str] | None = None,
        actor: str = "collect",
    ) -> SignalsRecorded:
        """Turn the consent signals of one collected event (Segment or RudderStack shape, TCF
        string, GPC) into ledger events for the person with these normalised identifiers (the
        caller vouches for them: collection's own path keeps unverified calls from granting).
        Events are timed now; a signal's own time (a TC string's last update) is the client's
        claim, kept in the evidence. Unreadable signals are reported, not guessed."""
        app = self._app
        found, problems = signals_from_event(message, app.taxonomy.signals, headers)
        when = datetime.now(UTC)
        ids: list[int] = []
        with app.store.write() as conn:
            source_id = ensure_source(conn, source, Kind.CONSENTS)
            for signal in found:
                if signal.purpose not in app.taxonomy.purposes:
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
            for purpose in sorted({s.purpose for s in found if s.purpose in app.taxonomy.purposes}):
                cache.refresh(app.store, conn, purpose)
            if ids:
                audit.append(
                    conn,
                    actor=actor,
                    action="consent.signal",
                    detail={"events": ids, "source": source},
                )
        return SignalsRecorded(events=tuple(ids), problems=tuple(problems))

    def vendor(self, key: str, *, purpose: str, vendor: int, actor: str = "cli") -> VendorDecision:
        """May the person's data go to IAB TCF vendor ``vendor`` for ``purpose``? Only when the
        guard allows the purpose and the person's TC string allows the vendor (audited)."""
        decision = tcf_vendors.vendor_decision(
            self._app, key, purpose=purpose, vendor=vendor, actor=actor
        )
        return VendorDecision(**decision)

    def refresh(self, purposes: Iterable[str] | None = None, *, full: bool = False) -> None:
        """Bring the materialised consent states up to date (reads are correct without it; this
        keeps bulk reads fast). Runs after resolution and after consent is recorded."""
        app = self._app
        with app.store.write() as conn:
            if purposes is None:
                purposes = (
                    conn.execute(select(t.consent_events.c.purpose).distinct()).scalars().all()
                )
            for purpose in sorted(set(purposes)):
                cache.refresh(app.store, conn, purpose, full=full)
