"""A synthetic clinic for the release (linkage attack) benchmark and tests.

CRM persons (name, e-mail, birth date, postcode, city, sex), of whom some are patients: one or
two diagnoses each (a condition, a diagnosis date, a health programme), a few rare conditions
(exactly one Huntington's disease, one cystic fibrosis), and explicit ``health_research``
consent for most patients. A late patient (a CRM person who was not a patient) is written to
separate files, for the differencing attack. Everything is fictional and depends only on the
seed (and the installed Faker version).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from custos.synthetic.company import make_people
from custos.synthetic.people import Person
from custos.synthetic.world import start, write_csv

__all__ = ["CONDITIONS", "RARE", "ClinicManifest", "generate_clinic"]

#: Common conditions, their weights and health programme.
CONDITIONS: dict[str, tuple[float, str]] = {
    "hypertension": (20, "cardio"),
    "asthma": (12, "respiratory"),
    "type 2 diabetes": (12, "diabetes"),
    "depression": (10, "none"),
    "migraine": (9, "none"),
    "osteoarthritis": (8, "mobility"),
    "copd": (6, "respiratory"),
    "hypothyroidism": (6, "none"),
    "atrial fibrillation": (5, "cardio"),
    "coeliac disease": (3, "none"),
    "multiple sclerosis": (2, "mobility"),
}
#: Rare conditions and how many patients have each (exactly).
RARE: dict[str, int] = {
    "huntington's disease": 1,
    "cystic fibrosis": 1,
    "sarcoidosis": 2,
    "myasthenia gravis": 2,
}
CONSENT_RATE = 0.9
TWO_DIAGNOSES = 0.2
MAP = (
    "categories:\n  sex: identity\n  condition: health\n  diagnosis_date: health\n"
    "  programme: health\n"
)


@dataclass(frozen=True)
class ClinicManifest:
    """What :func:`generate_clinic` wrote, and the truth behind it."""

    out_dir: Path
    crm: Path
    visits: Path
    consents: Path
    map_path: Path
    late_visits: Path
    late_consents: Path
    persons: list[Person]
    #: person id → the (diagnosis date, condition) of each of their diagnoses
    diagnoses: dict[str, list[tuple[date, str]]] = field(default_factory=dict)
    #: person ids of the patients who gave explicit health_research consent
    consented: set[str] = field(default_factory=set)
    late_patient: str = ""

    def sex(self, person: Person) -> str:
        """The sex written in the CRM (F or M)."""
        return "F" if person.gender == "f" else "M"


def generate_clinic(
    out_dir: Path, *, persons: int = 3000, patients: int = 1300, seed: int = 20
) -> ClinicManifest:
    """Write the clinic's CRM, visits and consents (and a late patient) under ``out_dir``."""
    out_dir, rng = start(out_dir, seed)
    people = make_people(persons, seed, random.Random(seed + 1))
    chosen = rng.sample(range(persons), patients + 1)
    late = people[chosen.pop()]
    rare = [name for name, count in RARE.items() for _ in range(count)]
    names = list(CONDITIONS)
    weights = [CONDITIONS[n][0] for n in names]
    diagnoses: dict[str, list[tuple[date, str]]] = {}
    for i, index in enumerate(chosen):
        person = people[index]
        first = rare[i] if i < len(rare) else rng.choices(names, weights)[0]
        found = [first]
        if i >= len(rare) and rng.random() < TWO_DIAGNOSES:
            second = rng.choices(names, weights)[0]
            if second != first:
                found.append(second)
        diagnoses[person.pid] = [(_when(rng, person), c) for c in found]
    diagnoses[late.pid] = [(date(2026, 3, 2), rng.choices(names, weights)[0])]
    consented = {pid for pid in sorted(diagnoses) if rng.random() < CONSENT_RATE}
    consented.add(late.pid)
    by_pid = {p.pid: p for p in people}

    def visit_rows(pids: list[str]) -> list[list[object]]:
        rows: list[list[object]] = []
        for pid in pids:
            for when, condition in diagnoses[pid]:
                rows.append(
                    [
                        f"V{len(rows) + 1:05d}-{pid}",
                        by_pid[pid].email,
                        when.isoformat(),
                        condition,
                        _programme(condition),
                    ]
                )
        return rows

    def consent_rows(pids: list[str]) -> list[list[object]]:
        return [
            [by_pid[pid].email, "health_research", "granted", "2026-01-01T00:00:00Z", "yes"]
            for pid in pids
            if pid in consented
        ]

    patient_ids = [people[i].pid for i in chosen]
    visit_header = ("record_id", "email", "diagnosis_date", "condition", "programme")
    consent_header = ("email", "purpose", "status", "timestamp", "explicit")
    crm = out_dir / "crm.csv"
    write_csv(
        crm,
        (
            "record_id",
            "first_name",
            "last_name",
            "email",
            "date_of_birth",
            "postcode",
            "city",
            "sex",
        ),
        (
            [
                p.customer_no,
                p.first_name,
                p.last_name,
                p.email,
                p.dob.isoformat(),
                p.address.postcode,
                p.address.city,
                "F" if p.gender == "f" else "M",
            ]
            for p in people
        ),
    )
    visits, consents = out_dir / "visits.csv", out_dir / "consents.csv"
    write_csv(visits, visit_header, visit_rows(patient_ids))
    write_csv(consents, consent_header, consent_rows(patient_ids))
    late_visits, late_consents = out_dir / "visits_late.csv", out_dir / "consents_late.csv"
    write_csv(late_visits, visit_header, visit_rows([late.pid]))
    write_csv(late_consents, consent_header, consent_rows([late.pid]))
    map_path = out_dir / "clinic.map.yaml"
    map_path.write_text(MAP, encoding="utf-8")
    return ClinicManifest(
        out_dir=out_dir,
        crm=crm,
        visits=visits,
        consents=consents,
        map_path=map_path,
        late_visits=late_visits,
        late_consents=late_consents,
        persons=people,
        diagnoses=diagnoses,
        consented=consented,
        late_patient=late.pid,
    )


def _when(rng: random.Random, person: Person) -> date:
    """A diagnosis date after the person's 18th birthday, at most ten years back."""
    start = max(date(2016, 1, 1), person.dob + timedelta(days=18 * 366))
    end = date(2025, 12, 31)
    if start >= end:
        return end
    return start + timedelta(days=rng.randrange((end - start).days))


def _programme(condition: str) -> str:
    return CONDITIONS.get(condition, (0, "rare disease"))[1]
