"""De-identified releases: k-anonymity and l-diversity per person, pseudonyms, refusal."""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.errors import ConfigError
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.privacy.deid import Refused, Row, deidentify, pseudonym
from custos.privacy.deid.checks import per_person_l
from custos.privacy.deid.operators import operator_for
from custos.privacy.deid.operators.bands import Bands
from custos.privacy.deid.operators.categorical import Categorical
from custos.privacy.deid.operators.dates import Dates
from custos.privacy.deid.operators.prefix import Prefix
from custos.service import Custos
from custos.service.release import _age, release
from custos.store import releases as register
from custos.store import tables as t
from tests.conftest import write

TAXONOMY = """purposes:
  clinical_research:
    basis: consent
    description: "research on treatment outcomes"
    categories: [identity, location, health]
"""
MAP = "categories:\n  sex: identity\n  finding: health\n"
FINDINGS = ("asthma", "diabetes", "hypertension", "migraine", "influenza")
PREFIXES = ("101", "102", "801", "803")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with the research purpose and a secret key of the test's own."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        db="unused",
        secret_key_file=str(tmp_path / "key" / "secret.key"),
        taxonomy=str(write(tmp_path / "taxonomy.yaml", TAXONOMY)),
    )


def patients(folder: Path, *, people: int = 90, seed: int = 5) -> dict[str, Path]:
    """A synthetic clinic: persons (CRM, with sex and date of birth), visits with a finding
    (one to four per person), and explicit consent to research for all but every tenth."""
    rng = random.Random(seed)
    persons = ["record_id,first_name,last_name,email,date_of_birth,postcode,sex"]
    visits = ["record_id,email,visit_date,finding"]
    consents = ["email,purpose,status,timestamp,explicit"]
    visit = 0
    for i in range(people):
        email = f"patient{i}@example.org"
        born = f"{rng.randint(1940, 2000)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        postcode = rng.choice(PREFIXES) + f"{rng.randint(0, 99):02d}"
        persons.append(f"p{i},Pat{chr(97 + i % 26)}ience,Testperson{i},{email},{born},{postcode},")
        persons[-1] += rng.choice("FM")
        for _ in range(rng.randint(1, 4)):
            visit += 1
            when = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            visits.append(f"v{visit},{email},{when},{rng.choice(FINDINGS)}")
        if i % 10:
            consents.append(f"{email},clinical_research,granted,2026-01-01T00:00:00Z,yes")
    return {
        "persons": write(folder / "persons.csv", "\n".join(persons) + "\n"),
        "visits": write(folder / "visits.csv", "\n".join(visits) + "\n"),
        "consents": write(folder / "consents.csv", "\n".join(consents) + "\n"),
        "map": write(folder / "map.yaml", MAP),
    }


def load(custos: Custos, folder: Path, **kwargs: int) -> dict[str, Path]:
    files = patients(folder, **kwargs)
    custos.ingest(files["persons"], "crm", map_path=files["map"])
    custos.ingest(files["visits"], "clinic", map_path=files["map"])
    custos.resolve()
    custos.ingest(files["consents"], "crm", kind=Kind.CONSENTS)
    return files


