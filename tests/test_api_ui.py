"""The API behind the web UI's pages: sentiment of a profile, consent overview, audit log."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from custos.api.app import create_app
from custos.service import Custos, keys
from custos.store import tables as t
from tests.test_api import bearer, loaded  # noqa: F401  (the fixture)


def _last_actions(custos: Custos, count: int) -> list[tuple[str, str]]:
    """(action, actor) of the newest audit entries (read directly: fully consumed)."""
    with custos.store.read() as conn:
        query = t.audit_log.select().order_by(t.audit_log.c.id.desc()).limit(count)
        return [(r.action, r.actor) for r in conn.execute(query).all()]


def _anna(client: TestClient, key: str) -> str:
    found = client.post(
        "/v1/profiles/lookup?purpose=customer_service",
        json={"email": "anna@example.com"},
        headers=bearer(key),
    )
    assert found.status_code == 200
    profile_id: str = found.json()["profile_id"]
    return profile_id


def test_sentiment_is_guarded_and_audited(
    loaded: Custos,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loaded.settings, "sentiment_engine", "fake")
    desk = keys.create(loaded, "desk", ["customer_service", "marketing_email"])
    client = TestClient(create_app(loaded))
    anna = _anna(client, desk)
    shown = client.get(
        f"/v1/profiles/{anna}/sentiment?purpose=customer_service", headers=bearer(desk)
    )
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["profile_id"] == anna and len(body["timeline"]) == 2
    assert {"at", "channel", "label", "score"} <= set(body["timeline"][0])
    # marketing e-mail may see Anna (she consented) but not her free text: refused, no values.
    refused = client.get(
        f"/v1/profiles/{anna}/sentiment?purpose=marketing_email", headers=bearer(desk)
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert "anna" not in refused.text.lower()
    unbound = client.get(f"/v1/profiles/{anna}/sentiment?purpose=analytics", headers=bearer(desk))
    assert unbound.status_code == 403
    missing = client.get("/v1/profiles/p-nope/sentiment", headers=bearer(desk))
    assert missing.status_code in (400, 404)
    assert ("insight.mood", "desk") in _last_actions(loaded, 5)


def test_consent_overview_counts_per_purpose(loaded: Custos) -> None:  # noqa: F811
    client = TestClient(create_app(loaded))
    desk = keys.create(loaded, "desk", ["customer_service"])
    dpo = keys.create(loaded, "dpo", ["consent_management"])
    admin = keys.create(loaded, "root", ["identity_curation"], "admin")
    assert client.get("/v1/consent/overview").status_code == 401
    refused = client.get("/v1/consent/overview", headers=bearer(desk))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    for key in (dpo, admin):
        answer = client.get("/v1/consent/overview", headers=bearer(key))
        assert answer.status_code == 200, answer.text
        rows = {r["purpose"]: r for r in answer.json()["purposes"]}
        assert set(rows) == set(loaded.taxonomy.purposes)
        email = rows["marketing_email"]
        assert email["basis"] == "consent"
        assert (email["granted"], email["denied_or_withdrawn"], email["no_record"]) == (1, 0, 2)
        assert rows["customer_service"]["basis"] == "contract"
        assert "example.com" not in answer.text
    assert _last_actions(loaded, 1)[0][0] == "consent.overview"


def test_audit_log_is_for_admins_and_names_no_one(loaded: Custos) -> None:  # noqa: F811
    client = TestClient(create_app(loaded))
    desk = keys.create(loaded, "desk", ["customer_service"])
    admin = keys.create(loaded, "root", ["identity_curation"], "admin")
    anna = _anna(client, desk)
    assert client.get("/v1/audit", headers=bearer(desk)).status_code == 403
    assert client.get("/v1/audit?limit=0", headers=bearer(admin)).status_code == 422
    answer = client.get("/v1/audit?limit=3", headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert len(items) == 3
    assert items[0]["action"] == "profile.show" and items[0]["actor"] == "desk"
    assert items[0]["subjects"] == 1 and items[0]["purpose"] == "customer_service"
    assert {"id", "at", "actor", "action", "purpose", "subjects"} == set(items[0])
    assert anna not in answer.text
    assert _last_actions(loaded, 1)[0][0] == "audit.list"
