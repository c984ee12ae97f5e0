"""The read-only routes behind the web UI's admin pages (issue 17, item 10): the quarantine
(open entries per source, reason and fix, never the raw row) and the audit log with filters,
both for admin keys only, both paged with a cursor."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from custos.api.app import create_app
from custos.service import Custos, keys
from tests.conftest import start_serve, write
from tests.test_api import bearer
from tests.test_ingest import BROKEN


def test_the_quarantine_is_for_admins_and_shows_no_raw_values(
    custos: Custos, tmp_path: Path
) -> None:
    custos.ingest(write(tmp_path / "crm.csv", BROKEN), "crm")
    custos.ingest(
        write(tmp_path / "shop.csv", "record_id,email\ns1,x@example.com,surplus\n"), "shop"
    )
    client = TestClient(create_app(custos))
    desk = keys.create(custos, "desk", ["customer_service"])
    admin = keys.create(custos, "root", ["identity_curation"], "admin")
    assert client.get("/v1/quarantine", headers=bearer(desk)).status_code == 403
    assert client.get("/v1/quarantine").status_code == 401
    answer = client.get("/v1/quarantine", headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["sources"] == [{"source": "crm", "open": 5}, {"source": "shop", "open": 1}]
    assert page["next_cursor"] is None
    crm = {e["line_no"]: e for e in page["items"] if e["source"] == "crm"}
    assert crm[5]["field"] == "email" and crm[5]["record_id"] == "4" and crm[5]["fix"]
    assert {"source", "record_id", "line_no", "field", "reason", "fix", "created_at"} <= set(crm[5])
    assert "raw" not in crm[5]
    # the quarantined rows' values stay out of the answer
    for value in ("dora.at.example", "call me", "Fritz", "Klein", "x@example.com", "31.02"):
        assert value not in answer.text
    # a page at a time, newest first; one source; all entries (every entry is open so far)
    first = client.get("/v1/quarantine?limit=4", headers=bearer(admin)).json()
    assert len(first["items"]) == 4 and first["next_cursor"] == first["items"][-1]["id"]
    rest = client.get(
        f"/v1/quarantine?limit=4&cursor={first['next_cursor']}", headers=bearer(admin)
    ).json()
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6 and rest["next_cursor"] is None
    shop = client.get("/v1/quarantine?source=shop&status=all", headers=bearer(admin)).json()
    assert [(e["source"], e["line_no"]) for e in shop["items"]] == [("shop", 2)]
    assert client.get("/v1/quarantine?status=closed", headers=bearer(admin)).status_code == 422
    assert custos.audit_entries(limit=1)[0]["action"] == "quarantine.list"


def test_the_audit_log_filters_by_actor_purpose_action_and_time(custos: Custos) -> None:
    client = TestClient(create_app(custos))
    desk = keys.create(custos, "desk", ["customer_service"])
    letters = keys.create(custos, "letters", ["marketing_email"])
    admin = keys.create(custos, "root", ["identity_curation"], "admin")
    for key, purpose in ((desk, "customer_service"), (letters, "marketing_email")):
        assert client.get(f"/v1/profiles?purpose={purpose}", headers=bearer(key)).status_code == 200
    client.get("/v1/profiles?purpose=customer_service", headers=bearer(desk))
    assert client.get("/v1/audit?actor=root", headers=bearer(desk)).status_code == 403

    def items(query: str) -> list[dict[str, object]]:
        answer = client.get(f"/v1/audit?{query.replace('+', '%2B')}", headers=bearer(admin))
        assert answer.status_code == 200, answer.text
        found: list[dict[str, object]] = answer.json()["items"]
        return found

    assert [e["purpose"] for e in items("actor=desk")] == ["customer_service"] * 2
    assert [e["actor"] for e in items("purpose=marketing_email")] == ["letters"]
    assert {e["action"] for e in items("action=profile.")} == {"profile.list"}
    assert len(items("action=profile.list&actor=desk")) == 2
    assert items("action=profile.") and not items("action=profile")
    newest = items("limit=1")[0]
    assert newest["action"] == "audit.list"  # the reads of the log are audited too
    # times: since inclusive, until exclusive, any time zone (entries are kept to the second)
    assert not items("since=2100-01-01&actor=desk") and not items("until=2000-01-01")
    at = items("actor=desk")[-1]["at"]
    assert len(items(f"since={at}&until=2100-01-01T00:00:00+05:00&actor=desk")) == 2
    assert not items(f"since={at}&until={at}")
    # paging: newest first, each entry once
    first = client.get("/v1/audit?limit=1&actor=desk", headers=bearer(admin)).json()
    assert len(first["items"]) == 1 and first["next_cursor"] == first["items"][0]["id"]
    older = client.get(
        f"/v1/audit?limit=1&actor=desk&cursor={first['next_cursor']}", headers=bearer(admin)
    ).json()
    assert len(older["items"]) == 1 and older["next_cursor"] is None
    assert older["items"][0]["id"] < first["items"][0]["id"]
    assert client.get("/v1/audit?since=yesterday", headers=bearer(admin)).status_code == 422


def test_a_real_server_keeps_the_quarantine_and_the_audit_log_from_read_keys(
    tmp_path: Path,
) -> None:
    """Against ``custos serve`` (its own process): a read key is refused both admin reads (no
    key: 401), and an admin key gets the quarantine without the rows' values."""
    db = str(tmp_path / "served.db")
    with Custos.open(db) as app:
        app.ingest(write(tmp_path / "crm.csv", BROKEN), "crm")
        desk = keys.create(app, "desk", ["customer_service"])
        admin = keys.create(app, "root", ["identity_curation"], "admin")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_serve(db, port)
    try:
        base = f"http://127.0.0.1:{port}"
        for path in ("/v1/quarantine", "/v1/audit?actor=desk"):
            assert httpx.get(base + path).status_code == 401
            assert httpx.get(base + path, headers=bearer(desk)).status_code == 403
        answer = httpx.get(f"{base}/v1/quarantine?source=crm", headers=bearer(admin))
        assert answer.status_code == 200
        assert answer.json()["sources"] == [{"source": "crm", "open": 5}]
        assert len(answer.json()["items"]) == 5
        for value in ("dora.at.example", "call me", "Fritz", "31.02"):
            assert value not in answer.text
        audit = httpx.get(f"{base}/v1/audit?action=quarantine.", headers=bearer(admin)).json()
        assert [(e["actor"], e["action"]) for e in audit["items"]] == [("root", "quarantine.list")]
    finally:
        server.terminate()
        server.wait(10)
