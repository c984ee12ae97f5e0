"""Consent ledger, purpose guard and audit log (issue 4), on both backends."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.consent.ledger import PERSON_STREAM, LedgerEvent, derive_state
from custos.consent.taxonomy import load_taxonomy
from custos.core.errors import AccessDenied, ConfigError
from custos.core.fields import Kind
from custos.service import Custos
from custos.store import tables as t
from tests.conftest import write

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TAXONOMY = load_taxonomy()

PEOPLE = """record_id,first_name,last_name,email,phone,condition,loyalty
r1,Anna,Müller,anna@example.com,030 1111111,asthma,gold
r2,Ben,Schmidt,ben@example.com,040 2222222,diabetes,silver
r3,Cara,Jones,cara@example.com,089 3333333,,bronze
"""
MAP = "categories:\n  condition: health\n"


def load(custos: Custos, tmp_path: Path, consents: str) -> None:
    custos.ingest(
        write(tmp_path / "crm.csv", PEOPLE), "crm", map_path=write(tmp_path / "crm.yaml", MAP)
    )
    custos.resolve()
    custos.ingest(
        write(tmp_path / "consents.csv", "email,purpose,status,timestamp,explicit\n" + consents),
        "crm",
        kind=Kind.CONSENTS,
    )


def exported(custos: Custos, purpose: str) -> dict[str, dict[str, object]]:
    return {
        row["email"] if "email" in row else row["profile_id"]: row
        for row in custos.export_profiles(purpose)
    }  # type: ignore[misc]


# -- state derivation -----------------------------------------------------------------------------


statuses = st.sampled_from(["granted", "denied", "withdrawn"])
streams = st.sampled_from(["email:a", "phone:b", "customer_id:c", PERSON_STREAM])


@st.composite
def ledgers(draw: st.DrawFn) -> list[LedgerEvent]:
    n = draw(st.integers(0, 12))
    events = []
    for i in range(n):
        at = T0 + timedelta(days=draw(st.integers(0, 60)))
        expires = (
            at + timedelta(days=draw(st.integers(1, 90)))
            if draw(st.booleans()) and draw(st.booleans())
            else None
        )
        events.append(
            LedgerEvent(i + 1, draw(streams), "p", draw(statuses), at, expires, draw(st.booleans()))
        )
    return events


def replay(events: list[LedgerEvent], when: datetime) -> tuple[str, bool]:
    """Brute force: play the ledger in time order, keeping each stream's last word."""
    state: dict[str, LedgerEvent] = {}
    for event in sorted(events, key=lambda e: (e.timestamp, e.id)):
        if event.timestamp > when:
            break
        if event.stream == PERSON_STREAM:
            state.clear()  # the person's own word supersedes every earlier stream
        state[event.stream] = event
    alive = [e for e in state.values() if e.expires_at is None or e.expires_at > when]
    said = {e.status for e in alive}
    if "withdrawn" in said:
        return "withdrawn", False
    if "denied" in said:
        return "denied", False
    if "granted" in said:
        return "granted", any(e.explicit for e in alive if e.status == "granted")
    return "none", False


@given(ledgers(), st.integers(-1, 100))
def test_as_of_matches_a_replay_of_the_ledger(events: list[LedgerEvent], day: int) -> None:
    when = T0 + timedelta(days=day, hours=12)
    state = derive_state(events, when)
    assert (state.status, state.explicit) == replay(events, when)


def test_withdrawal_on_any_stream_wins_and_a_person_event_supersedes() -> None:
    grant = LedgerEvent(1, "email:a", "p", "granted", T0)
    withdraw = LedgerEvent(2, "phone:b", "p", "withdrawn", T0 + timedelta(days=1))
    regrant = LedgerEvent(3, PERSON_STREAM, "p", "granted", T0 + timedelta(days=2), explicit=True)
    assert derive_state([grant, withdraw]).status == "withdrawn"
    assert derive_state([grant, withdraw, regrant]).granted
    assert derive_state([grant, withdraw, regrant]).explicit
    assert derive_state([grant], T0 - timedelta(days=1)).status == "none"  # as of before it
    expired = LedgerEvent(4, "email:a", "p", "granted", T0, expires_at=T0 + timedelta(days=1))
    assert derive_state([expired], T0 + timedelta(days=2)).status == "none"


# -- the guard on real stores -------------------------------------------------------------------


