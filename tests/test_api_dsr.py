"""The data-subject request API: admin keys only, the person's key in the body, audited as the
CLI's requests are, reports answered in memory, erasure only when confirmed."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from custos.api.app import create_app
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.privacy.dsr.html import SECTIONS
from custos.privacy.dsr.report import ACCESS_SECTIONS
from custos.service import Custos, keys
from custos.service.demo import run_demo
from tests.conftest import write

EMAIL = "quenby@example.com"
PEOPLE = """record_id,first_name,last_name,email,phone,city,condition
r1,Quenby,Xylander,quenby@example.com,030 7777777,Xantenhausen,asthma
r2,Ben,Schmidt,ben@example.com,040 2222222,Hamburg,
"""
CALLS = """record_id,timestamp,channel,text,email
i1,2026-01-02T10:00:00Z,call,Asked about her order,quenby@example.com
i2,2026-01-04T10:00:00Z,email,Wants a new password,ben@example.com
"""
CONSENTS = "email,purpose,status,timestamp\nquenby@example.com,marketing_email,granted,2026-01-01\n"
#: Values of the person that must never appear in an error body or a log line.
TRACES = ("quenby", "xylander", "xantenhausen", "7777777")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with a secret key of the test's own (erasure needs one)."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", secret_key_file=str(tmp_path / "key" / "secret.key")
    )


@pytest.fixture
def loaded(custos: Custos, tmp_path: Path) -> Custos:
    """Two persons with interactions; Quenby consented to marketing e-mail."""
    custos.ingest(
        write(tmp_path / "crm.csv", PEOPLE),
        "crm",
        map_path=write(tmp_path / "crm.yaml", "categories:\n  condition: health\n"),
    )
    custos.ingest(write(tmp_path / "calls.csv", CALLS), "calls", kind=Kind.INTERACTIONS)
    custos.resolve()
    custos.ingest(write(tmp_path / "consent.csv", CONSENTS), "crm", kind=Kind.CONSENTS)
    return custos


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class _Headings(HTMLParser):
    """The text of every <h2> and the tags of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.tags: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_h2 = tag == "h2"

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.headings.append(data)


def headings_of(page: str) -> _Headings:
    parser = _Headings()
    parser.feed(page)
    return parser


def assert_no_traces(text: str) -> None:
    low = text.lower()
    assert not [trace for trace in TRACES if trace in low], text


def test_a_read_key_may_not_make_requests_and_none_go_without_a_key(loaded: Custos) -> None:
    reader = keys.create(loaded, "desk", ["customer_service"])
    client = TestClient(create_app(loaded))
    calls = [
        ("post", "/v1/dsr/access", {"key": EMAIL}),
        ("post", "/v1/dsr/export", {"key": EMAIL}),
        ("post", "/v1/dsr/rectify", {"key": EMAIL, "attribute": "city", "value": "Berlin"}),
        ("post", "/v1/dsr/restrict", {"key": EMAIL}),
        ("post", "/v1/dsr/erase", {"key": EMAIL, "confirm": True}),
        ("get", "/v1/dsr/dsr-1", None),
        ("get", "/v1/dsr/dsr-1/report.html", None),
    ]
    for method, path, body in calls:
        answer = client.request(method, path, json=body, headers=bearer(reader))
        assert answer.status_code == 403, path
        assert answer.json()["error"]["code"] == "forbidden"
        assert_no_traces(answer.text)
        assert client.request(method, path, json=body).status_code == 401
    # Nothing was requested, nothing was erased.
    assert loaded.find_profile(EMAIL)
    assert not [e for e in loaded.audit_entries() if e["action"].startswith("dsr.")]


