"""Benchmark: a linkage attack on de-identified releases of a synthetic clinic.

A synthetic clinic (:func:`custos.synthetic.clinic.generate_clinic`: 3,000 CRM persons, 1,300
patients, a few rare conditions, explicit ``health_research`` consent for ~90%) is ingested; the
analyst makes releases through the service API (:func:`custos.service.release.release`, what
``custos release`` runs), each k=5, l=2, ``-s condition``, from the source ``clinic``. The
attacker holds a voter roll (name, birth date, postcode, city, sex) of 1,200 CRM persons and
matches each target against every released row whose generalised quasi-identifiers cover the
target's values:

* **certain disclosure**: every candidate the attacker is left with holds one condition (over
  several releases that cannot be joined: the only condition every release allows), and it is
  the target's;
* **unique re-identification**: exactly one candidate is left (joined on the pseudonym where
  the releases are linkable), and it is the target (the target is released and the candidate's
  conditions are the target's).

Shares are of the targets who are released patients (consenting). Sequences: a single
``-q age,sex,postcode`` release; the four-release composition (``-q age``, ``-q postcode``,
``-q postcode,sex``, ``-q age,sex,postcode``) with per-release pseudonyms (the default) and with
``--linkable`` ones, joined on the pseudonym; differencing after one new patient (the rows
added, after recoding the finer release to the coarser one's generalisation; with ``--linkable``
the new pseudonym); a monthly series (four releases at the first of
each month as the reference date). Information loss: the generalisation height (levels used /
levels available, summed over the quasi-identifiers) and the suppressed share.

    python bench/release.py [--persons 3000] [--patients 1300] [--roll 1200] [--no-record]
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from custos.core.fields import Kind  # noqa: E402
from custos.core.settings import Settings  # noqa: E402
from custos.privacy.deid import Refused  # noqa: E402
from custos.privacy.deid.operators import operator_for  # noqa: E402
from custos.service import Custos  # noqa: E402
from custos.service.release import ReleaseReport, _age, release  # noqa: E402
from custos.synthetic.clinic import ClinicManifest, generate_clinic  # noqa: E402
from custos.synthetic.people import Person  # noqa: E402

TAXONOMY = """purposes:
  health_research:
    basis: consent
    description: "research on health outcomes"
    categories: [identity, location, health]
"""
REFERENCE = date(2026, 1, 1)
FOUR = (["age"], ["postcode"], ["postcode", "sex"], ["age", "sex", "postcode"])
SINGLE = ["age", "sex", "postcode"]
BAND = re.compile(r"(\d+)-(\d+)")


@dataclass
class Released:
    """One release as the attacker reads it: pseudonym → rows' quasi-identifiers, conditions."""

    columns: list[str]
    reference: date
    qis: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    conditions: dict[str, set[str]] = field(default_factory=dict)
    report: ReleaseReport | None = None
    matched: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Outcome:
    """What the attacker learned from one sequence of releases, and what it cost."""

    name: str
    releases: int
    refused: int = 0
    certain: int = 0
    unique: int = 0
    targets: int = 0
    height: list[float] = field(default_factory=list)
    suppressed: list[float] = field(default_factory=list)
    note: str = ""


def covers(generalised: str, value: str | None) -> bool:
    """Whether a released (generalised) value could be the target's true value."""
    if value is None:
        return generalised == "*"
    if set(generalised) == {"*"}:
        return True
    if "*" in generalised:
        return len(generalised) == len(value) and all(
            g in ("*", v) for g, v in zip(generalised, value, strict=True)
        )
    if generalised.endswith("+"):
        return value.endswith("+") or (value.isdigit() and int(value) >= int(generalised[:-1]))
    band = BAND.fullmatch(generalised)
    if band and value.isdigit():
        return int(band[1]) <= int(value) <= int(band[2])
    return generalised == value


