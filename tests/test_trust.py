"""Trust follows the channel: what the public write key may assert (issue 14, items 1-3 and 14).

Each attack is performed against a real ``custos serve`` process over HTTP, on a store the test
prepared: the write key sits in every web page, so whoever holds it must not be able to grant
consent for someone else, attach their e-mail to someone else's profile, or move consent in
time. A grant needs a verified channel: a server-side key, a signed identify, or the preference
centre API.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.errors import NotFoundError
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.service import Custos, keys
from custos.service.collect import collect
from custos.store import tables as t
from tests.conftest import start_serve, write

CRM = """record_id,first_name,last_name,email,customer_id,date_of_birth
r1,Vera,Lindqvist,vera@example.org,C-1001,1984-05-02
r2,Omar,Haddad,omar@example.org,C-1002,1979-11-30
"""


def _settings(folder: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", secret_key_file=str(folder / "secret.key")
    )


@contextmanager
def serve(db: str, folder: Path) -> Iterator[str]:
    """``custos serve`` on ``db`` as its own process (the secret key file of ``folder``)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = start_serve(db, port, {"CUSTOS_SECRET_KEY_FILE": str(folder / "secret.key")})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[str, Custos]]:
    """A store with two customers (sequential customer numbers), resolved; its path and app."""
    db = str(tmp_path / "custos.db")
    with Custos.open(db, _settings(tmp_path)) as app:
        app.ingest(write(tmp_path / "crm.csv", CRM), "crm")
        app.resolve()
        yield db, app


def _ledger(app: Custos, purpose: str) -> list[tuple[str, datetime, str | None]]:
    ce = t.consent_events
    with app.store.read() as conn:
        rows = conn.execute(
            select(ce.c.status, ce.c.timestamp, ce.c.evidence)
            .where(ce.c.purpose == purpose)
            .order_by(ce.c.id)
        ).all()
    return [(r.status, r.timestamp.replace(tzinfo=UTC), r.evidence) for r in rows]


def test_the_write_key_cannot_forge_a_grant_but_restricts_at_once(
    shop: tuple[str, Custos], tmp_path: Path
) -> None:
    """The attack of the review: a track call with the public write key, someone else's
    e-mail in context.traits and categoryPreferences {Advertising: true}, timed in 2082."""
    db, app = shop
    app.record_consent(
        "vera@example.org", purpose="third_party_sharing", status="denied", source="crm",
        method="form",
    )  # fmt: skip
    app.record_consent(
        "vera@example.org", purpose="marketing_email", status="granted", source="crm",
        method="form",
    )  # fmt: skip
    web = keys.create(app, "web", [], "write")
    forged = {
        "writeKey": web,
        "messageId": "forge-1",
        "anonymousId": "attacker-device",
        "event": "Page Viewed",
        "timestamp": "2082-01-01T00:00:00Z",
        "context": {
            "traits": {"email": "vera@example.org"},
            "consent": {"categoryPreferences": {"Advertising": True, "Marketing": False}},
        },
    }
    with serve(db, tmp_path) as base:
        answer = httpx.post(f"{base}/v1/track", json=forged)
    assert answer.status_code == 200, answer.text
    assert answer.json()["consent_events"] == 1  # the restriction only
    states = app.consent("vera@example.org")["states"]
    assert states["third_party_sharing"]["status"] == "denied"
    assert states["third_party_sharing"]["allowed"] is False
    assert [s for s, _, _ in _ledger(app, "third_party_sharing")] == ["denied"]  # no grant
    # The withdrawal acts at once, timed when the server received it; 2082 is a claim.
    assert states["marketing_email"]["allowed"] is False
    status, at, evidence = _ledger(app, "marketing_email")[-1]
    assert status == "denied" and abs(at - datetime.now(UTC)) < timedelta(minutes=5)
    assert evidence and "client time 2082-01-01" in evidence and "identity claimed" in evidence
    # The forged call is stored, its claims kept apart from the columns identity links by.
    with app.store.read() as conn:
        row = conn.execute(
            select(t.interactions.c.email, t.interactions.c.extra, t.interactions.c.timestamp)
            .join(t.raw_records, t.raw_records.c.id == t.interactions.c.raw_id)
            .where(t.raw_records.c.record_id == "forge-1")
        ).one()
    assert row.email is None and '"claims":{"email":"vera@example.org"' in row.extra