def test_access_answers_the_report_and_its_html(
    loaded: Custos, caplog: pytest.LogCaptureFixture
) -> None:
    admin = keys.create(loaded, "dpo", ["identity_curation"], "admin")
    client = TestClient(create_app(loaded))
    profile_id = loaded.find_profile(EMAIL)
    loaded.profile(EMAIL, purpose="customer_service", actor="api-key-42")

    answer = client.post("/v1/dsr/access", json={"key": EMAIL}, headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "access" and body["state"] == "done"
    assert body["profile_id"] == profile_id and body["request"].startswith("dsr-")
    report = body["report"]
    assert set(ACCESS_SECTIONS) <= set(report)
    assert report["interactions"][0]["text"] == "Asked about her order"
    assert [r["actor"] for r in report["recipients"]] == ["api-key-42"]
    held = {(a["attribute"], a["value"]) for a in report["attributes"]}
    assert ("email", EMAIL) in held and ("condition", "asthma") in held  # owed all of it

    # The request shows ids and counts only.
    shown = client.get(f"/v1/dsr/{body['request']}", headers=bearer(admin))
    assert shown.status_code == 200 and shown.json()["state"] == "done"
    assert shown.json()["steps"][0]["detail"]["counts"]["interactions"] == 1
    assert_no_traces(shown.text)

    page = client.get(f"/v1/dsr/{body['request']}/report.html", headers=bearer(admin))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert page.headers["x-content-type-options"] == "nosniff"
    parsed = headings_of(page.text)
    assert parsed.headings == [title for title, _ in SECTIONS.values()]
    assert "script" not in parsed.tags and "Xylander" in page.text

    # Audited under legal_compliance with the key's name; the person's values stay out of logs.
    entries = loaded.audit_entries(profile=profile_id)
    dsr_entries = {e["action"]: e for e in entries if e["action"].startswith("dsr.")}
    assert {"dsr.access.received", "dsr.access", "dsr.access.html"} <= set(dsr_entries)
    assert {e["actor"] for e in dsr_entries.values()} == {"dpo"}
    assert {e["purpose"] for e in dsr_entries.values()} == {"legal_compliance"}
    assert_no_traces(caplog.text)

    # An export request is no access report; an unknown request is 404.
    export = client.post("/v1/dsr/export", json={"key": EMAIL}, headers=bearer(admin)).json()
    for ref in (
        export["request"],
        "dsr-9999",
        "nonsense",
        "dsr-99999999999999999999",
        "٣",
        "999999999999999999",
    ):
        missing = client.get(f"/v1/dsr/{ref}/report.html", headers=bearer(admin))
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_export_rectify_restrict_and_unknown_persons(loaded: Custos) -> None:
    admin = keys.create(loaded, "dpo", ["customer_service"], "admin")
    client = TestClient(create_app(loaded))
    profile_id = loaded.find_profile(EMAIL)

    export = client.post("/v1/dsr/export", json={"key": EMAIL}, headers=bearer(admin))
    assert export.status_code == 200 and export.json()["state"] == "done"
    data = export.json()["data"]
    assert {r["record_id"] for r in data["records"]} == {"r1"}
    assert data["interactions"][0]["fields"]["text"] == "Asked about her order"
    assert data["consents"][0]["status"] == "granted"

    fixed = client.post(
        "/v1/dsr/rectify",
        json={"key": profile_id, "attribute": "city", "value": "Berlin", "reason": "moved"},
        headers=bearer(admin),
    )
    assert fixed.status_code == 200 and fixed.json()["state"] == "done", fixed.text
    golden = {
        g["attribute"]: g for g in loaded.profile(EMAIL, purpose="customer_service")["golden"]
    }
    assert golden["city"]["value"] == "Berlin" and golden["city"]["source"] == "rectification"

    bad = client.post(
        "/v1/dsr/rectify",
        json={"key": EMAIL, "attribute": "email", "value": "not-an-xylander-address"},
        headers=bearer(admin),
    )
    assert bad.status_code == 400 and "xylander" not in bad.text.lower()

    restricted = client.post(
        "/v1/dsr/restrict",
        json={"key": EMAIL, "reason": "contests accuracy"},
        headers=bearer(admin),
    )
    assert restricted.status_code == 200 and restricted.json()["state"] == "done"
    read = client.get(f"/v1/profiles/{profile_id}?purpose=customer_service", headers=bearer(admin))
    # the guard now refuses every purpose but legal obligation: the person looks unknown
    assert read.status_code == 404
    lifted = client.post(
        "/v1/dsr/restrict", json={"key": EMAIL, "lift": True}, headers=bearer(admin)
    )
    assert lifted.status_code == 200 and lifted.json()["steps"][0]["name"] == "lift"
    read = client.get(f"/v1/profiles/{profile_id}?purpose=customer_service", headers=bearer(admin))
    assert read.status_code == 200

    for path, body in (
        ("/v1/dsr/access", {"key": "nobody@example.com"}),
        ("/v1/dsr/export", {"key": "nobody@example.com"}),
        ("/v1/dsr/restrict", {"key": "nobody@example.com"}),
        ("/v1/dsr/erase", {"key": "nobody@example.com", "confirm": True}),
    ):
        missing = client.post(path, json=body, headers=bearer(admin))
        assert missing.status_code == 404, path
        assert "nobody" not in missing.text
        assert set(missing.json()["error"]) == {"code", "message", "hint"}
    invalid = client.post("/v1/dsr/access", json={}, headers=bearer(admin))
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "invalid_request"


def test_erasure_needs_confirmation_and_answers_the_receipt(loaded: Custos) -> None:
    admin = keys.create(loaded, "dpo", ["customer_service"], "admin")
    client = TestClient(create_app(loaded))
    profile_id = loaded.find_profile(EMAIL)
    loaded.profile(EMAIL, purpose="customer_service", actor="api-key-42")

    for body in ({"key": EMAIL}, {"key": EMAIL, "confirm": False}):
        refused = client.post("/v1/dsr/erase", json=body, headers=bearer(admin))
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "bad_request"
        assert "confirm" in refused.json()["error"]["message"]
    assert loaded.find_profile(EMAIL) == profile_id  # nothing erased yet

    erased = client.post(
        "/v1/dsr/erase", json={"key": EMAIL, "confirm": True}, headers=bearer(admin)
    )
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["state"] == "done" and [s["state"] for s in body["steps"]] == ["done"] * 3
    receipt = body["receipt"]
    assert receipt["profile_ids"] == [profile_id] and receipt["removed"]["raw_records"] == 2
    assert {r["actor"] for r in receipt["recipients_to_notify"]} == {"api-key-42"}
    assert_no_traces(erased.text)

    lookup = client.post(
        "/v1/profiles/lookup?purpose=customer_service", json={"email": EMAIL}, headers=bearer(admin)
    )
    assert lookup.status_code == 404
    assert client.post(
        "/v1/dsr/access", json={"key": EMAIL}, headers=bearer(admin)
    ).status_code == (404)
    xref = list(loaded.xref())
    assert xref and all(pid != profile_id for _, _, pid in xref)
    assert {rid for _, rid, _ in xref} == {"r2", "i2"}  # Ben's records stay
    shown = client.get(f"/v1/dsr/{body['request']}", headers=bearer(admin))
    assert shown.json()["kind"] == "erase" and shown.json()["state"] == "done"
    assert_no_traces(shown.text)
    assert loaded.audit_verify() is None


def test_the_html_report_of_a_demo_person_has_every_section(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", secret_key_file=str(tmp_path / "secret.key")
    )
    demo = run_demo(tmp_path / "demo", people=60, seed=3, settings=settings)
    assert demo.example is not None
    with Custos.open(str(demo.store), settings) as custos:
        admin = keys.create(custos, "dpo", ["identity_curation"], "admin")
        client = TestClient(create_app(custos))
        made = client.post(
            "/v1/dsr/access", json={"key": demo.example["profile_id"]}, headers=bearer(admin)
        )
        assert made.status_code == 200, made.text
        assert set(ACCESS_SECTIONS) <= set(made.json()["report"])
        page = client.get(f"/v1/dsr/{made.json()['request']}/report.html", headers=bearer(admin))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert headings_of(page.text).headings == [title for title, _ in SECTIONS.values()]
    assert page.text.startswith("<!doctype html>") and page.text.rstrip().endswith("</html>")


def test_nothing_is_written_to_files(loaded: Custos, tmp_path: Path) -> None:
    admin = keys.create(loaded, "dpo", ["customer_service"], "admin")
    client = TestClient(create_app(loaded))
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    for path in ("/v1/dsr/access", "/v1/dsr/export"):
        assert client.post(path, json={"key": EMAIL}, headers=bearer(admin)).status_code == 200
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert not [p for p in written if not p.name.startswith("custos.db")]