class Attack:
    """The clinic, the analyst's store and the attacker's voter roll."""

    def __init__(self, clinic: ClinicManifest, app: Custos, folder: Path, roll: int) -> None:
        self.clinic, self.app, self.folder = clinic, app, folder
        self.roll: list[Person] = random.Random(7).sample(clinic.persons, roll)
        self.count = 0

    def values(self, person: Person, reference: date) -> dict[str, str | None]:
        """What the voter roll tells of a target, as the release's columns."""
        return {
            "age": _age(person.dob.isoformat(), reference),
            "sex": self.clinic.sex(person),
            "postcode": person.address.postcode,
        }

    def release(
        self, columns: Sequence[str], *, linkable: bool = False, reference: date = REFERENCE
    ) -> Released | None:
        """Make one release (None when refused) and read it back as the attacker."""
        self.count += 1
        out = self.folder / f"release{self.count}.csv"
        try:
            report = release(
                self.app,
                purpose="health_research",
                quasi_identifiers=list(columns),
                sensitive=["condition"],
                k=5,
                l_div=2,
                output=out,
                source="clinic",
                reference_date=reference,
                linkable=linkable,
                actor="bench",
            )
        except Refused:
            return None
        seen = Released(list(columns), reference, report=report)
        with out.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                seen.qis.setdefault(row["person"], set()).add(tuple(row[c] for c in columns))
                seen.conditions.setdefault(row["person"], set()).update(row["condition"].split(";"))
        return seen

    def candidates(self, seen: Released, person: Person) -> set[str]:
        """The released pseudonyms whose rows could be the target's."""
        if person.pid in seen.matched:
            return seen.matched[person.pid]
        values = self.values(person, seen.reference)
        wanted = [values[c] for c in seen.columns]
        found = seen.matched[person.pid] = {
            p
            for p, combos in seen.qis.items()
            if any(
                all(covers(g, v) for g, v in zip(combo, wanted, strict=True)) for combo in combos
            )
        }
        return found

    def attack(self, name: str, releases: list[Released | None], *, joined: bool) -> Outcome:
        """Match every target against the releases; joined: on the pseudonym."""
        made = [r for r in releases if r is not None]
        outcome = Outcome(name, len(releases), refused=len(releases) - len(made))
        for seen in made:
            assert seen.report is not None
            outcome.height.append(self.height(seen))
            total = seen.report.persons + seen.report.suppressed_persons
            outcome.suppressed.append(seen.report.suppressed_persons / total if total else 0.0)
        released = set.intersection(*(self.released(r) for r in made)) if made else set()
        for person in self.roll:
            truth = {c for _, c in self.clinic.diagnoses.get(person.pid, [])}
            if person.pid not in released:
                continue
            outcome.targets += 1
            if not made:
                continue
            found = [self.candidates(r, person) for r in made]
            if joined:
                common = set.intersection(*found)
                held = [made[0].conditions[p] for p in common]
                certain = set.intersection(*held) if held else set()
                unique = len(common) == 1 and held[0] == truth
            else:
                possible = set.intersection(
                    *(
                        set().union(*(r.conditions[p] for p in c))
                        for r, c in zip(made, found, strict=True)
                    )
                )
                certain = possible if len(possible) == 1 else set()
                for r, c in zip(made, found, strict=True):
                    if c:
                        certain |= set.intersection(*(r.conditions[p] for p in c))
                unique = any(
                    len(c) == 1 and r.conditions[next(iter(c))] == truth
                    for r, c in zip(made, found, strict=True)
                )
            outcome.certain += bool(certain) and certain <= truth
            outcome.unique += unique
        return outcome

    def released(self, seen: Released) -> set[str]:
        """The roll's persons the release holds (consenting patients, not suppressed), by
        their conditions and quasi-identifiers: whom the attacker can truly hit."""
        out = set()
        for person in self.roll:
            if person.pid in self.clinic.consented and self.candidates(seen, person):
                truth = {c for _, c in self.clinic.diagnoses.get(person.pid, [])}
                if any(seen.conditions[p] == truth for p in self.candidates(seen, person)):
                    out.add(person.pid)
        return out

    def height(self, seen: Released) -> float:
        """Levels used / levels available, summed over the release's quasi-identifiers."""
        assert seen.report is not None
        used = available = 0
        for column in seen.columns:
            values = sorted(
                {v for p in self.clinic.persons if (v := self.values(p, seen.reference)[column])}
            )
            op = operator_for(column, values, None)
            how = seen.report.generalisation[column].split(": ", 1)[1]
            level = next((n for n in range(op.levels + 1) if op.describe(n) == how), op.levels)
            used, available = used + level, available + op.levels
        return used / available if available else 0.0


