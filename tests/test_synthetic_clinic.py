"""The synthetic clinic: counts, rare conditions, consent, and seeded determinism."""

from __future__ import annotations

import csv
from pathlib import Path

from custos.synthetic.clinic import RARE, generate_clinic


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_clinic_has_its_shape(tmp_path: Path) -> None:
    clinic = generate_clinic(tmp_path)
    crm, visits, consents = rows(clinic.crm), rows(clinic.visits), rows(clinic.consents)
    assert len(crm) == 3000 and len({r["email"] for r in crm}) == 3000
    assert {r["sex"] for r in crm} == {"F", "M"}
    patients = {r["email"] for r in visits}
    assert len(patients) == 1300 and len(visits) > 1300  # some have two diagnoses
    conditions = [r["condition"] for r in visits]
    for name, count in RARE.items():
        assert conditions.count(name) == count
    assert conditions.count("huntington's disease") == 1
    assert all(r["diagnosis_date"] and r["programme"] for r in visits)
    # Explicit health_research consent, for most patients only, and only patients.
    assert {(r["purpose"], r["status"], r["explicit"]) for r in consents} == {
        ("health_research", "granted", "yes")
    }
    assert {r["email"] for r in consents} <= patients
    assert 0.8 * 1300 < len(consents) < 1300
    late = rows(clinic.late_visits)
    assert len(late) == 1 and late[0]["email"] not in patients
    assert late[0]["email"] in {r["email"] for r in rows(clinic.late_consents)}


def test_the_clinic_is_seeded(tmp_path: Path) -> None:
    one = generate_clinic(tmp_path / "a", persons=300, patients=120, seed=3)
    two = generate_clinic(tmp_path / "b", persons=300, patients=120, seed=3)
    other = generate_clinic(tmp_path / "c", persons=300, patients=120, seed=4)
    for name in ("crm.csv", "visits.csv", "consents.csv", "visits_late.csv"):
        assert (one.out_dir / name).read_bytes() == (two.out_dir / name).read_bytes()
    assert one.visits.read_bytes() != other.visits.read_bytes()
