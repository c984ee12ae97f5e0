"""Issue 14 attacks on a running custos: oversized paging, a listing that read the whole store,
presence oracles (look-ups, shared identifiers, filters, provenance) and what the browser is told.
Each test performs the attack against the API served by uvicorn on a loopback port."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from custos.api.app import create_app
from custos.core.fields import Kind
from custos.service import Custos, api_reads, keys
from custos.store import tables as t
from tests.conftest import served, write
from tests.test_api import bearer, loaded  # noqa: F401

HUGE = "99999999999999999999"  # past a 64-bit integer: the database's OFFSET overflowed (500)


def test_oversized_paging_answers_a_clear_client_error(loaded: Custos) -> None:  # noqa: F811
    key = keys.create(loaded, "desk", ["customer_service"])
    anna = loaded.find_profile("anna@example.com")
    with served(loaded) as base, httpx.Client(base_url=base, headers=bearer(key)) as client:
        listed = client.get(f"/v1/profiles?purpose=customer_service&offset={HUGE}")
        assert listed.status_code == 400
        assert "cursor" in listed.json()["error"]["message"]
        deep = client.get(
            f"/v1/profiles/{anna}/interactions?purpose=customer_service&offset={HUGE}"
        )
        assert deep.status_code == 422
        assert deep.json()["error"]["message"] == "invalid request: query.offset (at most 1000000)"
        deepest = client.get(f"/v1/profiles/{anna}/interactions?offset=1000000")
        assert deepest.status_code == 200 and deepest.json()["items"] == []
        for query in (
            f"limit={HUGE}",
            "cursor=" + "z" * 5000,
            "&".join(f"where=city:{i}" for i in range(11)),
        ):
            answer = client.get(f"/v1/profiles?purpose=customer_service&{query}")
            assert answer.status_code == 422, query
        odd = client.get("/v1/profiles", params={"where": "values.city[0]:x"})
        assert odd.status_code == 400 and "attribute:value" in odd.json()["error"]["message"]


def test_a_listing_examines_a_bounded_window_and_filters_in_the_database(
    loaded: Custos,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a window of two profiles, a filter that matches no one answers at once with a cursor
    to go on from, instead of reading every golden record; paging on finds every match."""
    monkeypatch.setattr(api_reads, "LIST_SCAN", 2)
    key = keys.create(loaded, "desk", ["customer_service"])
    client = TestClient(create_app(loaded))

    def walk(where: str) -> tuple[list[str], int]:
        params = {"purpose": "customer_service", "where": where, "limit": "5"}
        found: list[str] = []
        pages = 0
        while True:
            page = client.get("/v1/profiles", params=params, headers=bearer(key))
            assert page.status_code == 200, page.text
            pages += 1
            found += [i["profile_id"] for i in page.json()["items"]]
            if not page.json()["next_cursor"]:
                return found, pages
            params["cursor"] = page.json()["next_cursor"]

    assert walk("last_name:Nope") == ([], 2)  # three profiles, two per page: two bounded pages
    cara = loaded.find_profile("cara@example.com")
    assert walk("last_name:Jones") == ([cara], 2)
    ben = loaded.find_profile("ben@example.com")
    assert walk("first_name:Ben")[0] == [ben]
    both = client.get(
        "/v1/profiles",
        params={"purpose": "customer_service", "where": ["last_name:Schmidt", "first_name:Ben"]},
        headers=bearer(key),
    )
    assert [i["profile_id"] for i in both.json()["items"]] == [ben]


def test_a_filter_on_a_value_hidden_from_a_person_is_no_oracle(
    custos: Custos, tmp_path: Path
) -> None:
    """Health research may see a condition only with explicit consent: a person who consented
    plainly is listed, but never by a filter on their (hidden) condition."""
    custos.ingest(
        write(
            tmp_path / "crm.csv",
            "record_id,first_name,email,condition\n"
            "r1,Anna,anna@example.com,asthma\nr2,Ben,ben@example.com,asthma\n",
        ),
        "crm",
        map_path=write(tmp_path / "crm.yaml", "categories:\n  condition: health\n"),
    )
    custos.resolve()
    for email, explicit in (("anna@example.com", True), ("ben@example.com", False)):
        custos.record_consent(
            email, purpose="health_research", status="granted", source="crm", explicit=explicit
        )
    anna, ben = (custos.find_profile(e) for e in ("anna@example.com", "ben@example.com"))
    key = keys.create(custos, "study", ["health_research"])
    with served(custos) as base, httpx.Client(base_url=base, headers=bearer(key)) as client:
        everyone = client.get("/v1/profiles").json()["items"]
        assert sorted(i["profile_id"] for i in everyone) == sorted([anna, ben])
        assert [i.get("condition") for i in everyone if i["profile_id"] == ben] == [None]
        filtered = client.get("/v1/profiles", params={"where": "condition:asthma"}).json()
        assert [i["profile_id"] for i in filtered["items"]] == [anna]


def _failed_lookups(custos: Custos, actor: str) -> int:
    with custos.store.read() as conn:
        query = t.audit_log.select().where(
            t.audit_log.c.actor == actor, t.audit_log.c.action == "profile.lookup"
        )
        return len(conn.execute(query).all())