def test_a_signed_identify_or_a_server_key_may_grant(
    shop: tuple[str, Custos], tmp_path: Path
) -> None:
    """The site's server signs the user id (HMAC with the key's identity secret): then the
    device's later calls grant for that person. A wrong signature links nothing."""
    db, app = shop
    web = keys.create(app, "web", [], "write")
    backend = keys.create(app, "backend", [], "server")
    secret = bytes.fromhex(keys.identity_secret(app, "web"))
    signature = hmac.new(secret, b"C-1001", hashlib.sha256).hexdigest()
    grant = {"consent": {"categoryPreferences": {"Analytics": True}}}
    with serve(db, tmp_path) as base:
        forged = {"userId": "C-1002", "anonymousId": "dev-x", "context": {"userHash": signature}}
        assert httpx.post(f"{base}/v1/identify", json={**forged, "writeKey": web}).is_success
        refused = {"anonymousId": "dev-x", "event": "E", "context": grant, "writeKey": web}
        assert httpx.post(f"{base}/v1/track", json=refused).json()["consent_events"] == 0
        signed = {"userId": "C-1001", "anonymousId": "dev-v", "context": {"userHash": signature}}
        assert httpx.post(f"{base}/v1/identify", json={**signed, "writeKey": web}).is_success
        later = {"anonymousId": "dev-v", "event": "E", "context": grant, "writeKey": web}
        assert httpx.post(f"{base}/v1/track", json=later).json()["consent_events"] == 1
        personal = {"consent": {"categoryPreferences": {"Personalization": True}}}
        server_call = {"userId": "C-1002", "event": "E", "context": personal}
        answer = httpx.post(
            f"{base}/v1/track", json=server_call, headers={"Authorization": f"Bearer {backend}"}
        )
        assert answer.json()["consent_events"] == 1
    assert app.consent("vera@example.org")["states"]["analytics"]["status"] == "granted"
    assert app.consent("omar@example.org")["states"]["analytics"]["status"] == "none"
    assert app.consent("omar@example.org")["states"]["personalization"]["status"] == "granted"


def test_the_write_key_cannot_attach_an_email_to_someone_elses_profile(
    shop: tuple[str, Custos], tmp_path: Path
) -> None:
    """The attack of the review: identify with the write key, a guessed (sequential) customer
    number and the attacker's e-mail; then a data-subject access request by that e-mail."""
    db, app = shop
    web = keys.create(app, "web", [], "write")
    admin = keys.create(app, "dpo", ["identity_curation"], "admin")
    attack = {
        "writeKey": web,
        "userId": "C-1001",
        "anonymousId": "attacker-device",
        "traits": {"email": "mallory@example.net", "firstName": "Vera"},
    }
    with serve(db, tmp_path) as base:
        assert httpx.post(f"{base}/v1/identify", json=attack).is_success
        after = {"writeKey": web, "anonymousId": "attacker-device", "event": "Viewed"}
        assert httpx.post(f"{base}/v1/track", json=after).is_success
        app.resolve(full=True)
        auth = {"Authorization": f"Bearer {admin}"}
        refused = httpx.post(
            f"{base}/v1/dsr/access", json={"key": "mallory@example.net"}, headers=auth
        )
        assert refused.status_code == 404
        assert "Lindqvist" not in refused.text and "vera" not in refused.text.lower()
        honest = httpx.post(f"{base}/v1/dsr/access", json={"key": "vera@example.org"}, headers=auth)
        assert honest.status_code == 200, honest.text
        assert honest.json()["found_by"] == {"by": "email", "sources": ["crm"]}
    with pytest.raises(NotFoundError):
        app.find_profile("mallory@example.net")
    victim = app.find_profile("vera@example.org")
    with app.store.read() as conn:
        held = conn.execute(
            select(t.profile_identifiers.c.value).where(
                t.profile_identifiers.c.profile_id == victim
            )
        ).scalars()
        assert "mallory@example.net" not in set(held)
        pending = conn.execute(select(t.collect_aliases.c.anonymous_id)).scalars().all()
    assert pending == []  # the unverified identify taught no device → user link
    assert {pid for src, _, pid in app.xref() if src == "web"} == {""}  # linked to no one


