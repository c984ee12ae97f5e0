"""The review queue: pairs resolution scored but did not link, listed strongest first (ids and
match weights, no personal values) and decided for good, through the service, the CLI and the
REST API.

The pairs are inserted by :func:`add_candidate`, as resolution writes them to
``identity_candidates``, so these tests pin the queue's contract whatever the matcher scores;
the fixture resolves with exact identifiers only, which leaves every pair below unlinked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from typer.testing import CliRunner

from custos.api.app import create_app
from custos.cli import app as cli
from custos.core.errors import InputError, NotFoundError
from custos.core.settings import Settings
from custos.service import Custos, keys
from custos.store import tables as t
from tests.conftest import write

HEADER = "record_id,first_name,last_name,email,phone,date_of_birth,street,postcode,city\n"
# Twins (one birth date, address and landline, two first names), a weak Anna/Anne pair, and Ben
# in two sources (one profile by his e-mail).
CRM = HEADER + (
    "c1,Max,Lehmann,max.lehmann@example.com,030 5555555,1990-05-17,Gartenstraße 4,10115,Berlin\n"
    "c2,Anna,Schmidt,anna.schmidt@example.com,,1984-02-11,Hauptstraße 1,50667,Köln\n"
    "c3,Ben,Becker,ben@example.com,,1970-01-01,Ringstraße 9,20095,Hamburg\n"
)
SHOP = HEADER + (
    "s1,Moritz,Lehmann,moritz.l@example.org,030 5555555,1990-05-17,Gartenstraße 4,10115,Berlin\n"
    "s2,Anne,Schmitt,anne.s@example.org,,,Bahnhofstraße 3,50667,Köln\n"
    "s3,Ben,Becker,ben@example.com,,1970-01-01,Ringstraße 9,20095,Hamburg\n"
)
#: What no answer of the queue may contain: the persons' values.
PERSONAL = (
    "Max",
    "Moritz",
    "Lehmann",
    "Anna",
    "Anne",
    "Schmi",
    "example",
    "1990",
    "1984",
    "Garten",
    "Haupt",
    "5555555",
    "Berlin",
    "Köln",
)
TWINS = {"first_name": -9.9, "surname": 4.1, "dob": 6.2, "household": 11.0}
WEAK = {"first_name": 3.1, "surname": 1.2, "email": -2.3, "postcode_city": 0.5}


@pytest.fixture
def settings() -> Settings:
    """Exact identifiers only: the pairs below stay unlinked whatever a matching model scores
    (resolution's own scoring and candidates are tested with identity)."""
    return Settings(_env_file=None, db="unused", probabilistic_matching=False)  # type: ignore[call-arg]


def raw_id(custos: Custos, ref: str) -> int:
    """The raw record id of SOURCE:RECORD_ID."""
    source, _, record = ref.partition(":")
    with custos.store.read() as conn:
        found = conn.execute(
            select(t.raw_records.c.id)
            .join(t.sources, t.sources.c.id == t.raw_records.c.source_id)
            .where(t.sources.c.name == source, t.raw_records.c.record_id == record)
        ).scalar_one()
    return int(found)


def add_candidate(
    custos: Custos,
    left: str,
    right: str,
    *,
    status: str = "possible",
    weight: float = 5.0,
    reason: str = "below match threshold",
    fields: dict[str, float] | None = None,
) -> int:
    """Keep the pair of records ``left`` and ``right`` (SOURCE:RECORD_ID) for review, as
    resolution does (a row of identity_candidates); returns the pair's id."""
    row = {
        "left_raw_id": raw_id(custos, left),
        "right_raw_id": raw_id(custos, right),
        "status": status,
        "weight": f"{weight:.4f}",
        "reason": reason,
        "detail": orjson.dumps(fields or {}).decode(),
        "created_at": datetime.now(UTC),
    }
    with custos.store.write() as conn:
        made = conn.execute(t.identity_candidates.insert().values(**row))
        return int(made.inserted_primary_key[0])


def profile_of(custos: Custos, ref: str) -> str:
    """The profile id SOURCE:RECORD_ID belongs to."""
    source, _, record = ref.partition(":")
    # (read to the end: a generator left open would hold a server-side cursor on PostgreSQL)
    return {(s, r): p for s, r, p in custos.xref()}[(source, record)]


def build_queue(custos: Custos, folder: Path) -> dict[str, int]:
    """Ingest and resolve the persons above, then keep three pairs for review (and one whose
    records are in one profile already): their ids by name."""
    custos.ingest(write(folder / "crm.csv", CRM), "crm")
    custos.ingest(write(folder / "shop.csv", SHOP), "shop")
    custos.resolve()
    with custos.store.write() as conn:  # a known queue, whatever resolution kept itself
        conn.execute(delete(t.identity_candidates))
    return {
        "twins": add_candidate(
            custos,
            "crm:c1",
            "shop:s1",
            status="conflict",
            weight=14.231,
            reason="first names differ: not variants",
            fields=TWINS,
        ),
        "anna": add_candidate(custos, "crm:c2", "shop:s2", weight=2.5, fields=WEAK),
        "ben_anne": add_candidate(
            custos, "crm:c3", "shop:s2", weight=-1.5, reason="no person-level evidence"
        ),
        "ben": add_candidate(custos, "crm:c3", "shop:s3", weight=20.0),  # one profile already
    }


@pytest.fixture
def queue(custos: Custos, tmp_path: Path) -> dict[str, int]:
    """The store of :func:`build_queue`, on each backend."""
    return build_queue(custos, tmp_path)


def waiting(custos: Custos) -> set[frozenset[str]]:
    """The pairs waiting for review, by their records (ids change when a full resolution
    rewrites the queue, so tests after one compare records, not ids)."""
    items = custos.review_queue(limit=1000, actor="test")["items"]
    return {frozenset((i["left"]["record"], i["right"]["record"])) for i in items}


ANNA_PAIR = frozenset(("crm:c2", "shop:s2"))
TWIN_PAIR = frozenset(("crm:c1", "shop:s1"))


def decisions(custos: Custos) -> list[tuple[str, set[int]]]:
    with custos.store.read() as conn:
        return [
            (r.decision, {r.left_raw_id, r.right_raw_id})
            for r in conn.execute(select(t.identity_decisions).order_by(t.identity_decisions.c.id))
        ]


# -- service -------------------------------------------------------------------------------------


def test_the_queue_lists_pairs_strongest_first_without_personal_values(
    custos: Custos, queue: dict[str, int]
) -> None:
    listed = custos.review_queue(actor="curator")
    assert listed["total"] == 3  # Ben's pair is in one profile: not waiting
    items = listed["items"]
    assert [i["id"] for i in items] == [queue["twins"], queue["anna"], queue["ben_anne"]]
    assert [i["weight"] for i in items] == [14.231, 2.5, -1.5]  # by number, not by text
    twins = items[0]
    assert twins["status"] == "conflict" and twins["reason"] == "first names differ: not variants"
    assert twins["fields"] == TWINS
    # what the weight holds besides the fields: the prior odds (none shown without fields)
    assert twins["prior"] == round(14.231 - sum(TWINS.values()), 2)
    assert items[2]["fields"] == {} and items[2]["prior"] is None
    assert twins["left"] == {"record": "crm:c1", "profile_id": profile_of(custos, "crm:c1")}
    assert twins["right"] == {"record": "shop:s1", "profile_id": profile_of(custos, "shop:s1")}
    assert twins["left"]["profile_id"] != twins["right"]["profile_id"]
    text = orjson.dumps(listed).decode()
    assert not [value for value in PERSONAL if value in text]

    conflicts = custos.review_queue(status="conflict")
    assert conflicts["total"] == 1 and [i["id"] for i in conflicts["items"]] == [queue["twins"]]
    page = custos.review_queue(limit=1, offset=1)
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == [queue["anna"]]
    with pytest.raises(InputError, match="unknown review status"):
        custos.review_queue(status="maybe")

    # A pair scored again (another run, the other order) is listed once, as last scored.
    again = add_candidate(custos, "shop:s2", "crm:c2", weight=3.75, fields=WEAK)
    listed = custos.review_queue()
    assert listed["total"] == 3
    assert [(i["id"], i["weight"]) for i in listed["items"]][1] == (again, 3.75)

    entry = [e for e in custos.audit_entries() if e["action"] == "profile.review"][-1]  # first
    assert entry["actor"] == "curator" and entry["purpose"] == "identity_curation"
    shown = {i[side]["profile_id"] for i in items for side in ("left", "right")}
    assert set(entry["subjects"]) == shown


def test_accept_joins_the_pair_for_good(custos: Custos, queue: dict[str, int]) -> None:
    before = profile_of(custos, "crm:c2"), profile_of(custos, "shop:s2")
    result = custos.review_decide(queue["anna"], accept=True, actor="curator", reason="same")
    assert result["decision"] == "together"
    assert result["profile_id"] == profile_of(custos, "crm:c2") == profile_of(custos, "shop:s2")
    assert result["profile_id"] in before  # one of the two ids survives
    assert result["left"] == {"record": "crm:c2", "profile_id": result["profile_id"]}
    custos.resolve(full=True)
    assert profile_of(custos, "crm:c2") == profile_of(custos, "shop:s2") == result["profile_id"]
    pair = {raw_id(custos, "crm:c2"), raw_id(custos, "shop:s2")}
    assert ("together", pair) in decisions(custos)
    # Decided: never listed again, even when a later run keeps the pair once more.
    add_candidate(custos, "crm:c2", "shop:s2", weight=2.5)
    assert ANNA_PAIR not in waiting(custos)
    with custos.store.read() as conn:
        event = conn.execute(
            select(t.profile_events).where(t.profile_events.c.action == "review.accept")
        ).one()
    assert event.actor == "curator" and {event.profile_id, event.other_profile_id} == set(before)
    assert "crm:c2" in event.reason and "same" in event.reason
    entry = next(e for e in custos.audit_entries() if e["action"] == "profile.review.accept")
    assert entry["actor"] == "curator" and entry["purpose"] == "identity_curation"
    assert entry["detail"]["records"] == ["crm:c2", "shop:s2"]


def test_reject_keeps_the_pair_apart_for_good(custos: Custos, queue: dict[str, int]) -> None:
    left, right = profile_of(custos, "crm:c1"), profile_of(custos, "shop:s1")
    result = custos.review_decide(
        queue["twins"], accept=False, actor="curator", expect=("shop:s1", "crm:c1")
    )
    assert result["decision"] == "apart" and result["profile_id"] is None
    assert (result["left"]["profile_id"], result["right"]["profile_id"]) == (left, right)
    pair = {raw_id(custos, "crm:c1"), raw_id(custos, "shop:s1")}
    assert decisions(custos) == [("apart", pair)]
    assert [i["id"] for i in custos.review_queue()["items"]] == [queue["anna"], queue["ben_anne"]]
    entry = next(e for e in custos.audit_entries() if e["action"] == "profile.review.reject")
    assert set(entry["subjects"]) == {left, right} and entry["actor"] == "curator"

    # Refused, and nothing stored: a pair decided already, one whose records are in one
    # profile, an unknown id, and an id that names another pair than the caller saw.
    with pytest.raises(InputError, match="decided already: apart"):
        custos.review_decide(queue["twins"], accept=True)
    with pytest.raises(InputError, match="in one profile already"):
        custos.review_decide(queue["ben"], accept=False)
    with pytest.raises(NotFoundError, match="no pair 999999"):
        custos.review_decide(999999, accept=True)
    with pytest.raises(InputError, match="the queue changed"):
        custos.review_decide(queue["anna"], accept=True, expect=("crm:c1", "shop:s1"))
    assert len(decisions(custos)) == 1

    # Apart on every later run, and never listed again, even when a run keeps the pair again.
    custos.resolve(full=True)
    add_candidate(custos, "shop:s1", "crm:c1", status="conflict", weight=14.2)
    assert TWIN_PAIR not in waiting(custos)
    assert profile_of(custos, "crm:c1") != profile_of(custos, "shop:s1")


def test_accept_lifts_an_earlier_unmerge_between_the_two_profiles(
    custos: Custos, queue: dict[str, int], tmp_path: Path
) -> None:
    """Accepting a pair joins the two profiles, like profile merge: an earlier decision that
    kept records of the two apart is lifted, or resolution would refuse the join."""
    web = HEADER + "w1,Anna,Schmidt,anna.schmidt@example.com,,,,,\n"
    custos.ingest(write(tmp_path / "web.csv", web), "web")
    custos.resolve(full=True)
    anna = profile_of(custos, "crm:c2")
    assert profile_of(custos, "web:w1") == anna
    custos.unmerge(anna, ["web:w1"])  # web:w1 apart from crm:c2 from now on
    assert profile_of(custos, "web:w1") != anna
    # (pairs are kept only now: each full resolution above rewrote the queue)
    joined = custos.review_decide(add_candidate(custos, "crm:c2", "shop:s2"), accept=True)
    assert joined["profile_id"] == profile_of(custos, "shop:s2") != profile_of(custos, "web:w1")
    # web:w1 and Anne's record are one person: so are web:w1 and crm:c2, kept apart before.
    result = custos.review_decide(add_candidate(custos, "web:w1", "shop:s2"), accept=True)
    assert result["profile_id"] is not None
    assert len({profile_of(custos, r) for r in ("crm:c2", "shop:s2", "web:w1")}) == 1
    pair = {raw_id(custos, "web:w1"), raw_id(custos, "crm:c2")}
    assert [d for d, p in decisions(custos) if p == pair][-1] == "together"


# -- CLI -----------------------------------------------------------------------------------------

runner = CliRunner()


def run(db: str, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, ["--db", db, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_lists_accepts_and_rejects(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOS_PROBABILISTIC_MATCHING", "false")
    db = str(tmp_path / "c.db")
    with Custos.open(db, settings) as custos:
        ids = build_queue(custos, tmp_path)
        twins = profile_of(custos, "crm:c1"), profile_of(custos, "shop:s1")
    listed = run(db, "profile", "review")
    assert "pairs waiting for review (3" in listed
    assert f"crm:c1 → {twins[0]}" in listed and f"shop:s1 → {twins[1]}" in listed
    for field in ("first_name -9.9", "surname +4.1", "dob +6.2", "household +11.0", "prior +2.8"):
        assert field in listed
    assert "first names differ" in listed and "conflict" in listed and "14.2" in listed
    assert listed.index("14.2") < listed.index("2.5") < listed.index("-1.5")
    assert not [value for value in PERSONAL if value in listed]
    assert "--offset 1" in run(db, "profile", "review", "--limit", "1")
    shown = orjson.loads(run(db, "profile", "review", "--status", "conflict", "--json"))
    assert shown["total"] == 1 and shown["items"][0]["id"] == ids["twins"]
    assert "unknown review status" in run(db, "profile", "review", "--status", "maybe", code=2)

    out = run(db, "profile", "review", "reject", str(ids["twins"]), "--reason", "twins")
    assert f"pair {ids['twins']} rejected" in out and "stay apart" in out
    assert "decided already" in run(db, "profile", "review", "accept", str(ids["twins"]), code=2)
    out = run(db, "profile", "review", "accept", "999999", code=2)
    assert "no pair 999999" in out and "fix:" in out
    stale = ("-r", "crm:c1", "-r", "shop:s1")  # the records of another pair than this id's
    assert "the queue changed" in run(
        db, "profile", "review", "accept", str(ids["anna"]), *stale, code=2
    )
    out = run(
        db,
        "profile",
        "review",
        "accept",
        str(ids["anna"]),
        "--reason",
        "same person",
        "--record",
        "shop:s2",
        "--record",
        "crm:c2",
    )
    assert f"pair {ids['anna']} accepted" in out and "list it again" in out
    with Custos.open(db, settings) as custos:
        anna = profile_of(custos, "crm:c2")
        assert anna == profile_of(custos, "shop:s2") and anna in out
        assert profile_of(custos, "crm:c1") != profile_of(custos, "shop:s1")
        assert [d for d, _ in decisions(custos)] == ["apart", "together"]
    # (the accept rebuilt the profiles, which may have rewritten the queue: compare records)
    remaining = orjson.loads(run(db, "profile", "review", "--json"))["items"]
    pairs = {frozenset((i["left"]["record"], i["right"]["record"])) for i in remaining}
    assert ANNA_PAIR not in pairs and TWIN_PAIR not in pairs
    assert "accept" in run(db, "profile", "review", "--help")


# -- REST ----------------------------------------------------------------------------------------


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_rest_review_needs_identity_curation_and_admin_to_decide(
    custos: Custos, queue: dict[str, int]
) -> None:
    made = {
        "curator": keys.create(
            custos, "curator", ["identity_curation", "customer_service"], "admin"
        ),
        "auditor": keys.create(custos, "auditor", ["identity_curation"]),
        "desk": keys.create(custos, "desk", ["customer_service"]),
        "dpo": keys.create(custos, "dpo", ["legal_compliance"], "admin"),
    }
    client = TestClient(create_app(custos))
    for name in ("desk", "dpo"):  # not bound to identity_curation
        refused = client.get("/v1/review", headers=bearer(made[name]))
        assert refused.status_code == 403, name
        assert "identity_curation" in refused.json()["error"]["message"]
    assert client.get("/v1/review").status_code == 401

    listed = client.get("/v1/review", headers=bearer(made["auditor"]))
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == 3 and body["next_offset"] is None
    assert [i["id"] for i in body["items"]] == [queue["twins"], queue["anna"], queue["ben_anne"]]
    assert body["items"][0]["fields"] == TWINS
    assert not [value for value in PERSONAL if value in listed.text]
    page = client.get(
        "/v1/review", params={"limit": 1, "status": "possible"}, headers=bearer(made["auditor"])
    ).json()
    assert page["total"] == 2 and page["next_offset"] == 1
    assert [i["id"] for i in page["items"]] == [queue["anna"]]
    bad = client.get("/v1/review", params={"status": "maybe"}, headers=bearer(made["auditor"]))
    assert bad.status_code == 422 and set(bad.json()["error"]) == {"code", "message", "hint"}

    curator = bearer(made["curator"])
    twins = f"/v1/review/{queue['twins']}/reject"
    for name in ("auditor", "desk", "dpo"):  # read scope, or an admin of another purpose
        refused = client.post(twins, json={"reason": "x"}, headers=bearer(made[name]))
        assert refused.status_code == 403, name
    assert decisions(custos) == []
    half = client.post(twins, json={"left": "crm:c1"}, headers=curator)
    assert half.status_code == 400 and "both left and right" in half.text
    stale = client.post(twins, json={"left": "crm:c2", "right": "shop:s2"}, headers=curator)
    assert stale.status_code == 400 and "the queue changed" in stale.json()["error"]["message"]
    split = client.post(twins, json={"left": "crm:c1", "right": "shop:s1"}, headers=curator)
    assert split.status_code == 200 and split.json()["decision"] == "apart"
    again = client.post(f"/v1/review/{queue['twins']}/accept", headers=curator)
    assert again.status_code == 400 and "decided already" in again.json()["error"]["message"]
    missing = client.post("/v1/review/999999/reject", json={}, headers=curator)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert missing.json()["error"]["hint"]

    joined = client.post(
        f"/v1/review/{queue['anna']}/accept", json={"reason": "same person"}, headers=curator
    )
    assert joined.status_code == 200, joined.text
    anna = profile_of(custos, "crm:c2")
    assert joined.json()["profile_id"] == anna == profile_of(custos, "shop:s2")
    # (the accept rebuilt the profiles, which may have rewritten the queue: compare records)
    left = client.get("/v1/review", params={"limit": 1000}, headers=curator).json()["items"]
    pairs = {frozenset((i["left"]["record"], i["right"]["record"])) for i in left}
    assert ANNA_PAIR not in pairs and TWIN_PAIR not in pairs

    audit = custos.audit_entries(limit=100)
    actions = {(e["actor"], e["action"]) for e in audit}
    assert {
        ("auditor", "profile.review"),
        ("curator", "profile.review.accept"),
        ("curator", "profile.review.reject"),
    } <= actions

    spec = client.get("/openapi.json").json()["paths"]
    assert spec["/v1/review"]["get"]["summary"]
    assert spec["/v1/review/{pair_id}/accept"]["post"]["summary"]
    assert "404" in spec["/v1/review/{pair_id}/reject"]["post"]["responses"]