def test_a_person_the_purpose_may_not_see_looks_unknown(loaded: Custos) -> None:  # noqa: F811
    """Ben never consented to marketing e-mail: looking him up answers exactly like looking up
    no one (status, body, about the same time), and both failed look-ups are audited."""
    key = keys.create(loaded, "newsletter", ["marketing_email"])
    ben = loaded.find_profile("ben@example.com")
    timings: dict[str, list[float]] = {"ben@example.com": [], "nobody@example.com": []}
    with served(loaded) as base, httpx.Client(base_url=base, headers=bearer(key)) as client:
        answers = {}
        for _ in range(15):
            for email, spent in timings.items():
                started = time.perf_counter()
                answers[email] = client.post("/v1/profiles/lookup", json={"email": email})
                spent.append(time.perf_counter() - started)
        refused, unknown = answers["ben@example.com"], answers["nobody@example.com"]
        assert (refused.status_code, refused.json()) == (unknown.status_code, unknown.json())
        assert refused.status_code == 404 and ben not in refused.text
        # profile ids derive from record keys, so reads by id must not tell either
        for path in ("", "/interactions", "/sentiment"):
            by_id = client.get(f"/v1/profiles/{ben}{path}")
            no_one = client.get(f"/v1/profiles/cus_0000000000000000{path}")
            assert (by_id.status_code, by_id.json()) == (no_one.status_code, no_one.json())
            assert by_id.status_code == 404, path
        shown = client.post("/v1/profiles/lookup", json={"email": "anna@example.com"})
        assert shown.status_code == 200  # Anna consented
    fast, slow = sorted(statistics.median(v) for v in timings.values())
    assert slow < 10 * fast, timings  # the same work either way: no timing oracle
    assert _failed_lookups(loaded, "newsletter") == 30  # the reads by id are audited apart


def test_a_shared_phone_names_no_profiles_and_counts_only_those_the_purpose_may_see(
    custos: Custos, tmp_path: Path
) -> None:
    custos.ingest(
        write(
            tmp_path / "crm.csv",
            "record_id,first_name,last_name,email,phone,country\n"
            "r1,Anna,Muster,anna@example.com,030 1111111,DE\n"
            "r2,Otto,Muster,otto@example.com,030 1111111,DE\n"
            # no country: the number is kept as national digits, found by digits alone
            "r3,Jonas,Roe,jonas@example.com,01824 05851,\n"
            "r4,Jana,Doe,jana@example.com,01824 05851,\n",
        ),
        "crm",
    )
    custos.resolve()
    ids = [custos.find_profile(e) for e in ("anna@example.com", "otto@example.com")]
    assert len(set(ids)) == 2  # a household landline joins no one
    desk = keys.create(custos, "desk", ["customer_service"])
    newsletter = keys.create(custos, "newsletter", ["marketing_email"])
    with served(custos) as base, httpx.Client(base_url=base) as client:
        shared = client.post(
            "/v1/profiles/lookup", json={"phone": "+49 30 1111111"}, headers=bearer(desk)
        )
        assert shared.status_code == 400 and "2 profiles" in shared.text
        assert not any(pid in shared.text for pid in ids)
        hidden = client.post(
            "/v1/profiles/lookup", json={"phone": "+49 30 1111111"}, headers=bearer(newsletter)
        )
        unknown = client.post(
            "/v1/profiles/lookup", json={"phone": "+49 30 9999999"}, headers=bearer(newsletter)
        )
        assert hidden.status_code == 404 and hidden.json() == unknown.json()
        digits = client.post(
            "/v1/profiles/lookup", json={"phone": "+49 1824 05851"}, headers=bearer(desk)
        )
        assert digits.status_code == 400 and "2 profiles" in digits.text
        assert "cus_" not in digits.text and "05851" not in digits.text
        hidden = client.post(
            "/v1/profiles/lookup", json={"phone": "+49 1824 05851"}, headers=bearer(newsletter)
        )
        assert hidden.status_code == 404 and hidden.json() == unknown.json()


def test_provenance_names_no_source_the_purpose_may_not_know_of(
    custos: Custos, tmp_path: Path
) -> None:
    """A clinic's record of Anna (its map tags a health column) is part of her profile; customer
    service may read her, but must not learn she is a patient from a source name."""
    custos.ingest(
        write(tmp_path / "shop.csv", "record_id,first_name,email\ns1,Anna,anna@example.com\n"),
        "shop",
    )
    custos.ingest(
        write(
            tmp_path / "clinic.csv",
            "record_id,first_name,last_name,email,condition\nk1,Anna,Muster,anna@example.com,asthma\n",
        ),
        "clinic",
        map_path=write(tmp_path / "clinic.yaml", "categories:\n  condition: health\n"),
    )
    custos.ingest(
        write(
            tmp_path / "calls.csv",
            "record_id,timestamp,email,text\nc1,2026-01-02T10:00:00Z,anna@example.com,Invoice\n",
        ),
        "calls",
        kind=Kind.INTERACTIONS,
    )
    custos.resolve()
    anna = custos.find_profile("anna@example.com")
    desk = keys.create(custos, "desk", ["customer_service"])
    with served(custos) as base, httpx.Client(base_url=base, headers=bearer(desk)) as client:
        shown = client.get(f"/v1/profiles/{anna}")
        assert shown.status_code == 200
        body = shown.json()
        assert "clinic" not in shown.text and "k1" not in shown.text
        assert [r["source"] for r in body["records"]] == ["shop"]
        last_name = [g for g in body["golden"] if g["attribute"] == "last_name"]
        assert last_name == [
            {
                "attribute": "last_name",
                "value": "Muster",
                "source": None,
                "record_id": None,
                "observed_at": None,
                "rule": last_name[0]["rule"],
            }
        ]
        assert [i["source"] for i in body["interactions"]] == ["calls"]
        calls = client.get(f"/v1/profiles/{anna}/interactions")
        assert calls.status_code == 200 and "clinic" not in calls.text