def test_no_purpose_or_unknown_purpose_is_refused(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path, "anna@example.com,marketing_email,granted,2026-01-01T00:00:00Z,\n")
    with pytest.raises(ConfigError, match="no purpose"):
        list(custos.export_profiles(None))
    with pytest.raises(ConfigError, match="unknown purpose"):
        custos.profile("anna@example.com", purpose="curiosity")


def test_consent_purposes_fail_closed(custos: Custos, tmp_path: Path) -> None:
    load(
        custos,
        tmp_path,
        "anna@example.com,marketing_email,granted,2026-01-01T00:00:00Z,\nben@example.com,marketing_email,denied,2026-01-01T00:00:00Z,\n",
    )
    rows = exported(custos, "marketing_email")
    assert set(rows) == {"anna@example.com"}  # Ben denied, Cara never asked
    assert "street" not in rows["anna@example.com"] and "loyalty" not in rows["anna@example.com"]
    with pytest.raises(AccessDenied):
        custos.profile("cara@example.com", purpose="marketing_email")
    assert len(list(custos.export_profiles("customer_service"))) == 3  # contract: everyone


def test_withdrawal_on_one_record_of_a_merged_person_removes_the_person(
    custos: Custos, tmp_path: Path
) -> None:
    load(custos, tmp_path, "anna@example.com,marketing_email,granted,2026-01-01T00:00:00Z,\n")
    # A second record of Anna (web shop, other e-mail) merges through her phone.
    custos.ingest(
        write(
            tmp_path / "shop.csv",
            "record_id,first_name,email,phone\nw1,Anna,anna.work@example.com,+49 30 1111111\n",
        ),
        "shop",
    )
    custos.resolve()
    anna = custos.find_profile("anna@example.com")
    assert anna == custos.find_profile("anna.work@example.com")
    assert [row["profile_id"] for row in custos.export_profiles("marketing_email")] == [anna]
    custos.ingest(
        write(
            tmp_path / "optout.csv",
            "email,purpose,status,timestamp\nanna.work@example.com,marketing_email,withdrawn,2026-02-01T00:00:00Z\n",
        ),
        "shop",
        kind=Kind.CONSENTS,
    )
    assert exported(custos, "marketing_email") == {}  # at once: no resolve in between
    as_of_january = custos.consent("anna@example.com", as_of=datetime(2026, 1, 15, tzinfo=UTC))
    assert as_of_january["states"]["marketing_email"]["status"] == "granted"


def test_health_data_needs_explicit_consent_and_never_reaches_marketing(
    custos: Custos, tmp_path: Path
) -> None:
    load(
        custos,
        tmp_path,
        "anna@example.com,health_research,granted,2026-01-01T00:00:00Z,yes\n"
        "ben@example.com,health_research,granted,2026-01-01T00:00:00Z,no\n"
        "anna@example.com,marketing_email,granted,2026-01-01T00:00:00Z,yes\n"
        "ben@example.com,marketing_email,granted,2026-01-01T00:00:00Z,yes\n",
    )
    marketing = list(custos.export_profiles("marketing_email"))
    assert len(marketing) == 2 and all("condition" not in row for row in marketing)
    research = {row["profile_id"]: row for row in custos.export_profiles("health_research")}
    anna = custos.find_profile("anna@example.com")
    ben = custos.find_profile("ben@example.com")
    assert research[anna]["condition"] == "asthma"
    assert "condition" not in research[ben]  # consent, but not explicit
    shown = custos.profile("anna@example.com", purpose="customer_service")
    assert "condition" not in {g["attribute"] for g in shown["golden"]}


def test_consent_by_hand_and_audit_of_reads(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path, "")
    assert exported(custos, "personalization") == {}
    custos.record_consent(
        "cara@example.com",
        purpose="personalization",
        status="granted",
        source="call-centre",
        method="call",
    )
    assert set(exported(custos, "personalization")) == {"cara@example.com"}
    custos.record_consent(
        "cara@example.com", purpose="personalization", status="withdrawn", source="web"
    )
    assert exported(custos, "personalization") == {}
    entries = custos.audit_entries(profile="cara@example.com")
    actions = [e["action"] for e in entries]
    assert (
        "export.profiles" in actions
        and "consent.granted" in actions
        and "consent.withdrawn" in actions
    )
    export = next(e for e in entries if e["action"] == "export.profiles")
    assert export["purpose"] == "personalization" and "email" in export["detail"]["fields"]
    assert custos.audit_verify() is None