def test_the_preference_centre_records_grants_with_method_evidence_and_actor(
    shop: tuple[str, Custos], tmp_path: Path
) -> None:
    """POST /v1/profiles/{id}/consent, for keys bound to consent_management."""
    db, app = shop
    centre = keys.create(app, "preferences", ["consent_management"])
    desk = keys.create(app, "desk", ["customer_service"])
    web = keys.create(app, "web", [], "write")
    victim = app.find_profile("vera@example.org")
    decision = {
        "purpose": "marketing_email",
        "status": "granted",
        "method": "preference_page",
        "evidence": "form v3, notice 2026-10, session 8f2c",
        "actor": "data subject",
        "notice_version": "2026-10",
    }
    with serve(db, tmp_path) as base:
        url = f"{base}/v1/profiles/{victim}/consent"
        for key in (desk, web):
            refused = httpx.post(url, json=decision, headers={"Authorization": f"Bearer {key}"})
            assert refused.status_code in (401, 403)
        bad = httpx.post(
            url, json={**decision, "status": "maybe"}, headers={"Authorization": f"Bearer {centre}"}
        )
        assert bad.status_code == 422
        done = httpx.post(url, json=decision, headers={"Authorization": f"Bearer {centre}"})
        assert done.status_code == 200, done.text
        assert done.json()["state"]["status"] == "granted" and done.json()["state"]["allowed"]
        withdrawn = httpx.post(
            url,
            json={**decision, "status": "withdrawn", "evidence": "unsubscribe link, mail 77"},
            headers={"Authorization": f"Bearer {centre}"},
        )
        assert withdrawn.json()["state"]["status"] == "withdrawn"
    [(status, _, evidence), *_] = _ledger(app, "marketing_email")
    assert status == "granted"
    assert (
        evidence
        == "form v3, notice 2026-10, session 8f2c (recorded by preferences for data subject)"
    )
    with app.store.read() as conn:
        actions = conn.execute(
            select(t.audit_log.c.actor, t.audit_log.c.action).where(
                t.audit_log.c.action.in_(["consent.granted", "consent.withdrawn"])
            )
        ).all()
    assert [tuple(a) for a in actions] == [
        ("preferences", "consent.granted"),
        ("preferences", "consent.withdrawn"),
    ]


CALLS = """record_id,timestamp,caller,text
k1,2026-03-01T10:00:00Z,Vera Lindqvist,asks to be called back about her order
k2,2026-03-01T11:00:00Z,Omar Haddad,wants a brochure
k3,2026-03-01T12:00:00Z,Frau Vera Lindqvist,complains about the delivery
"""


def test_erasure_reaches_name_only_call_notes(shop: tuple[str, Custos], tmp_path: Path) -> None:
    """A call note that knows only the caller's name links to no one (a name alone never
    links), yet erasure takes it, lists it in the receipt, and suppresses its record."""
    db, app = shop
    calls = write(tmp_path / "calls.csv", CALLS)
    mapping = write(tmp_path / "calls.yaml", "fields:\n  full_name: caller\n")
    app.ingest(calls, "calls", kind=Kind.INTERACTIONS, map_path=mapping)
    app.resolve()
    assert {r: p for s, r, p in app.xref() if s == "calls"} == {"k1": "", "k2": "", "k3": ""}
    # A device that said it was Vera (a claim of the write key): the claim keeps her e-mail.
    claimed = {"messageId": "claim-1", "anonymousId": "d-9", "event": "Viewed"}
    claimed["context"] = {"traits": {"email": "vera@example.org"}}
    stored = collect(app, [("track", claimed)], source="web", received_at=datetime.now(UTC))
    assert stored.stored == 1
    admin = keys.create(app, "dpo", ["identity_curation"], "admin")
    with serve(db, tmp_path) as base:
        answer = httpx.post(
            f"{base}/v1/dsr/erase",
            json={"key": "vera@example.org", "confirm": True},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    assert answer.json()["found_by"] == {"by": "email", "sources": ["crm"]}
    assert receipt["possible_interactions_erased"] == ["calls:k1", "calls:k3", "web:claim-1"]
    assert sorted(r for s, r, _ in app.xref() if s == "calls") == ["k2"]
    with app.store.read() as conn:
        texts = conn.execute(select(t.raw_records.c.payload)).scalars().all()
    assert not any("Lindqvist" in (p or "") or "vera@" in (p or "") for p in texts)
    again = app.ingest(calls, "calls", kind=Kind.INTERACTIONS, map_path=mapping)
    assert sorted(r for s, r, _ in app.xref() if s == "calls") == ["k2"]  # suppressed
    assert again is not None
    shown = CliRunner().invoke(
        cli,
        ["--db", db, "dsr", "show", answer.json()["request"]],
        env={"CUSTOS_SECRET_KEY_FILE": str(tmp_path / "secret.key")},
    )
    assert shown.exit_code == 0, shown.output
    assert "erased too: calls:k1, calls:k3, web:claim-1" in shown.output
    assert "found by: email in crm" in shown.output