def differencing(attack: Attack) -> list[Outcome]:
    """Releases (per-release and linkable pseudonyms), one new patient, the same releases
    again: is the new patient revealed by the rows added, or by the one new pseudonym?"""
    before = {linkable: attack.release(SINGLE, linkable=linkable) for linkable in (False, True)}
    clinic, app = attack.clinic, attack.app
    app.ingest(clinic.late_visits, "clinic", map_path=clinic.map_path)
    app.resolve()
    app.ingest(clinic.late_consents, "crm", kind=Kind.CONSENTS)
    after = {linkable: attack.release(SINGLE, linkable=linkable) for linkable in (False, True)}
    truth = {c for _, c in clinic.diagnoses[clinic.late_patient]}
    outcomes = []
    for linkable in (False, True):
        one, two = before[linkable], after[linkable]
        name = "differencing, " + ("--linkable: the new pseudonym" if linkable else "rows added")
        outcome = Outcome(name, 2, refused=(one is None) + (two is None), targets=1)
        outcomes.append(outcome)
        if one is None or two is None:
            continue
        for seen in (one, two):
            assert seen.report is not None
            outcome.height.append(attack.height(seen))
            total = seen.report.persons + seen.report.suppressed_persons
            outcome.suppressed.append(seen.report.suppressed_persons / total)
        if linkable:
            new = set(two.qis) - set(one.qis)
            learned = set().union(*(two.conditions[p] for p in new)) if new else set()
            outcome.unique = int(len(new) == 1 and learned == truth)
            outcome.note = f"{len(new)} new pseudonym(s)"
        else:
            added = _added(_rows(one), _rows(two))
            late = next(p for p in clinic.persons if p.pid == clinic.late_patient)
            values = attack.values(late, REFERENCE)
            wanted = [values[c] for c in SINGLE]
            learned = {
                c for q, c in added if all(map(covers, q, wanted))
            }  # the added rows that could be the new patient's
            outcome.unique = int(len(added) == 1 and learned == truth)  # the row singled out
            outcome.note = f"{len(added)} row(s) added"
        outcome.certain = int(bool(learned) and learned == truth)
    return outcomes


def within(coarse: str, fine: str) -> bool:
    """Whether every value a ``fine`` generalised value could be is covered by ``coarse``."""
    if set(coarse) == {"*"} or coarse == fine:
        return True
    if "*" in coarse and len(coarse) == len(fine):
        return all(c in ("*", f) for c, f in zip(coarse, fine, strict=True))
    band, inner = BAND.fullmatch(coarse), BAND.fullmatch(fine)
    if band and inner:
        return int(band[1]) <= int(inner[1]) and int(inner[2]) <= int(band[2])
    return covers(coarse, fine) if fine.isdigit() else False


def _added(
    one: list[tuple[tuple[str, ...], str]], two: list[tuple[tuple[str, ...], str]]
) -> list[tuple[tuple[str, ...], str]]:
    """The rows of ``two`` not in ``one``, after recoding the finer release's rows to the
    coarser one's values (a new generalisation does not hide the row that was added)."""

    def recode(
        rows: list[tuple[tuple[str, ...], str]], to: list[tuple[tuple[str, ...], str]]
    ) -> list[tuple[tuple[str, ...], str]] | None:
        targets = sorted({q for q, _ in to})
        out = []
        for q, c in rows:
            found = [t for t in targets if all(map(within, t, q))]
            if len(found) != 1:
                return None
            out.append((found[0], c))
        return out

    first, second = one, two
    if {q for q, _ in one} != {q for q, _ in two}:
        if (coarse := recode(two, one)) is not None:
            second = coarse
        elif (coarse := recode(one, two)) is not None:
            first = coarse
    added = list(second)
    for row in first:
        if row in added:
            added.remove(row)
    return added


def _rows(seen: Released) -> list[tuple[tuple[str, ...], str]]:
    """The release's rows without the pseudonym (what differencing compares)."""
    return sorted((q, c) for p in seen.qis for q in seen.qis[p] for c in seen.conditions[p])