def test_audit_verify_detects_a_database_edit(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    runner = CliRunner()
    with Custos.open(str(db)) as custos:
        load(custos, tmp_path, "anna@example.com,marketing_email,granted,2026-01-01T00:00:00Z,\n")
        list(custos.export_profiles("marketing_email"))
    assert runner.invoke(cli, ["--db", str(db), "audit", "verify"]).exit_code == 0
    with sqlite3.connect(db) as conn:  # edit the log behind custos's back
        conn.execute("UPDATE audit_log SET purpose = 'analytics' WHERE action = 'export.profiles'")
    result = runner.invoke(cli, ["--db", str(db), "audit", "verify"])
    assert result.exit_code == 1 and "tampered" in result.output
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit_log WHERE id = 1")
    assert runner.invoke(cli, ["--db", str(db), "audit", "verify"]).exit_code == 1


def test_cli_export_consent_and_refusals(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with Custos.open(str(db)) as custos:
        load(custos, tmp_path, "anna@example.com,marketing_email,granted,2026-01-01T00:00:00Z,\n")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--db", str(db), *args])
        return result.exit_code, result.output

    code, output = run("export", "profiles", "--purpose", "marketing_email")
    assert code == 0 and output.count("profile_id") == 1 and "anna@example.com" in output
    code, output = run("export", "profiles", "--purpose", "marketing_email", "--format", "csv")
    assert code == 0 and output.splitlines()[0].startswith("profile_id,first_name")
    assert run("export", "profiles")[0] == 2  # --purpose is required
    assert run("profile", "show", "cara@example.com", "--purpose", "marketing_email")[0] == 3
    code, output = run(
        "consent", "withdraw", "anna@example.com", "--purpose", "marketing_email", "--source", "web"
    )
    assert code == 0
    code, output = run("consent", "show", "anna@example.com")
    assert code == 0 and "withdrawn" in output
    code, output = run("consent", "show", "anna@example.com", "--as-of", "2026-01-02")
    assert code == 0 and "granted" in output
    assert run("export", "profiles", "--purpose", "marketing_email")[1] == ""
    code, output = run("audit", "show", "--profile", "anna@example.com")
    assert code == 0 and "consent.withdrawn" in output


# -- property: no read path ever shows what the rules forbid -----------------------------------


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[
    list[tuple[int, str, str]], list[tuple[int, int]], list[tuple[int, str, str, bool, int]], bool
]:
    people = 4
    records = [
        (p, f"p{p}@example.com", draw(st.sampled_from(["asthma", "", "flu"])))
        for p in range(people)
    ]
    merges = draw(
        st.lists(st.tuples(st.integers(0, people - 1), st.integers(0, people - 1)), max_size=2)
    )
    purposes = st.sampled_from(
        ["marketing_email", "health_research", "analytics", "customer_service"]
    )
    events = draw(
        st.lists(
            st.tuples(
                st.integers(0, people - 1), purposes, statuses, st.booleans(), st.integers(0, 30)
            ),
            max_size=10,
        )
    )
    return records, merges, events, draw(st.booleans())


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scenarios())
def test_no_read_returns_what_the_rules_forbid(
    tmp_path_factory: pytest.TempPathFactory, scenario: tuple
) -> None:  # type: ignore[type-arg]
    records, merges, events, unmerge = scenario
    tmp = tmp_path_factory.mktemp("prop")
    lines = ["record_id,first_name,email,condition,phone"]
    for p, email, condition in records:
        lines.append(f"r{p},Person{p},{email},{condition},")
    for i, (a, b) in enumerate(merges):  # two records sharing a phone join both people's e-mails
        if a != b:
            lines.append(f"m{i},Person{a},{records[a][1]},,030 555000{i}")
            lines.append(f"n{i},Person{a},{records[b][1]},,030 555000{i}")
    consent_lines = ["email,purpose,status,timestamp,explicit"]
    for p, purpose, status, explicit, day in events:
        consent_lines.append(
            f"{records[p][1]},{purpose},{status},{(T0 + timedelta(days=day)).isoformat()},{'yes' if explicit else 'no'}"
        )
    with Custos.open(str(tmp / "c.db")) as custos:
        custos.ingest(
            write(tmp / "crm.csv", "\n".join(lines) + "\n"),
            "crm",
            map_path=write(tmp / "m.yaml", MAP),
        )
        custos.resolve()
        custos.ingest(
            write(tmp / "c.csv", "\n".join(consent_lines) + "\n"), "crm", kind=Kind.CONSENTS
        )
        linked = [f"n{i}" for i, (a, b) in enumerate(merges) if a != b]
        if unmerge and linked:  # split the linking record off again
            owner = {(s, r): p for s, r, p in custos.xref()}[("crm", linked[0])]
            if sum(1 for _, _, p in custos.xref() if p == owner) > 1:
                custos.unmerge(owner, [f"crm:{linked[0]}"])
        for purpose_name in ("marketing_email", "health_research", "analytics", "customer_service"):
            purpose = TAXONOMY.purposes[purpose_name]
            rows = list(custos.export_profiles(purpose_name))
            for row in rows:
                with custos.store.read() as conn:  # consent attaches through identifiers
                    emails = set(
                        conn.execute(
                            select(t.profile_identifiers.c.value).where(
                                t.profile_identifiers.c.profile_id == row["profile_id"],
                                t.profile_identifiers.c.kind == "email",
                            )
                        ).scalars()
                    )
                person_events = [
                    LedgerEvent(
                        i,
                        f"email:{records[p][1]}",
                        pn,
                        status,
                        T0 + timedelta(days=day),
                        None,
                        explicit,
                    )
                    for i, (p, pn, status, explicit, day) in enumerate(events)
                    if records[p][1] in emails and pn == purpose_name
                ]
                status, explicit = replay(person_events, datetime.now(UTC))
                if purpose.basis.value == "consent":
                    assert status == "granted"
                if purpose.basis.value == "legitimate_interest":
                    assert status not in ("denied", "withdrawn")
                for field in row:
                    if field in ("profile_id", "identifiers"):
                        continue
                    category = TAXONOMY.category(field, {"condition": "health"})
                    assert category in purpose.categories
                    if category in TAXONOMY.special:
                        assert status == "granted" and explicit
                for kind in row["identifiers"]:
                    assert TAXONOMY.category(kind) in purpose.categories


# -- consent signals from the field --------------------------------------------------------------

TC_STRING = "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA"


def test_tc_string_core_segment_decodes() -> None:
    from custos.consent.tcf import SignalError
    from custos.consent.tcf import decode as decode_tc_string

    decoded = decode_tc_string(TC_STRING)
    assert (decoded.version, decoded.cmp_id, decoded.cmp_version, decoded.consent_screen) == (
        2,
        21,
        7,
        2,
    )
    assert decoded.consent_language == "EN" and decoded.vendor_list_version == 23
    assert int(decoded.created.timestamp()) == 1228644257
    assert int(decoded.last_updated.timestamp()) == 1326215413
    assert {1, 3, 9, 10} <= decoded.purposes_consent and 2 not in decoded.purposes_consent
    with pytest.raises(SignalError):
        decode_tc_string("not!base64")


def test_signals_map_onto_purposes() -> None:
    from custos.consent.signals import signals_from_event

    message = {
        "context": {
            "consent": {
                "categoryPreferences": {"Marketing": True, "Advertising": False},
                "tcString": TC_STRING,
            },
            "consentManagement": {
                "allowedConsentIds": ["analytics"],
                "deniedConsentIds": ["personalization"],
            },
        }
    }
    found, problems = signals_from_event(message, TAXONOMY.signals, {"Sec-GPC": "1"})
    seen = {(s.method, s.purpose, s.status) for s in found}
    assert ("segment", "marketing_email", "granted") in seen
    assert ("segment", "third_party_sharing", "denied") in seen
    assert ("rudderstack", "analytics", "granted") in seen
    assert ("rudderstack", "personalization", "denied") in seen
    assert ("tcf", "personalization", "denied") in seen  # TCF purposes 5, 6 were not consented
    assert ("tcf", "third_party_sharing", "denied") in seen
    assert ("gpc", "third_party_sharing", "denied") in seen
    assert problems == []
    bad, problems = signals_from_event({"context": {"tcString": "AAAA"}}, TAXONOMY.signals)
    assert bad == [] and problems and problems[0].startswith("TCF")


def test_signals_become_ledger_events_that_the_guard_obeys(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path, "")
    anna = custos.find_profile("anna@example.com")
    message = {"context": {"consent": {"categoryPreferences": {"Marketing": True}}}}
    ids, problems = custos.record_signals(
        message, identifiers={"email": "anna@example.com"}, source="web"
    )
    assert ids and not problems
    assert [row["profile_id"] for row in custos.export_profiles("marketing_email")] == [anna]
    custos.record_signals(
        {"context": {"gpc": True}}, identifiers={"email": "anna@example.com"}, source="web"
    )
    ledger = custos.consent("anna@example.com")
    assert {e["method"] for e in ledger["ledger"]} == {"segment", "gpc"}
    assert ledger["states"]["third_party_sharing"]["status"] == "denied"


# -- the materialised states never hide a newer ledger ------------------------------------------


def test_bulk_reads_see_events_the_copy_has_not_caught_up_with(
    custos: Custos, tmp_path: Path
) -> None:
    import time as clock

    from custos.consent import ledger as ledger_module

    load(
        custos,
        tmp_path,
        "anna@example.com,marketing_email,granted,2026-01-01T00:00:00Z,\nben@example.com,marketing_email,granted,2026-01-01T00:00:00Z,\n",
    )
    assert len(list(custos.export_profiles("marketing_email"))) == 2  # served from the copy
    with custos.store.write() as conn:  # behind the copy's back: no refresh
        ledger_module.append_event(
            conn,
            source_id=1,
            purpose="marketing_email",
            status="withdrawn",
            at=datetime.now(UTC),
            identifiers={"email": "ben@example.com"},
        )
        ledger_module.append_event(
            conn,
            source_id=1,
            purpose="marketing_email",
            status="granted",
            at=datetime.now(UTC),
            identifiers={"email": "cara@example.com"},
            expires_at=datetime.now(UTC) + timedelta(seconds=1),
        )
    ids = {row["profile_id"] for row in custos.export_profiles("marketing_email")}
    assert ids == {custos.find_profile("anna@example.com"), custos.find_profile("cara@example.com")}
    custos.refresh_consent()
    clock.sleep(1.2)  # Cara's consent expires; the copy says "recheck" and the read does
    ids = {row["profile_id"] for row in custos.export_profiles("marketing_email")}
    assert ids == {custos.find_profile("anna@example.com")}


def test_a_new_identity_graph_retires_the_copy(custos: Custos, tmp_path: Path) -> None:
    load(
        custos,
        tmp_path,
        "anna@example.com,marketing_email,granted,2026-01-01T00:00:00Z,\ncara@example.com,marketing_email,withdrawn,2026-01-01T00:00:00Z,\n",
    )
    assert len(list(custos.export_profiles("marketing_email"))) == 1
    # A record that shows Anna and Cara are one person (two e-mails, one record): after resolve,
    # Cara's withdrawal applies to the merged person.
    custos.ingest(
        write(
            tmp_path / "link.csv",
            "record_id,first_name,email,phone\nx1,Anna,cara@example.com,030 1111111\n",
        ),
        "shop",
    )
    custos.resolve()
    assert list(custos.export_profiles("marketing_email")) == []


def test_an_unmerge_recomputes_consent(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path, "anna@example.com,marketing_email,granted,2026-01-01T00:00:00Z,\n")
    custos.ingest(
        write(
            tmp_path / "shop.csv",
            "record_id,first_name,email,phone\nw1,Anna,anna.work@example.com,+49 30 1111111\n",
        ),
        "shop",
    )
    custos.resolve()
    custos.ingest(
        write(
            tmp_path / "optout.csv",
            "email,purpose,status,timestamp\nanna.work@example.com,marketing_email,withdrawn,2026-02-01T00:00:00Z\n",
        ),
        "shop",
        kind=Kind.CONSENTS,
    )
    anna = custos.find_profile("anna@example.com")
    assert list(custos.export_profiles("marketing_email")) == []  # the merged person withdrew
    custos.unmerge(anna, ["shop:w1"], reason="the work address belongs to a colleague")
    assert [row["profile_id"] for row in custos.export_profiles("marketing_email")] == [anna]


def test_cli_explain_unmerge_merge(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with Custos.open(str(db)) as custos:
        load(custos, tmp_path, "")
        custos.ingest(
            write(
                tmp_path / "shop.csv",
                "record_id,first_name,email,phone\nw1,Anna,anna.work@example.com,+49 30 1111111\n",
            ),
            "shop",
        )
        custos.resolve()
        anna = custos.find_profile("anna@example.com")
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", str(db), "profile", "explain", anna])
    assert result.exit_code == 0 and "shop:w1" in result.output and "exact:phone" in result.output
    result = runner.invoke(
        cli,
        [
            "--db",
            str(db),
            "profile",
            "unmerge",
            anna,
            "--record",
            "shop:w1",
            "--reason",
            "colleague",
        ],
    )
    assert result.exit_code == 0 and "shop:w1 →" in result.output
    result = runner.invoke(
        cli, ["--db", str(db), "profile", "merge", anna, "anna.work@example.com"]
    )
    assert result.exit_code == 0 and anna in result.output
    assert (
        runner.invoke(
            cli, ["--db", str(db), "profile", "unmerge", anna, "--record", "nope"]
        ).exit_code
        == 2
    )