def check_per_person(rows: list[dict[str, str]], qis: list[str], k: int, l_div: int) -> None:
    """An independent check of a written release: persons sharing a signature (the set of their
    quasi-identifier combinations) are at least k, and for every finding v of such a group the
    persons without v hold at least l-1 other findings."""
    combos: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    findings: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        combos[row["person"]].add(tuple(row[q] for q in qis))
        findings[row["person"]].update(row["finding"].split(";"))  # one row, values as a set
    groups: dict[frozenset[tuple[str, ...]], list[str]] = defaultdict(list)
    for person, found in combos.items():
        groups[frozenset(found)].append(person)
    for members in groups.values():
        assert len(members) >= k
        for value in {f for p in members for f in findings[p]}:
            others = {f for p in members if value not in findings[p] for f in findings[p]}
            assert len(others) >= l_div - 1


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_release_is_k_anonymous_and_l_diverse_per_person(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path)
    out = tmp_path / "release.csv"
    report = release(
        custos,
        purpose="clinical_research",
        quasi_identifiers=["age", "sex", "postcode"],
        sensitive=["finding"],
        k=5,
        l_div=2,
        output=out,
        source="clinic",
        max_suppression=0.1,
    )
    rows = read(out)
    assert list(rows[0]) == ["person", "age", "sex", "postcode", "finding"]
    assert report.k >= 5 and report.l >= 2 and report.rows == len(rows)
    check_per_person(rows, ["age", "sex", "postcode"], 5, 2)
    persons = {r["person"] for r in rows}
    assert report.persons == len(persons) and len(persons) <= 81  # 9 of 90 gave no consent
    assert report.refused_persons == 9
    # One row per person: several visits' findings are one sorted set, so the number of rows
    # does not tell who had many visits.
    assert len(rows) == len(persons)
    sets = [r["finding"].split(";") for r in rows if ";" in r["finding"]]
    assert sets and all(s == sorted(set(s)) for s in sets)
    assert all(re.fullmatch(r"p_[0-9a-f]{24}", p) for p in persons)
    assert all(re.fullmatch(r"\d+-\d+|\d+|\d+\+|\*", r["age"]) for r in rows)
    assert all(re.fullmatch(r"\d*\**", r["postcode"]) for r in rows)
    text = out.read_text(encoding="utf-8")
    assert "@example.org" not in text and "Testperson" not in text and "cus_" not in text
    assert set(report.generalisation) == {"age", "sex", "postcode"}
    with custos.store.read() as conn:
        entry = conn.execute(select(t.audit_log).order_by(t.audit_log.c.id.desc())).first()
    assert entry is not None
    assert (entry.action, entry.purpose) == ("release", "clinical_research")
    assert len(entry.subjects.split(",")) == report.persons  # ids only, one per person
    again = tmp_path / "again.csv"
    release(
        custos,
        purpose="clinical_research",
        quasi_identifiers=["age", "sex", "postcode"],
        sensitive=["finding"],
        k=5,
        l_div=2,
        output=again,
        source="clinic",
        max_suppression=0.1,
    )
    assert not {r["person"] for r in read(again)} & persons  # new pseudonyms per release


def test_a_release_that_cannot_be_made_safe_is_refused(custos: Custos, tmp_path: Path) -> None:
    files = load(custos, tmp_path, people=12)
    out = tmp_path / "release.csv"
    with pytest.raises(Refused) as refused:
        release(
            custos,
            purpose="clinical_research",
            quasi_identifiers=["age", "sex", "postcode"],
            sensitive=["finding"],
            k=20,
            l_div=2,
            output=out,
            source="clinic",
            max_suppression=0.0,
        )
    assert not out.exists() and not out.with_name("release.csv.meta.json").exists()
    assert refused.value.failing and "< k=20" in refused.value.failing[0]
    text = " ".join([refused.value.message, *refused.value.failing])
    assert "@" not in text
    # The most generalised level tried is named: no level holds 20 of 12 persons.
    assert refused.value.failing[-1] == (
        "the closest generalisation tried: age hidden, sex hidden, postcode hidden"
    )
    # Counts only: no person's exact postcode (nor any other value of theirs) is named.
    postcodes = {line.split(",")[5] for line in files["persons"].read_text().splitlines()[1:]}
    assert not any(code in text for code in postcodes)
    assert not re.search(r"age \d+[,:]|postcode \d{5}", text)
    assert refused.value.counts["persons_below_k"] == refused.value.counts["persons"]
    with custos.store.read() as conn:
        entry = conn.execute(select(t.audit_log).order_by(t.audit_log.c.id.desc())).first()
    assert entry is not None and (entry.action, entry.purpose) == (
        "release_refused",
        "clinical_research",
    )
    detail = orjson.loads(entry.detail)
    assert detail["k"] == 20 and detail["columns"] == ["age", "sex", "postcode", "finding"]
    assert detail["groups_below_k"] >= 1 and not entry.subjects
    assert not any(code in entry.detail for code in postcodes)


def test_release_refuses_direct_identifiers_and_fields_the_purpose_may_not_use(
    custos: Custos, tmp_path: Path
) -> None:
    load(custos, tmp_path, people=12)
    common = {"sensitive": ["finding"], "k": 5, "l_div": 2, "output": tmp_path / "x.csv"}
    with pytest.raises(ConfigError, match="direct identifiers"):
        release(custos, purpose="clinical_research", quasi_identifiers=["email"], **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="may not use postcode"):
        release(custos, purpose="health_research", quasi_identifiers=["postcode"], **common)  # type: ignore[arg-type]