def run(args: argparse.Namespace) -> tuple[list[Outcome], float, dict[str, Any]]:
    """Generate, ingest, release and attack; returns the outcomes, the setup time and the
    single release's risk report."""
    with tempfile.TemporaryDirectory(prefix="custos-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        clinic = generate_clinic(
            folder / "clinic", persons=args.persons, patients=args.patients, seed=args.seed
        )
        (folder / "taxonomy.yaml").write_text(TAXONOMY, encoding="utf-8")
        url = str(folder / "clinic.db")
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            db=url,
            secret_key_file=str(folder / "secret.key"),
            taxonomy=str(folder / "taxonomy.yaml"),
        )
        with Custos.open(url, settings) as app:
            app.ingest(clinic.crm, "crm", map_path=clinic.map_path)
            app.ingest(clinic.visits, "clinic", map_path=clinic.map_path)
            app.resolve()
            app.ingest(clinic.consents, "crm", kind=Kind.CONSENTS)
            setup = time.perf_counter() - started
            attack = Attack(clinic, app, folder, args.roll)
            single = attack.release(SINGLE)
            outcomes = [attack.attack("single -q age,sex,postcode", [single], joined=False)]
            risk = single.report.risk if single is not None and single.report else {}
            four = [attack.release(q) for q in FOUR]
            outcomes.append(
                attack.attack("four releases, per-release pseudonyms", four, joined=False)
            )
            linked = [attack.release(q, linkable=True) for q in FOUR]
            outcomes.append(attack.attack("four releases, --linkable, joined", linked, joined=True))
            months = [attack.release(SINGLE, reference=date(2026, m, 1)) for m in range(1, 5)]
            outcomes.append(
                attack.attack("monthly series (4, reference date per month)", months, joined=False)
            )
            outcomes += differencing(attack)
    return outcomes, setup, risk


def table(outcomes: list[Outcome]) -> str:
    """The outcomes as a Markdown table."""
    lines = [
        "| sequence | releases (refused) | targets | certain disclosure | unique re-identification "
        "| generalisation height | suppressed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        targets = o.targets

        def share(n: int, targets: int = targets) -> str:
            return f"{n} ({n / targets:.1%})" if targets else str(n)

        height = f"{sum(o.height) / len(o.height):.2f}" if o.height else "-"
        suppressed = f"{sum(o.suppressed) / len(o.suppressed):.1%}" if o.suppressed else "-"
        name = o.name + (f" ({o.note})" if o.note else "")
        lines.append(
            f"| {name} | {o.releases} ({o.refused}) | {o.targets} | {share(o.certain)} "
            f"| {share(o.unique)} | {height} | {suppressed} |"
        )
    return "\n".join(lines)


def _risk(risk: dict[str, Any]) -> str:
    """The single release's risk report (FILE.risk.json) in one sentence."""
    if not risk:
        return "The single release was refused: no risk report."
    closeness = ", ".join(f"{c} {t:.2f}" for c, t in risk["t_closeness"].items())
    return (
        f"Risk report of the single release: prosecutor max {risk['prosecutor_max']:.1%}, mean "
        f"{risk['prosecutor_mean']:.1%}; journalist max {risk['journalist_max']:.1%}, mean "
        f"{risk['journalist_mean']:.1%}; marketer {risk['marketer']:.1%}; unique combinations "
        f"{risk['unique_share']:.1%}; t-closeness {closeness}; suppressed "
        f"{risk['suppressed_persons']} ({risk['suppressed_share']:.1%})."
    )


def main() -> None:
    """Run, print and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--patients", type=int, default=1300)
    parser.add_argument("--roll", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    outcomes, setup, risk = run(args)
    elapsed = time.perf_counter() - started
    body = "\n".join(
        [
            f"A synthetic clinic ({args.persons:,} CRM persons, {args.patients:,} patients, seed "
            f"{args.seed}); the attacker's voter roll holds {args.roll:,} of the CRM persons. "
            "Every release k=5, l=2, `-s condition`, purpose `health_research`, source `clinic`. "
            "Shares are of the roll's targets who are released patients. Targets (issue 20): "
            "certain disclosure ≤ 1% and unique re-identification ≤ 1% over any sequence of "
            "releases for one purpose. Every release is checked against the purpose's earlier "
            "ones by the release register (consistent generalisation, linkable composition, "
            "differencing: a newcomer is held back until k have joined, suppression "
            "complements).",
            "",
            table(outcomes),
            "",
            _risk(risk),
            "",
            f"Setup (generate, ingest, resolve) {setup:.0f} s; whole run {elapsed:.0f} s.",
        ]
    )
    print(body)
    if not args.no_record:
        write_section(
            "release (linkage attack)", "python bench/release.py " + " ".join(sys.argv[1:]), body
        )


if __name__ == "__main__":
    main()
