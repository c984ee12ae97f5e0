"""Issue 14 attacks on a running custos: oversized paging, a listing that read the whole store,
presence oracles (look-ups, shared identifiers, filters, provenance) and what the browser is told.
Each test performs the attack against the API served by uvicorn on a loopback port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from custos.api.app import create_app
from custos.service import Custos, api_reads, keys
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
        assert deep.status_code == 422 and "offset" in deep.json()["error"]["message"]
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
