"""Composition of per-release releases: groups intersect on what an attacker knows of a target,
whatever the pseudonyms, so every release of a purpose is checked as if joined to the others."""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from custos.cli import app as cli
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.service import Custos
from custos.service.release import _age, release
from tests.conftest import write
from tests.test_release import COMMON, MAP, check_per_person, load, read
from tests.test_release import settings as settings  # the research purpose, a key of its own

FOUR = ("age", "postcode", "postcode,sex", "age,sex,postcode")
NAMES = ("Anna", "Bert", "Clara", "David", "Emma", "Felix", "Greta", "Hugo")
SURNAMES = ("Olsen", "Kowalski", "Nakamura", "Ferreira")
#: (born, postcode, finding) cells of 8 persons each: every age and every postcode holds two
#: findings (k and l hold in ``-q age`` and in ``-q postcode`` alone), every (age, postcode) one.
CELLS = (
    ("1995-05", "11111", "asthma"),
    ("1995-07", "22222", "diabetes"),
    ("1985-05", "11111", "migraine"),
    ("1985-07", "22222", "influenza"),
)
BAND = re.compile(r"(\d+)-(\d+)")


def covers(shown: str, value: str) -> bool:
    """Whether a released (generalised) value could be the target's true value."""
    if set(shown) == {"*"}:
        return True
    if "*" in shown:
        return len(shown) == len(value) and all(
            s in ("*", v) for s, v in zip(shown, value, strict=True)
        )
    if shown.endswith("+"):
        return value.endswith("+") or int(value) >= int(shown[:-1])
    band = BAND.fullmatch(shown)
    if band and value.isdigit():
        return int(band[1]) <= int(value) <= int(band[2])
    return shown == value


def clinic(folder: Path) -> dict[str, Path]:
    """32 patients in the four cells, alternating sex, one visit each, all consenting."""
    persons = ["record_id,first_name,last_name,email,date_of_birth,postcode,sex"]
    visits = ["record_id,email,visit_date,finding"]
    consents = ["email,purpose,status,timestamp,explicit"]
    for c, (born, postcode, finding) in enumerate(CELLS):
        for i in range(8):
            email = f"p{c}x{i}@example.org"
            day = f"{born}-{i + 1 + 10 * (c // 2):02d}"  # a birth date of their own
            name, sex = f"{NAMES[i]},{SURNAMES[c]}", "FM"[i % 2]
            persons.append(f"p{c}x{i},{name},{email},{day},{postcode},{sex}")
            visits.append(f"v{c}x{i},{email},2025-03-01,{finding}")
            consents.append(f"{email},clinical_research,granted,2026-01-01T00:00:00Z,yes")
    return {
        name: write(folder / f"{name}.csv", "\n".join(lines) + "\n")
        for name, lines in (("persons", persons), ("visits", visits), ("consents", consents))
    } | {"map": write(folder / "map.yaml", MAP)}


def test_four_per_release_releases_do_not_disclose_by_intersection(
    store_url: str, tmp_path: Path, settings: Settings
) -> None:
    """The issue's attack: ``-q age``, ``-q postcode``, ``-q postcode,sex``, ``-q age,sex,postcode``,
    each with per-release pseudonyms. The attacker knows every patient's age, sex and postcode,
    bounds a target's findings by their candidate rows in each release and intersects the
    bounds. Each release alone holds k=5 and l=2 at exact values, yet ``-q age`` and
    ``-q postcode`` intersect to one finding for everyone; checked on the combined view of the
    purpose's releases, certain disclosure stays at most 1%."""
    with Custos.open(store_url, settings) as custos:
        files = clinic(tmp_path)
        custos.ingest(files["persons"], "crm", map_path=files["map"])
        custos.ingest(files["visits"], "clinic", map_path=files["map"])
        custos.resolve()
        custos.ingest(files["consents"], "crm", kind=Kind.CONSENTS)
    runner = CliRunner(
        env={
            "CUSTOS_SECRET_KEY_FILE": settings.secret_key_file,
            "CUSTOS_TAXONOMY": settings.taxonomy or "",
        }
    )
    base = ["--db", store_url, "release", "-p", "clinical_research", "-s", "finding"]
    base += ["--source", "clinic", "--max-suppression", "0.05", "--reference-date", "2026-01-01"]
    releases = []
    for i, qis in enumerate(FOUR):
        out = tmp_path / f"r{i}.csv"
        result = runner.invoke(cli, [*base, "-q", qis, "-o", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        releases.append((qis.split(","), read(out)))
    with files["persons"].open(encoding="utf-8") as handle:
        known = {
            row["email"]: {
                "age": _age(row["date_of_birth"], date(2026, 1, 1)) or "",
                "sex": row["sex"],
                "postcode": row["postcode"],
            }
            for row in csv.DictReader(handle)
        }
    with files["visits"].open(encoding="utf-8") as handle:
        truth: dict[str, set[str]] = {}
        for row in csv.DictReader(handle):
            truth.setdefault(row["email"], set()).add(row["finding"])
    targets = certain = 0
    for email, values in known.items():
        bounds, held_by_all = [], set()
        for qis, rows in releases:
            persons: dict[str, set[str]] = {}
            for row in rows:
                if all(covers(row[q], values[q]) for q in qis):
                    persons.setdefault(row["person"], set()).add(row["finding"])
            if persons:
                bounds.append(set().union(*persons.values()))
                held_by_all |= set.intersection(*persons.values())
        if len(bounds) < len(releases):
            continue  # not in every release (suppressed or no consent): not a target here
        targets += 1
        possible = set.intersection(*bounds)
        learned = (possible if len(possible) == 1 else set()) | held_by_all
        certain += bool(learned) and learned <= truth[email]
    assert targets >= 30
    assert certain <= 0.01 * targets, f"{certain} of {targets} targets' findings disclosed"


def test_ages_at_another_reference_date_are_checked_as_another_column(
    custos: Custos, tmp_path: Path
) -> None:
    """Two linkable releases of age, at 1 January (with sex) and at 1 July: joined, the two ages
    bound each person's birth date to half a year, so the second holds k and l with the first's
    ages as a column of their own (not recomputed at its own date)."""
    load(custos, tmp_path, people=150)
    made = []
    for name, qis, when in (
        ("jan", ["age", "sex"], date(2026, 1, 1)),
        ("jul", ["age"], date(2026, 7, 1)),
    ):
        out = tmp_path / f"{name}.csv"
        release(  # type: ignore[arg-type]
            custos,
            quasi_identifiers=qis,
            output=out,
            linkable=True,
            reference_date=when,
            **COMMON,
        )
        made.append(read(out))
    first = {r["person"]: (r["age"], r["sex"]) for r in made[0]}
    joined = [
        {**r, "age_jan": first.get(r["person"], ("*", "*"))[0], "sex": first[r["person"]][1]}
        for r in made[1]
        if r["person"] in first
    ]
    assert len(joined) > 50
    check_per_person(joined, ["age_jan", "sex", "age"], 5, 2)