def test_cli_release(store_url: str, tmp_path: Path, settings: Settings) -> None:
    with Custos.open(store_url, settings) as custos:
        load(custos, tmp_path)
    runner = CliRunner(
        env={
            "CUSTOS_SECRET_KEY_FILE": settings.secret_key_file,
            "CUSTOS_TAXONOMY": settings.taxonomy or "",
        }
    )
    args = ["--db", store_url, "release", "--purpose", "clinical_research"]
    args += ["--quasi-identifiers", "age,sex,postcode", "--sensitive", "finding", "--source"]
    args += ["clinic", "--max-suppression", "0.1", "--output", str(tmp_path / "r.csv")]
    result = runner.invoke(cli, [*args, "--k", "5", "--l", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "k=" in result.output and (tmp_path / "r.csv").exists()
    result = runner.invoke(cli, [*args, "--k", "500"], catch_exceptions=False)
    assert result.exit_code == 1 and "refused" in result.output and "< k=500" in result.output
    result = runner.invoke(cli, [*args, "--k", "500", "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    refusal = orjson.loads(result.stdout)
    assert refusal["refused"] is True and "500-anonymous" in refusal["reason"]
    assert refusal["counts"]["persons_below_k"] > 0


# -- the algorithm, without a store -----------------------------------------------------------


def test_rows_of_one_person_do_not_count_as_several_people() -> None:
    alone = [Row("a", ("34", "F"), ("asthma",)) for _ in range(5)]  # five visits, one patient
    crowd = [Row(p, ("61", "M"), (f,)) for p, f in zip("bcdef", FINDINGS, strict=True)]
    operators = [Bands(), Categorical()]
    # Counted per row, (34, F) would hold five "people"; per person it is one: without
    # suppression the plan has to generalise until "a" is among five persons.
    plan = deidentify(
        alone + crowd,
        operators,
        columns=["age", "sex"],
        sensitive=["finding"],
        k=5,
        l_div=1,
        max_suppression=0.0,
    )
    assert plan.levels != (0, 0) and not plan.suppressed
    assert [len(g.persons) for g in plan.kept] == [6]
    plan = deidentify(
        alone + crowd,
        operators,
        columns=["age", "sex"],
        sensitive=["finding"],
        k=5,
        l_div=1,
        max_suppression=0.2,
    )
    assert plan.suppressed == {"a"} and plan.levels == (0, 0) and plan.k == 5


def test_one_persons_findings_do_not_make_a_group_diverse() -> None:
    assert per_person_l({"a": {"flu", "hiv"}, "b": {"flu"}, "c": {"flu"}}) == 1
    assert per_person_l({"a": {"flu"}, "b": {"hiv"}, "c": {"flu"}}) == 2
    assert per_person_l({"a": {"flu"}, "b": {"hiv"}, "c": {"cold"}}) == 3
    rows = [Row(p, ("40",), ("flu",)) for p in "abcde"] + [Row("a", ("40",), ("hiv",))]
    with pytest.raises(Refused) as refused:
        deidentify(
            rows,
            [Bands()],
            columns=["age"],
            sensitive=["finding"],
            k=5,
            l_div=2,
            max_suppression=0.0,
        )
    assert "finding: l=1 < 2" in refused.value.failing[0]


def test_generalisation_ladders() -> None:
    assert [Bands().generalise("34", lvl) for lvl in range(5)] == [
        "34",
        "30-34",
        "30-39",
        "20-39",
        "*",
    ]
    prefix = Prefix.build(["10115"])
    assert [prefix.generalise("10115", lvl) for lvl in (0, 2, 5)] == ["10115", "101**", "*"]
    assert [Dates().generalise("1985-06-14", lvl) for lvl in range(6)] == [
        "1985-06-14",
        "1985-06",
        "1985-Q2",
        "1985",
        "198*",
        "*",
    ]
    assert Categorical().generalise(None, 0) == "*"
    assert type(operator_for("postcode", ["10115"])) is Prefix
    assert type(operator_for("age", ["34", "56"])) is Bands
    assert type(operator_for("visit_date", ["2025-01-02"])) is Dates
    assert type(operator_for("sex", ["F", "M"])) is Categorical
    with pytest.raises(ConfigError):
        operator_for("sex", ["F"], "nope")


def test_pseudonyms_are_keyed_and_per_purpose() -> None:
    key, other = b"k" * 32, b"o" * 32
    assert pseudonym(key, "release:a", "cus_1") == pseudonym(key, "release:a", "cus_1")
    assert pseudonym(key, "release:a", "cus_1") != pseudonym(key, "release:b", "cus_1")
    assert pseudonym(key, "release:a", "cus_1") != pseudonym(other, "release:a", "cus_1")


def test_k_or_l_below_the_minimum_needs_a_reason(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    with Custos.open(store_url, settings) as custos:
        load(custos, tmp_path)
    runner = CliRunner(
        env={
            "CUSTOS_SECRET_KEY_FILE": settings.secret_key_file,
            "CUSTOS_TAXONOMY": settings.taxonomy or "",
        }
    )
    out = tmp_path / "r.csv"
    args = ["--db", store_url, "release", "--purpose", "clinical_research", "-q", "age,sex"]
    args += ["-s", "finding", "--source", "clinic", "--output", str(out), "--k", "1", "--l", "1"]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 2 and "below the minimum" in result.output
    assert "--override-reason" in result.output and not out.exists()
    reason = "ethics board approval 2026-17: small cohort"
    result = runner.invoke(cli, [*args, "--override-reason", reason], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    meta = orjson.loads(out.with_name("r.csv.meta.json").read_bytes())
    assert meta["override_reason"] == reason and (meta["k_asked"], meta["l_asked"]) == (1, 1)
    assert out.with_name("r.csv.meta.json").stat().st_mode & 0o777 == 0o600
    with Custos.open(store_url, settings) as custos, custos.store.read() as conn:
        entry = conn.execute(select(t.audit_log).order_by(t.audit_log.c.id.desc())).first()
    assert entry is not None and entry.action == "release"
    assert orjson.loads(entry.detail)["override_reason"] == reason


def test_two_releases_do_not_join_unless_linkable(custos: Custos, tmp_path: Path) -> None:
    load(custos, tmp_path)
    common = {
        "purpose": "clinical_research",
        "sensitive": ["finding"],
        "k": 5,
        "l_div": 2,
        "source": "clinic",
        "max_suppression": 0.1,
    }
    made = {}
    for name, qis, linkable in (
        ("age", ["age"], False),
        ("postcode", ["postcode"], False),
        ("age_linked", ["age"], True),
        ("postcode_linked", ["postcode"], True),
    ):
        out = tmp_path / f"{name}.csv"
        report = release(custos, quasi_identifiers=qis, output=out, linkable=linkable, **common)  # type: ignore[arg-type]
        made[name] = {r["person"] for r in read(out)}
        meta = orjson.loads(Path(report.metadata).read_bytes())
        assert meta["pseudonyms"] == ("linkable per purpose" if linkable else "per release")
        assert meta["release"] == report.release_id
    assert made["age"] and made["postcode"] and not made["age"] & made["postcode"]
    assert made["age_linked"] & made["postcode_linked"]  # one pseudonym per person, by choice
    assert not made["age_linked"] & (made["age"] | made["postcode"])


def test_ages_are_top_coded_at_a_fixed_reference_date(custos: Custos, tmp_path: Path) -> None:
    assert _age("1980-06-15", date(2026, 1, 1)) == "45"
    assert _age("1980-06-15", date(2026, 7, 1)) == "46"
    assert _age("1930-02-01", date(2026, 1, 1)) == "90+"
    assert _age("1919-02-01", date(2026, 1, 1)) == "90+"
    assert [Bands().generalise("90+", lvl) for lvl in range(5)] == ["90+"] * 4 + ["*"]
    load(custos, tmp_path)
    out = tmp_path / "r.csv"
    report = release(
        custos,
        purpose="clinical_research",
        quasi_identifiers=["age", "sex"],
        sensitive=["finding"],
        k=5,
        l_div=2,
        output=out,
        source="clinic",
        max_suppression=0.1,
        reference_date=date(2035, 1, 1),  # those born 1940-1944 are 90 and over
    )
    ages = {r["age"] for r in read(out)}
    assert "90+" in ages or "*" in ages
    assert not any(re.fullmatch(r"(9\d|1\d\d)(-\d+)?", a) for a in ages)
    meta = orjson.loads(Path(report.metadata).read_bytes())
    assert meta["reference_date"] == "2035-01-01" and report.reference_date == "2035-01-01"
    default = release(
        custos,
        purpose="clinical_research",
        quasi_identifiers=["age", "sex"],
        sensitive=["finding"],
        k=5,
        l_div=2,
        output=tmp_path / "d.csv",
        source="clinic",
        max_suppression=0.1,
    )
    assert default.reference_date == f"{datetime.now(UTC).year}-01-01"


def test_the_taxonomy_refuses_direct_identifiers_and_free_text(
    custos: Custos, tmp_path: Path
) -> None:
    load(custos, tmp_path, people=12)
    notes = ["record_id,email,physician_note,mobile,summary,finding"]
    notes += [
        f"n{i},patient{i}@example.org,Dr Who saw Pat on Monday,+4915112345{i:02d},"
        + ("Pat was seen on Monday and will call back from the office" if i == 3 else "stable")
        + ",asthma"
        for i in range(12)
    ]
    tags = "categories:\n  physician_note: free_text\n  mobile: contact\n  finding: health\n"
    tags += "  summary: health\n"
    custos.ingest(
        write(tmp_path / "notes.csv", "\n".join(notes) + "\n"),
        "notes",
        map_path=write(tmp_path / "notes.yaml", tags),
    )
    custos.resolve()
    common = {"purpose": "clinical_research", "k": 5, "l_div": 2, "output": tmp_path / "x.csv"}
    with pytest.raises(ConfigError, match=r"physician_note is never released.*free text"):
        release(custos, quasi_identifiers=["age"], sensitive=["physician_note"], **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"mobile is never released.*direct identifier"):
        release(custos, quasi_identifiers=["mobile"], sensitive=["finding"], **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"health_text is never released.*free text"):
        release(custos, quasi_identifiers=["age"], sensitive=["health_text"], **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"summary is never released: 1 of its 2 distinct"):
        release(custos, quasi_identifiers=["age"], sensitive=["summary"], **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="date_of_birth is never released") as refused:
        release(custos, quasi_identifiers=["sex"], sensitive=["date_of_birth"], **common)  # type: ignore[arg-type]
    assert "age as a quasi-identifier" in str(refused.value.hint)
    assert not (tmp_path / "x.csv").exists()


# -- the register: each release checked against the purpose's earlier ones -------------------

COMMON: dict[str, object] = {
    "purpose": "clinical_research",
    "sensitive": ["finding"],
    "k": 5,
    "l_div": 2,
    "source": "clinic",
    "max_suppression": 0.1,
}


def entries(custos: Custos) -> list[register.Entry]:
    with custos.store.read() as conn:
        return register.entries(conn, "clinical_research")


def test_linkable_releases_hold_k_and_l_in_their_combined_view(
    custos: Custos, tmp_path: Path
) -> None:
    """The attack: an exact age in one linkable release and an exact postcode in the next, joined
    on the pseudonym, are an exact (age, postcode) view. The second release is generalised or
    suppressed until the joined view still holds k and l."""
    load(custos, tmp_path)
    release(custos, quasi_identifiers=["age"], output=tmp_path / "a.csv", linkable=True, **COMMON)  # type: ignore[arg-type]
    release(  # type: ignore[arg-type]
        custos, quasi_identifiers=["postcode"], output=tmp_path / "p.csv", linkable=True, **COMMON
    )
    ages = {r["person"]: r["age"] for r in read(tmp_path / "a.csv")}
    joined = [{**r, "age": ages.get(r["person"], "*")} for r in read(tmp_path / "p.csv")]
    assert joined and any(r["age"] != "*" for r in joined)
    check_per_person(joined, ["age", "postcode"], 5, 2)  # fails without the register's check
    # A third release shows age again, coarser: the join keeps the finer age of the first.
    release(  # type: ignore[arg-type]
        custos, quasi_identifiers=["age", "sex"], output=tmp_path / "s.csv", linkable=True, **COMMON
    )
    postcodes = {r["person"]: r["postcode"] for r in read(tmp_path / "p.csv")}
    third = [
        {**r, "age1": ages.get(r["person"], "*"), "postcode": postcodes.get(r["person"], "*")}
        for r in read(tmp_path / "s.csv")
    ]
    check_per_person(third, ["age1", "postcode", "age", "sex"], 5, 2)


def test_a_column_is_never_released_finer_than_before(custos: Custos, tmp_path: Path) -> None:
    """Per-release pseudonyms do not join, but groups intersect: a column released before is
    released at that level or coarser for the purpose."""
    load(custos, tmp_path)
    qis = ["age", "sex", "postcode"]
    release(custos, quasi_identifiers=qis, output=tmp_path / "a.csv", **COMMON)  # type: ignore[arg-type]
    release(custos, quasi_identifiers=["age"], output=tmp_path / "b.csv", **COMMON)  # type: ignore[arg-type]
    first, second = entries(custos)
    assert first.level("age") > 0  # the three-column release had to coarsen age
    assert second.level("age") >= first.level("age")
    with pytest.raises(ConfigError, match=r"released .* with the bands operator"):
        release(  # type: ignore[arg-type]
            custos,
            quasi_identifiers=["age"],
            output=tmp_path / "c.csv",
            generalise={"age": "categorical"},
            **COMMON,
        )


def test_a_suppressed_person_stays_out_of_later_releases(custos: Custos, tmp_path: Path) -> None:
    """Persons suppressed by one release (their combination is rare) are not released by a
    later release of the purpose that shows one of those columns, e.g. exact postcode."""
    load(custos, tmp_path)
    old = [f"old{i}@example.org" for i in range(3)]
    add_patients(custos, tmp_path, old, born="1920-03-01")
    qis = ["age", "sex", "postcode"]
    release(custos, quasi_identifiers=qis, output=tmp_path / "a.csv", **COMMON)  # type: ignore[arg-type]
    # Alone, sex shows nothing rare of them: they would be released among many women. But sex
    # was part of the combination that got them suppressed (which column did it is not known,
    # so every shared quasi-identifier counts): they are suppressed again.
    second = release(custos, quasi_identifiers=["sex"], output=tmp_path / "b.csv", **COMMON)  # type: ignore[arg-type]
    assert second.suppressed_persons == 3
    first, second_entry = entries(custos)
    assert len(first.suppressed) == 3
    assert not first.suppressed & second_entry.persons
    assert first.suppressed <= second_entry.suppressed  # and so on, release after release


def more_patients(
    folder: Path, emails: list[str], *, withdrawn: str | None = None, born: str = "1970-05-01"
) -> None:
    """New patients with a visit and research consent (and one withdrawal); ``born`` 1920 and
    postcodes 999.. make a few very old persons who live apart from everyone else."""
    persons = ["record_id,first_name,last_name,email,date_of_birth,postcode,sex"]
    visits = ["record_id,email,visit_date,finding"]
    consents = ["email,purpose,status,timestamp,explicit"]
    for i, email in enumerate(emails):
        postcode = f"9990{i}" if born < "1930" else "10150"
        persons.append(f"n{i},New,Patient{i},{email},{born},{postcode},F")
        visits.append(f"nv{i},{email},2025-06-01,asthma")
        consents.append(f"{email},clinical_research,granted,2026-01-01T00:00:00Z,yes")
    if withdrawn:
        consents.append(f"{withdrawn},clinical_research,withdrawn,2026-02-01T00:00:00Z,yes")
    write(folder / "new_persons.csv", "\n".join(persons) + "\n")
    write(folder / "new_visits.csv", "\n".join(visits) + "\n")
    write(folder / "new_consents.csv", "\n".join(consents) + "\n")


def add_patients(custos: Custos, folder: Path, emails: list[str], **kwargs: str) -> None:
    more_patients(folder, emails, **kwargs)
    custos.ingest(folder / "new_persons.csv", "crm", map_path=folder / "map.yaml")
    custos.ingest(folder / "new_visits.csv", "clinic", map_path=folder / "map.yaml")
    custos.resolve()
    custos.ingest(folder / "new_consents.csv", "crm", kind=Kind.CONSENTS)


def test_differencing_one_new_patient_is_held_back_and_one_gone_is_refused(
    custos: Custos, tmp_path: Path
) -> None:
    """The attack: re-running a release after one new patient arrives shows that patient as the
    only new pseudonym (or the only change in the counts). Newcomers are held back until k of
    them have joined; a release that still differs by fewer than k persons is refused."""
    load(custos, tmp_path)
    qis = ["age", "sex"]
    first = release(custos, quasi_identifiers=qis, output=tmp_path / "a.csv", **COMMON)  # type: ignore[arg-type]
    add_patients(custos, tmp_path, ["new0@example.org"], born="1970-05-01")
    second = release(custos, quasi_identifiers=qis, output=tmp_path / "b.csv", **COMMON)  # type: ignore[arg-type]
    assert second.held_back == 1 and second.persons == first.persons
    assert entries(custos)[1].persons == entries(custos)[0].persons
    add_patients(custos, tmp_path, [], withdrawn="patient1@example.org")
    with pytest.raises(Refused, match="left out") as refused:
        release(custos, quasi_identifiers=qis, output=tmp_path / "c.csv", **COMMON)  # type: ignore[arg-type]
    assert refused.value.counts["left_out"] == 1 and "patient" not in str(refused.value)
    assert not (tmp_path / "c.csv").exists() and len(entries(custos)) == 2
    with custos.store.read() as conn:
        audit = conn.execute(select(t.audit_log.c.action, t.audit_log.c.detail)).all()
    assert any(a == "release_refused" and '"left_out":1' in (d or "") for a, d in audit)


def test_cli_release_register_and_differencing(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    with Custos.open(store_url, settings) as custos:
        load(custos, tmp_path)
    runner = CliRunner(
        env={
            "CUSTOS_SECRET_KEY_FILE": settings.secret_key_file,
            "CUSTOS_TAXONOMY": settings.taxonomy or "",
        }
    )
    args = ["--db", store_url, "release", "--purpose", "clinical_research", "-q", "age,sex"]
    args += ["-s", "finding", "--source", "clinic", "--max-suppression", "0.1", "-o"]
    result = runner.invoke(cli, [*args, str(tmp_path / "a.csv")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    listed = runner.invoke(cli, ["--db", store_url, "release", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    (entry,) = orjson.loads(listed.stdout)
    assert entry["quasi_identifiers"] == ["age", "sex"] and entry["persons"] > 0
    assert entry["purpose"] == "clinical_research" and "p_" not in listed.stdout
    shown = runner.invoke(cli, ["--db", store_url, "release", "list", "-p", "clinical_research"])
    assert shown.exit_code == 0 and entry["release"] in shown.stdout
    with Custos.open(store_url, settings) as custos:
        add_patients(custos, tmp_path, [], withdrawn="patient1@example.org")
    result = runner.invoke(cli, [*args, str(tmp_path / "b.csv"), "--json"])
    assert result.exit_code == 1, result.output
    refusal = orjson.loads(result.stdout)
    assert refusal["refused"] is True and refusal["counts"]["left_out"] == 1
    missing = runner.invoke(cli, ["--db", store_url, "release", "-p", "clinical_research"])
    assert missing.exit_code == 2 and "--quasi-identifiers" in missing.output


def test_a_release_whose_file_cannot_be_written_is_still_registered_and_audited(
    custos: Custos, tmp_path: Path
) -> None:
    """Fail closed: the register knows the release before any file is written (so the purpose's
    next release is checked against it), and the audit log has it whatever was written."""
    load(custos, tmp_path)
    blocked = tmp_path / "a-folder.csv"
    blocked.mkdir()  # a folder where the file should go: the write fails
    with pytest.raises(OSError):
        release(custos, output=blocked, quasi_identifiers=["age", "sex"], **COMMON)  # type: ignore[arg-type]
    assert len(entries(custos)) == 1
    with custos.store.read() as conn:
        entry = conn.execute(select(t.audit_log).order_by(t.audit_log.c.id.desc())).first()
    assert entry is not None and entry.action == "release"
