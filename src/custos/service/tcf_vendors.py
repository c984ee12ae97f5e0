"""May a person's data go to an IAB TCF vendor for a purpose? Both the guard and the TC string
must say yes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from custos.consent import ledger
from custos.consent.guard import Guard
from custos.consent.ledger import GRANTED
from custos.consent.signals import tcf_vendors
from custos.store import audit
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos


def vendor_decision(
    app: Custos, key: str, *, purpose: str, vendor: int, actor: str = "cli"
) -> dict[str, Any]:
    """Yes only when the guard allows ``purpose`` for the person now and the person's latest TC
    string event for the purpose is a grant whose vendors include ``vendor`` (the vendor's
    consent, or legitimate interest where the purpose rests on it, and the publisher's
    restrictions, weighed when the string was read). No TC string grant → no (fail closed).
    Audited under ``consent_management``."""
    profile_id = app.find_profile(key)
    with app.store.read() as conn:
        allowed = Guard(app.taxonomy).access(conn, purpose, [profile_id]).allowed(profile_id)
        events = ledger.events_by_profile(conn, purpose, [profile_id], possible=False)
        ids = [e.id for e in events.get(profile_id, [])]
        latest = (
            conn.execute(
                select(
                    t.consent_events.c.id, t.consent_events.c.status, t.consent_events.c.evidence
                )
                .where(t.consent_events.c.id.in_(ids), t.consent_events.c.method == "tcf")
                .order_by(t.consent_events.c.timestamp.desc(), t.consent_events.c.id.desc())
                .limit(1)
            ).first()
            if ids
            else None
        )
    if not allowed:
        answer, reason = False, f"the guard refuses {purpose} for this person"
    elif latest is None or latest.status != GRANTED:
        answer, reason = False, f"no TC string grants {purpose} for this person"
    elif vendor not in tcf_vendors(latest.evidence):
        answer, reason = False, f"the TC string (event {latest.id}) does not allow vendor {vendor}"
    else:
        answer, reason = True, f"{purpose} is allowed and the TC string (event {latest.id}) "
        reason += f"allows vendor {vendor}"
    audit.record(
        app.store,
        actor,
        "consent.vendor",
        purpose="consent_management",
        subjects=[profile_id],
        detail={"purpose": purpose, "vendor": vendor, "allowed": answer},
    )
    return {
        "profile_id": profile_id,
        "purpose": purpose,
        "vendor": vendor,
        "allowed": answer,
        "reason": reason,
    }
