"""Probabilistic matching: links without shared identifiers, coherent clusters, saved and versioned
models, incremental attachment that agrees with a full rebuild, explainable weights."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.fields import MATCH_SOURCE
from custos.core.settings import Settings
from custos.identity import matcher
from custos.identity.exact import other_gender
from custos.identity.graph import CoherentUnionFind, same_birth_date
from custos.service import Custos
from custos.store import tables as t
from tests.conftest import write

# No two records of one person share an identifier: only names, birth date and address agree.
CRM = """record_id,first_name,last_name,date_of_birth,street,postcode,city,email
c1,Johanna,Kowalczyk,1984-06-12,Lindenstraße 7,10115,Berlin,j.kowalczyk@example.com
c2,Emil,Brandtner,1990-02-03,Hafenweg 2,20095,Hamburg,emil.b@example.com
c3,Maria,Schulz,1971-09-30,Gartenweg 1,80331,München,m.schulz@example.com
c4,Maria,Schulz,1988-01-15,Bergstraße 9,50667,Köln,maria.s@example.org
"""
SHOP = """record_id,first_name,last_name,date_of_birth,street,postcode,city,email
w1,Johana,Kowalczyk,1984-06-12,Lindenstr. 7,10115,Berlin,johanna.k@example.net
w2,Emil,Brandtner,1990-03-02,Hafenweg 2,20095,Hamburg,
"""
LATER = """record_id,first_name,last_name,date_of_birth,street,postcode,city
n1,Johanna,Kowalczik,1984-06-12,Lindenstraße 7,10115,Berlin
n2,Maria,Schulz,1971-09-30,Gartenweg 1,80331,München
n3,Theo,Quandtmeyer,2001-12-24,Ringstraße 40,04109,Leipzig
"""


def _xref(app: Custos) -> dict[tuple[str, str], str]:
    return {(s, r): p for s, r, p in app.xref()}


def _load(app: Custos, tmp_path: Path) -> None:
    app.ingest(write(tmp_path / "crm.csv", CRM), "crm")
    app.ingest(write(tmp_path / "shop.csv", SHOP), "webshop")


def test_records_without_shared_identifiers_link_by_names_birth_date_and_address(
    custos: Custos, tmp_path: Path
) -> None:
    _load(custos, tmp_path)
    summary = custos.resolve()
    x = _xref(custos)
    assert x[("crm", "c1")] == x[("webshop", "w1")]  # first-name typo, other e-mail
    assert x[("crm", "c2")] == x[("webshop", "w2")]  # day and month swapped
    assert x[("crm", "c3")] != x[("crm", "c4")]  # same name, different people
    assert summary.probabilistic_links == 2 and summary.mode == "full"


def test_explain_shows_the_match_weight_of_each_field(custos: Custos, tmp_path: Path) -> None:
    _load(custos, tmp_path)
    custos.resolve()
    explained = custos.explain(_xref(custos)[("crm", "c1")])
    links = [link for r in explained["records"] for link in r["why"]]
    match = next(link for link in links if link["rule"] == "match")
    fields = match["fields"]
    assert fields["dob"] > 0 and fields["surname"] > 0 and fields["email"] < 0
    assert sum(fields.values()) > float(match["weight"])  # the prior (log2 odds) is negative
    assert "Johanna" not in json.dumps(explained)  # references only, no values


def test_model_is_saved_versioned_and_reused(custos: Custos, tmp_path: Path) -> None:
    _load(custos, tmp_path)
    first = custos.resolve()
    assert first.model_version == 1 and first.trained
    again = custos.resolve(full=True)
    assert again.model_version == 1 and not again.trained
    retrained = custos.resolve(retrain=True)
    assert retrained.model_version == 2 and retrained.trained
    history = custos.match_models()
    assert [m["version"] for m in history] == [2, 1]
    assert history[0]["design"] == matcher.DESIGN_VERSION


def test_incremental_attach_agrees_with_a_full_rebuild(custos: Custos, tmp_path: Path) -> None:
    _load(custos, tmp_path)
    custos.resolve()
    before = _xref(custos)
    custos.ingest(write(tmp_path / "later.csv", LATER), "later")
    summary = custos.resolve()
    assert summary.mode == "incremental" and summary.records == 3
    x = _xref(custos)
    assert all(x[k] == v for k, v in before.items())  # nothing existing moved
    assert x[("later", "n1")] == x[("crm", "c1")]
    assert x[("later", "n2")] == x[("crm", "c3")] != x[("crm", "c4")]
    assert x[("later", "n3")] not in set(before.values())
    custos.resolve(full=True)
    assert _xref(custos) == x
    nothing = custos.resolve()
    assert nothing.mode == "incremental" and nothing.records == 0


def test_incremental_attach_obeys_unmerge_decisions(custos: Custos, tmp_path: Path) -> None:
    _load(custos, tmp_path)
    custos.resolve()
    pid = _xref(custos)[("crm", "c1")]
    custos.unmerge(pid, ["webshop:w1"], reason="two people")
    custos.ingest(write(tmp_path / "later.csv", LATER), "later")
    custos.resolve()
    x = _xref(custos)
    assert x[("webshop", "w1")] != x[("crm", "c1")]  # the new record did not rejoin them
    assert x[("later", "n1")] in {x[("webshop", "w1")], x[("crm", "c1")]}


def test_coherent_clusters_refuse_links_that_join_different_birth_dates() -> None:
    dates = {1: "1980-01-01", 2: "1980-01-01", 3: "1975-06-30", 4: "1975-06-30"}
    forest = CoherentUnionFind([1, 2, 3, 4], {k: (None, None, d, None) for k, d in dates.items()})
    assert forest.union(1, 2) and forest.union(3, 4)
    assert not forest.union(2, 3)  # two people: no weight is asked, none could join them
    assert forest.conflicts == 1 and forest.why == "birth dates differ"
    assert forest.union(2, 3, check=False)  # a person's forced merge still goes through


def test_coherent_clusters_refuse_links_that_join_two_first_names() -> None:
    facts = {
        1: ("max", "lehmann", "2001-04-03", None),
        2: ("max", "lehmann", None, None),
        3: ("moritz", "lehmann", "2001-04-03", None),
        4: ("hans", "maier", None, None),
        5: ("johannes", "maier", None, None),
    }
    forest = CoherentUnionFind(facts, facts)
    assert forest.union(1, 2)
    assert not forest.union(2, 3)  # twins: one birth date, two first names
    assert forest.why == "first names differ"
    assert forest.union(4, 5)  # a diminutive is the same name


def test_coherent_clusters_refuse_links_that_join_two_forms_of_address() -> None:
    """Twins "Mr Julin Horn" (Julian, mistyped) and "Ms Julia Horn": a shop account of his,
    "Juulian", no form of address, near both names, bridges nothing."""
    facts = {
        1: ("julin", "horn", "1983-05-12", None),
        2: ("juulian", "horn", "1983-05-12", None),
        3: ("julia", "horn", None, None),
    }
    forest = CoherentUnionFind(facts, facts, genders={1: "m", 3: "f"})
    assert forest.union(1, 2)
    assert not forest.union(2, 3)
    assert forest.why == "the form of address states the other gender"
    assert CoherentUnionFind(facts, facts).union(2, 3)  # (without them, near names)


def test_a_form_of_address_against_a_first_name() -> None:
    assert other_gender("m", "julin", "f", "julia")  # two forms of address
    assert other_gender("f", "r", None, "robert")  # "Mrs R. West" is not Robert
    # a record's own first name says who it is: its form of address is not weighed against
    # the other's first name ("Ms Nicole" and a shop's "Nicoe", read Nico, may be one)
    assert not other_gender("f", "nicole", None, "nico")


def test_birth_date_compatibility() -> None:
    assert same_birth_date("1984-06-12", "1984-12-06")  # day and month swapped
    assert same_birth_date("1984-06-12", "1948-06-12")  # only the year garbled
    assert same_birth_date("1984-06-12", "1984-06-13")
    assert not same_birth_date("1984-06-12", "1985-07-12")  # two parts differ
    assert same_birth_date("1984-06-12", "1884-06-12")  # another century, same "84"
    assert same_birth_date("1984-06-12", "1994-06-12")  # one digit
    assert same_birth_date("1964-06-12", "1996-06-12")  # a doubled digit shifts the rest
    assert same_birth_date("1984-06-12", "1984-06-21")  # two digits swapped
    # one part, but no slip of the hand: a mother and her daughter, two namesakes
    assert not same_birth_date("1965-09-18", "2007-09-18")
    # two digits of the year wrong: a father and a son of one name and birthday
    assert not same_birth_date("1953-11-26", "1989-11-26")
    assert same_birth_date("1964-06-12", "1941-06-12")  # one digit dropped, another added
    assert not same_birth_date("1965-10-16", "1965-10-04")
    assert not same_birth_date("1965-03-16", "1965-11-16")


def test_smoothing_gives_every_level_some_mass() -> None:
    model = {
        "comparisons": [
            {
                "comparison_levels": [
                    {"is_null_level": True},
                    {"m_probability": 1.0, "u_probability": 0.01},
                    {"m_probability": 0.0},
                ]
            }
        ]
    }
    levels = matcher.smooth(model)["comparisons"][0]["comparison_levels"][1:]
    assert all(lv["m_probability"] > 0 and lv["u_probability"] > 0 for lv in levels)
    assert abs(sum(lv["m_probability"] for lv in levels) - 1) < 1e-9


def test_shipped_default_model_matches_the_comparison_design() -> None:
    model = matcher.default_model()
    assert model is not None
    names = [c["output_column_name"] for c in model["comparisons"]]
    assert names == list(matcher.COMPARISONS)
    designed = matcher._settings().create_settings_dict("duckdb")
    rules = [r["blocking_rule"] for r in model["blocking_rules_to_generate_predictions"]]
    assert rules == [r["blocking_rule"] for r in designed["blocking_rules_to_generate_predictions"]]


def test_cli_resolve_full_and_retrain(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    assert CliRunner().invoke(cli, ["--db", db, "init"]).exit_code == 0  # only init creates a store
    runner = CliRunner()
    crm = write(tmp_path / "crm.csv", CRM)
    assert runner.invoke(cli, ["--db", db, "ingest", str(crm), "--source", "crm"]).exit_code == 0
    first = runner.invoke(cli, ["--db", db, "resolve"])
    assert first.exit_code == 0 and "full run, model v1 (trained now)" in first.output
    shop = write(tmp_path / "shop.csv", SHOP)
    assert runner.invoke(cli, ["--db", db, "ingest", str(shop), "--source", "shop"]).exit_code == 0
    second = runner.invoke(cli, ["--db", db, "resolve"])
    assert second.exit_code == 0 and "incremental run, model v1" in second.output
    third = runner.invoke(cli, ["--db", db, "resolve", "--retrain"])
    assert third.exit_code == 0 and "model v2 (trained now)" in third.output
    with Custos.open(db) as app, app.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.match_models)).scalar_one() == 2


def test_duckdb_memory_limit_is_configured_and_changes_no_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CUSTOS_DUCKDB_MEMORY_LIMIT`` reaches the DuckDB that scores a full resolution; a
    smaller limit only makes it spill, never changes a profile; a value DuckDB cannot read is
    refused when the settings are read."""
    results = []
    seen: list[str] = []
    real = matcher._db_api

    def spy(memory: str = matcher.DUCKDB_MEMORY) -> object:
        api = real(memory)
        seen.append(
            api.duckdb_con.execute("select current_setting('memory_limit')").fetchall()[0][0]
        )
        return api

    monkeypatch.setattr(matcher, "_db_api", spy)
    for limit in ("1GB", "64MB"):
        monkeypatch.setenv("CUSTOS_DUCKDB_MEMORY_LIMIT", limit)
        db = tmp_path / f"{limit}.db"
        with Custos.open(str(db), Settings(db=str(db)), create=True) as app:
            _load(app, tmp_path)
            app.resolve()
            results.append(sorted(_xref(app).items()))
    assert results[0] == results[1]
    assert seen[-1].replace(" ", "") in ("61.0MiB", "64.0MiB", "61MiB", "64MiB"), seen
    monkeypatch.setenv("CUSTOS_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValidationError):
        Settings()


def _people_table(persons: int) -> object:
    """A matcher table of ``persons`` synthetic persons with two records each (the second with
    another e-mail), none of them with first name and surname swapped."""
    import random

    from custos.identity.loading import arrow_table

    rng = random.Random(7)
    firsts = ["anna", "ben", "clara", "david", "eva", "felix", "greta", "hugo", "ida", "jonas"]
    lasts = ["adler", "bauer", "conrad", "dietz", "engel", "fuchs", "graf", "hahn", "imhof"]
    columns: dict[str, list[object]] = {"unique_id": [], **{k: [] for k in MATCH_SOURCE}}
    for person in range(persons):
        first, last = rng.choice(firsts), rng.choice(lasts) + str(person % 97)
        dob = f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        city = f"city{rng.randint(1, 300)}"
        for copy in range(2):
            columns["unique_id"].append(2 * person + copy)
            row = {
                "first_name": first,
                "surname": last,
                "email": f"p{person}.{copy}@example.com",
                "phone": None,
                "dob": dob,
                "street": f"{rng.randint(1, 99)} road {person}",
                "postcode": None,
                "city": city,
                "customer_id": None,
            }
            for key in MATCH_SOURCE:
                columns[key].append(row[key])
    return arrow_table(columns)


def _probabilities(model: dict[str, Any]) -> list[float]:
    return [
        float(level[key])
        for comparison in model["comparisons"]
        for level in comparison["comparison_levels"]
        for key in ("m_probability", "u_probability")
        if key in level
    ] + [float(model["probability_two_random_records_match"])]


def test_training_apart_in_a_process_of_its_own_gives_the_same_model(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A large table trains in a process of its own (DuckDB keeps Python's lock, so it would
    take turns with exact linking on this one): the same model as training here; where no such
    process can start, it trains here and says so."""
    table = _people_table(1_500)
    with caplog.at_level(logging.WARNING, logger="custos.identity.matcher"):
        apart = matcher.train_apart(table, apart_from=table.num_rows)
    assert "trained in this process" not in caplog.text  # (the process ran)
    assert apart["custos_design_version"] == matcher.DESIGN_VERSION

    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python-here"))
    with caplog.at_level(logging.WARNING, logger="custos.identity.matcher"):
        here = matcher.train_apart(table, apart_from=table.num_rows)
    assert "trained in this process (FileNotFoundError)" in caplog.text
    assert _probabilities(apart) == pytest.approx(_probabilities(here), rel=1e-9, abs=1e-12)
    assert _probabilities(apart) != pytest.approx(_probabilities(matcher.default_model() or {}))


def test_a_level_that_sampling_never_sees_is_bounded_not_left_at_the_default() -> None:
    """Random sampling of two million pairs sees no pair with first name and surname swapped
    here: that level's u is bounded by what the sample shows (about one in two million, kept
    at 1e-6 by smoothing), not left at the shipped default's; a level it sees keeps its
    sampled estimate."""
    table = _people_table(1_500)
    default = matcher.default_model()
    assert default is not None
    trained = matcher.train(table)

    def level(model: dict[str, object], label: str) -> dict[str, float]:
        for comparison in model["comparisons"]:  # type: ignore[attr-defined]
            for lv in comparison["comparison_levels"]:
                if lv.get("label_for_charts", "").startswith(label):
                    return lv  # type: ignore[no-any-return]
        raise AssertionError(label)

    reversed_u = level(trained, "Match on reversed cols")["u_probability"]
    assert reversed_u < 2e-6 < level(default, "Match on reversed cols")["u_probability"]
    # ten first names: about one random pair in ten agrees (sampled, not bounded)
    assert 0.05 < level(trained, "Exact match on first_name")["u_probability"] < 0.2


def test_one_rule_weighs_agreement_against_a_conflict_in_both_stages() -> None:
    """A conflict in one fact is outweighed by two other agreeing person-level facts, one of
    them an identifier of the person; exact linking and the probabilistic stage apply that one
    rule, each counting what it sees (shared identifiers; agreeing comparisons)."""
    from custos.identity import exact, plan
    from custos.identity.graph import Node, outweighed

    assert outweighed(("first_name",), 1, 1) and outweighed(("dob",), 2, 0)
    assert not outweighed(("first_name",), 1, 0)  # an identifier alone
    assert not outweighed(("first_name",), 0, 3)  # no identifier
    assert not outweighed(("first_name", "dob"), 2, 2)  # two conflicts
    bits = matcher.EVIDENCE_BITS
    assert plan._outweighed(("first_name",), bits["customer_id"] | bits["dob"])
    assert not plan._outweighed(("first_name",), bits["customer_id"] | bits["surname"])
    number, landline = ("customer_id", "C-17"), ("phone", "+4930123456")

    def pair(shared: tuple[str, str]) -> tuple[Node, Node]:
        return (
            Node(1, True, "jamie", "smit", "1990-01-02", (shared,)),
            Node(2, True, "fedde", "smit", "1990-01-02", (shared,)),
        )

    assert exact._outweighed(("first_name",), *pair(number))
    assert not exact._outweighed(("first_name",), *pair(landline))  # the home's, not his
