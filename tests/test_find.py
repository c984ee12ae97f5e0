"""Finding people and what custos holds (issue 17, items 4 and 5): a store that must exist,
``profile list`` / ``profile search``, ``sources list``, ``consent purposes``, and the REST
routes ``/v1/profiles/search``, ``/v1/sources`` and ``/v1/purposes`` on a real ``custos serve``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.fields import Kind
from custos.service import Custos, keys, search
from tests.conftest import start_serve, write

runner = CliRunner()

PEOPLE = """record_id,first_name,last_name,email,phone,city
r1,Anna,Müller,anna.mueller@example.com,+49 30 1234567,Berlin
r2,Ben,Mueller,ben.m@example.com,+49 30 7654321,Hamburg
r3,Cara,Schmidt,cara@example.com,+49 89 3333333,München
r4,Dirk,Schmitt,dirk@example.com,+49 89 4444444,Köln
r5,Eva,Meier,eva.meier@example.com,+49 40 5555555,Bremen
r6,Anna,Schneider,anna.s@example.com,+49 40 6666666,Kiel
"""
CONSENTS = (
    "email,purpose,status,timestamp\nanna.mueller@example.com,marketing_email,granted,2026-01-01\n"
)


def run(db: str, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, ["--db", db, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def build(db: str, tmp_path: Path) -> dict[str, str]:
    """A store of six people (one granted marketing e-mails); e-mail → profile id."""
    with Custos.open(db) as custos:
        custos.ingest(write(tmp_path / "crm.csv", PEOPLE), "crm")
        custos.resolve()
        custos.ingest(write(tmp_path / "consents.csv", CONSENTS), "web", kind=Kind.CONSENTS)
        return {
            row["identifiers"]["email"][0]: row["profile_id"]
            for row in custos.export_profiles("customer_service")
        }


# -- item 5: finding people (CLI) ---------------------------------------------------------------


def test_cli_search_finds_by_fuzzy_name_email_phone_and_id(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    ids = build(db, tmp_path)
    anna = ids["anna.mueller@example.com"]

    def search(*args: str) -> dict[str, object]:
        found: dict[str, object] = json.loads(run(db, "profile", "search", *args, "--json"))
        return found

    # a typo, and the German transliteration: both Müllers, Anna Müller first
    found = search("Ana Muller")
    items = found["items"]
    assert isinstance(items, list)
    assert items[0]["profile_id"] == anna and items[0]["name"] == "Anna Müller"
    assert {i["profile_id"] for i in items} >= {anna, ids["ben.m@example.com"]}
    assert all(0 <= i["score"] <= 1 for i in items)
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    # e-mail (whole, or its beginning), phone in another form, profile id
    assert search("anna.mueller@example.com")["items"][0]["score"] == 1.0  # type: ignore[index]
    assert [i["profile_id"] for i in search("eva.mei")["items"]] == [ids["eva.meier@example.com"]]  # type: ignore[attr-defined]
    assert [i["profile_id"] for i in search("030 1234567")["items"]] == [anna]  # type: ignore[attr-defined]
    assert [i["profile_id"] for i in search(anna)["items"]] == [anna]  # type: ignore[attr-defined]
    # paged: a page of one, then the next with the cursor
    first = search("Schmidt", "--limit", "1")
    assert len(first["items"]) == 1 and first["next_cursor"]  # type: ignore[arg-type]
    second = search("Schmidt", "--limit", "1", "--cursor", str(first["next_cursor"]))
    assert second["items"][0]["profile_id"] != first["items"][0]["profile_id"]  # type: ignore[index]
    assert "Dirk Schmitt" in run(db, "profile", "search", "Schmidt")


def test_cli_search_is_guarded_by_purpose_and_audited(tmp_path: Path) -> None:
    """A purpose that may not see names cannot search by name (exit 3); one that needs consent
    finds only the people who granted it; every search is audited without the query."""
    db = str(tmp_path / "c.db")
    ids = build(db, tmp_path)
    out = run(db, "profile", "search", "Anna", "--purpose", "analytics", code=3)
    assert "may not see" in out and "search by name" in out
    run(db, "profile", "search", "anna.s@example.com", "--purpose", "analytics", code=3)
    granted = json.loads(
        run(db, "profile", "search", "Anna", "--purpose", "marketing_email", "--json")
    )
    assert [i["profile_id"] for i in granted["items"]] == [ids["anna.mueller@example.com"]]
    with Custos.open(db) as custos:
        entries = [e for e in custos.audit_entries() if e["action"] == "profile.search"]
    assert len(entries) == 3
    newest = entries[0]
    assert newest["purpose"] == "marketing_email"
    assert newest["subjects"] == [ids["anna.mueller@example.com"]]
    assert "first_name" in newest["detail"]["fields"] and "name" not in newest["detail"]["fields"]
    assert newest["detail"]["refused"] == 1  # Anna Schneider, who did not consent
    assert "Anna" not in orjson.dumps(entries).decode()  # the query is not in the log


def test_cli_profile_list_sources_and_purposes(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    ids = build(db, tmp_path)
    listed = json.loads(run(db, "profile", "list", "--limit", "4", "--json"))
    assert [i["profile_id"] for i in listed["items"]] == sorted(ids.values())[:4]
    rest = json.loads(run(db, "profile", "list", "--cursor", listed["next_cursor"], "--json"))
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert all(i["email"] is None for i in json.loads(
        run(db, "profile", "list", "--purpose", "analytics", "--json"))["items"])  # fmt: skip
    write(tmp_path / "bad.csv", "record_id,date_of_birth\n,1980-01-01\n")
    run(db, "ingest", str(tmp_path / "bad.csv"), "--source", "crm", code=1)
    sources = {s["name"]: s for s in json.loads(run(db, "sources", "list", "--json"))["items"]}
    assert sources["crm"]["kind"] == "records" and sources["crm"]["rows"] == 6
    assert sources["crm"]["quarantine_open"] == 1 and sources["crm"]["last_ingested_at"]
    assert sources["web"] == sources["web"] | {"kind": "consents", "rows": 1, "quarantine_open": 0}
    table = run(db, "sources", "list")
    assert "crm" in table and "records" in table
    purposes = {p["name"]: p for p in json.loads(run(db, "consent", "purposes", "--json"))["items"]}
    assert purposes["marketing_email"]["basis"] == "consent"
    assert "contact" in purposes["marketing_email"]["categories"]
    assert "legitimate_interest" in run(db, "consent", "purposes")


def test_search_and_sources_on_both_backends(custos: Custos, tmp_path: Path) -> None:
    """The same answers on SQLite and PostgreSQL (the name-key ranges, the e-mail prefix)."""
    custos.ingest(write(tmp_path / "crm.csv", PEOPLE), "crm")
    custos.resolve()

    def names(query: str, by: str | None = None) -> list[str]:
        items, _ = search.search(custos, query, "customer_service", actor="t", by=by)
        return [str(i["name"]) for i in items]

    assert names("Schmitd")[:2] == ["Cara Schmidt", "Dirk Schmitt"]
    assert names("mueller")[:2] == ["Ben Mueller", "Anna Müller"]
    assert names("anna.m", by="email") == ["Anna Müller"]
    assert names("+49 40 5555555") == ["Eva Meier"]
    assert [s["rows"] for s in search.sources(custos)] == [6]


# -- item 5: the REST API on a real custos serve ------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> object:
    db = str(tmp_path / "served.db")
    ids = build(db, tmp_path)
    with Custos.open(db) as custos:
        made = {
            "service": keys.create(custos, "desk", ["customer_service"]),
            "analytics": keys.create(custos, "stats", ["analytics"]),
            "marketing": keys.create(custos, "mail", ["marketing_email"]),
        }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = start_serve(db, port)
    try:
        yield f"http://127.0.0.1:{port}", made, ids
    finally:
        process.terminate()
        process.wait(10)


def test_api_search_sources_and_purposes_on_a_real_server(server: object) -> None:
    base, made, ids = server  # type: ignore[misc]

    def get(path: str, key: str, **params: object) -> httpx.Response:
        return httpx.get(
            base + path, params=params, headers={"Authorization": f"Bearer {made[key]}"}
        )

    found = get("/v1/profiles/search", "service", q="Anna Müler")
    assert found.status_code == 200, found.text
    body = found.json()
    assert set(body) == {"items", "next_cursor"}
    assert body["items"][0] == {
        "profile_id": ids["anna.mueller@example.com"],
        "name": "Anna Müller",
        "email": "anna.mueller@example.com",
        "phone": "+49301234567",
        "score": body["items"][0]["score"],
    }
    assert 0.6 <= body["items"][0]["score"] <= 1
    # paged: both Müllers, one a page
    first = get("/v1/profiles/search", "service", q="Müller", limit=1).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = get("/v1/profiles/search", "service", q="Müller", cursor=first["next_cursor"])
    pair = {first["items"][0]["profile_id"], second.json()["items"][0]["profile_id"]}
    assert pair == {ids["anna.mueller@example.com"], ids["ben.m@example.com"]}
    assert second.json()["next_cursor"] is None
    refused = get("/v1/profiles/search", "analytics", q="Anna")
    assert refused.status_code == 403 and "search by name" in refused.json()["message"]
    assert get("/v1/profiles/search", "service", q="Anna", cursor="x").status_code == 400
    granted = get("/v1/profiles/search", "marketing", q="anna").json()["items"]
    assert [i["profile_id"] for i in granted] == [ids["anna.mueller@example.com"]]
    assert get("/v1/profiles/search", "service").status_code == 422  # q is required

    sources = get("/v1/sources", "analytics").json()["items"]
    assert {s["name"] for s in sources} == {"crm", "web"}
    assert set(sources[0]) == {"name", "kind", "rows", "last_ingested_at", "quarantine_open"}
    purposes = get("/v1/purposes", "analytics").json()["items"]
    assert set(purposes[0]) == {"name", "basis", "description", "categories"}
    assert httpx.get(base + "/v1/purposes").status_code == 401
