"""Benchmark: a linkage attack on de-identified releases of a synthetic clinic, against the engine
as it was before issue 20 and the engine of this tree, side by side.

A synthetic clinic (:func:`custos.synthetic.clinic.generate_clinic`: 3,000 CRM persons, 1,300
patients, a few rare conditions, explicit ``health_research`` consent for ~90%) is ingested by
each engine into a store of its own; the analyst makes the same releases through each engine's
service API (``custos.service.release.release``, what ``custos release`` runs), each k=5, l=2,
``-s condition``, from the source ``clinic``. Each engine runs in a process of its own
(``bench/release_engine.py`` with ``PYTHONPATH`` at its ``src``); the engine before issue 20 is
the commit before the first issue-20 commit (:data:`BEFORE`), checked out as a git worktree under
/tmp (``--before-src`` names another). It had no per-release pseudonyms (every release of a
purpose joins on the pseudonym), no reference date (ages on the run date, so the monthly series
sets its clock) and no 90+ top-code. The attacker holds a voter roll (name, birth date,
postcode, city, sex) of 1,200 CRM persons and matches each target against every released row
whose generalised quasi-identifiers cover the target's values:

* **certain disclosure**: every candidate the attacker is left with holds one condition (over
  several releases that cannot be joined: the only condition every release allows), and it is
  the target's;
* **unique re-identification**: exactly one candidate is left (joined on the pseudonym where
  the releases are linkable), and it is the target (the target is released and the candidate's
  conditions are the target's).

Shares are of the targets who are released patients (consenting). Sequences: a single
``-q age,sex,postcode`` release; the four-release composition (``-q age``, ``-q postcode``,
``-q postcode,sex``, ``-q age,sex,postcode``) with per-release pseudonyms (the default) and with
``--linkable`` ones, joined on the pseudonym; a monthly series (four releases at the first of
each month as the reference date); differencing after one new patient (the rows added, after
recoding the finer release to the coarser one's generalisation; with linkable pseudonyms the
new pseudonym). Information loss: the generalisation height (levels used / levels available,
summed over the quasi-identifiers) and the suppressed share.

Aggregates (this tree only): three ``--aggregate`` releases at ε=1 each (the purpose's budget of
3 spent) and a fourth, refused. The attacker looks up a target's groups (their age band and sex,
their postcode region) and learns the condition when only one is listed there; the best guess
(the condition counted most in the target's group) is compared with guessing the most common
condition, and rare conditions listed are counted.

    python bench/release.py [--persons 3000] [--patients 1300] [--roll 1200] [--no-record]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from custos.privacy.deid.operators import operator_for  # noqa: E402
from custos.service.release import AGE_TOP  # noqa: E402
from custos.synthetic.clinic import RARE, ClinicManifest, generate_clinic  # noqa: E402
from custos.synthetic.people import Person  # noqa: E402

#: The last commit before issue 20's first (``git log -- src/custos/service/release.py``).
BEFORE = "ecc6464"
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
#: The aggregate releases: quasi-identifiers and their levels (age 2: bands of 10).
AGGREGATES: tuple[tuple[list[str], dict[str, int]], ...] = (
    (["age", "sex"], {"age": 2}),
    (["postcode"], {"postcode": 4}),
    (["age", "sex"], {"age": 3}),
    (["sex"], {}),
)


class Engine:
    """One engine in a process of its own (bench/release_engine.py), over a store of its own."""

    def __init__(self, name: str, src: Path) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(src)}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "release_engine.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, **command: Any) -> dict[str, Any]:
        """Send one command, return its answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command, default=str) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} engine stopped (see its error above)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """End the engine's process."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def before_src(commit: str = BEFORE) -> Path:
    """The engine before issue 20: a git worktree of ``commit`` under /tmp (made once)."""
    folder = Path(tempfile.gettempdir()) / f"custos-before-{commit}"
    if not (folder / "src" / "custos").exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), commit],
            check=True,
            capture_output=True,
        )
    return folder / "src"


@dataclass
class Released:
    """One release as the attacker reads it: pseudonym → rows' quasi-identifiers, conditions."""

    columns: list[str]
    reference: date
    report: dict[str, Any]
    qis: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    conditions: dict[str, set[str]] = field(default_factory=dict)
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


def age(born: date, reference: date, topcoded: bool) -> str:
    """The age at ``reference`` as the engine shows it (top-coded at 90+ since issue 20)."""
    years = reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day))
    return f"{AGE_TOP}+" if topcoded and years >= AGE_TOP else str(years)


class Attack:
    """The clinic, the analyst's engine and the attacker's voter roll."""

    def __init__(self, clinic: ClinicManifest, engine: Engine, folder: Path, roll: int) -> None:
        self.clinic, self.engine, self.folder = clinic, engine, folder
        self.roll: list[Person] = random.Random(7).sample(clinic.persons, roll)
        self.count = 0
        self.topcoded = True

    def values(self, person: Person, reference: date) -> dict[str, str | None]:
        """What the voter roll tells of a target, as the release's columns."""
        return {
            "age": age(person.dob, reference, self.topcoded),
            "sex": self.clinic.sex(person),
            "postcode": person.address.postcode,
        }

    def release(
        self, columns: Sequence[str], *, linkable: bool = False, reference: date = REFERENCE
    ) -> Released | None:
        """Make one release (None when refused) and read it back as the attacker."""
        self.count += 1
        out = self.folder / f"{self.engine.name}-release{self.count}.csv"
        answer = self.engine.ask(
            op="release", qis=list(columns), linkable=linkable, reference=reference, out=out
        )
        if answer["refused"]:
            return None
        self.topcoded = answer["report"]["topcoded"]
        seen = Released(list(columns), reference, answer["report"])
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

    def attack(self, name: str, releases: list[Released | None]) -> Outcome:
        """Match every target against the releases, joined on the pseudonym when they are
        linkable (always, before issue 20)."""
        made = [r for r in releases if r is not None]
        joined = all(r.report["linkable"] for r in made)
        outcome = Outcome(name, len(releases), refused=len(releases) - len(made))
        for seen in made:
            outcome.height.append(self.height(seen))
            total = seen.report["persons"] + seen.report["suppressed_persons"]
            outcome.suppressed.append(seen.report["suppressed_persons"] / total if total else 0.0)
        released = set.intersection(*(self.released(r) for r in made)) if made else set()
        for person in self.roll:
            truth = {c for _, c in self.clinic.diagnoses.get(person.pid, [])}
            if person.pid not in released:
                continue
            outcome.targets += 1
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
        used = available = 0
        for column in seen.columns:
            values = sorted(
                {v for p in self.clinic.persons if (v := self.values(p, seen.reference)[column])}
            )
            op = operator_for(column, values, None)
            how = seen.report["generalisation"][column].split(": ", 1)[1]
            level = next((n for n in range(op.levels + 1) if op.describe(n) == how), op.levels)
            used, available = used + level, available + op.levels
        return used / available if available else 0.0


def differencing(attack: Attack) -> list[Outcome]:
    """Releases (per-release and linkable pseudonyms), one new patient, the same releases
    again: is the new patient revealed by the rows added, or by the one new pseudonym?"""
    before = {linkable: attack.release(SINGLE, linkable=linkable) for linkable in (False, True)}
    clinic = attack.clinic
    attack.engine.ask(
        op="late", visits=clinic.late_visits, consents=clinic.late_consents, map=clinic.map_path
    )
    after = {linkable: attack.release(SINGLE, linkable=linkable) for linkable in (False, True)}
    truth = {c for _, c in clinic.diagnoses[clinic.late_patient]}
    outcomes = []
    for linkable in (False, True):
        one, two = before[linkable], after[linkable]
        name = "differencing, " + ("linkable: the new pseudonym" if linkable else "rows added")
        outcome = Outcome(name, 2, refused=(one is None) + (two is None), targets=1)
        outcomes.append(outcome)
        if one is None or two is None:
            continue
        for seen in (one, two):
            outcome.height.append(attack.height(seen))
            total = seen.report["persons"] + seen.report["suppressed_persons"]
            outcome.suppressed.append(seen.report["suppressed_persons"] / total)
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


def sequences(attack: Attack) -> tuple[list[Outcome], dict[str, Any]]:
    """The row-release sequences against one engine; and the single release's risk report."""
    single = attack.release(SINGLE)
    outcomes = [attack.attack("single -q age,sex,postcode", [single])]
    risk = single.report.get("risk", {}) if single is not None else {}
    four = [attack.release(q) for q in FOUR]
    outcomes.append(attack.attack("four releases, per-release pseudonyms", four))
    linked = [attack.release(q, linkable=True) for q in FOUR]
    outcomes.append(attack.attack("four releases, linkable, joined", linked))
    months = [attack.release(SINGLE, reference=date(2026, m, 1)) for m in range(1, 5)]
    outcomes.append(attack.attack("monthly series (4, reference date per month)", months))
    outcomes += differencing(attack)
    return outcomes, risk


@dataclass
class AggregateOutcome:
    """What the attacker learned from the aggregate releases."""

    made: int = 0
    refused: int = 0
    targets: int = 0
    single: int = 0  # targets in a group that lists one condition only
    certain: int = 0  # ... and it is theirs
    guessed: int = 0
    baseline: int = 0
    rare_listed: int = 0
    groups: list[int] = field(default_factory=list)
    left: float = 0.0


def aggregates(attack: Attack) -> AggregateOutcome:
    """Aggregate releases until the budget is spent, and the attack on their counts."""
    outcome = AggregateOutcome()
    tables: list[tuple[list[str], dict[tuple[str, ...], Counter[str]]]] = []
    for i, (columns, levels) in enumerate(AGGREGATES):
        out = attack.folder / f"aggregate{i}.csv"
        answer = attack.engine.ask(
            op="aggregate", qis=columns, levels=levels, epsilon=1.0, reference=REFERENCE, out=out
        )
        if answer["refused"]:
            outcome.refused += 1
            continue
        outcome.made += 1
        outcome.left = answer["report"]["epsilon_left"]
        counts: dict[tuple[str, ...], Counter[str]] = {}
        with out.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                group = tuple(row[c] for c in columns)
                counts.setdefault(group, Counter())[row["condition"]] += int(row["count"])
                outcome.rare_listed += row["condition"] in RARE
        outcome.groups.append(sum(len(c) for c in counts.values()))
        tables.append((columns, counts))
    overall = Counter(c for d in attack.clinic.diagnoses.values() for _, c in d)
    common = overall.most_common(1)[0][0]
    for person in attack.roll:
        if person.pid not in attack.clinic.consented:
            continue
        truth = {c for _, c in attack.clinic.diagnoses.get(person.pid, [])}
        if not truth:
            continue
        outcome.targets += 1
        values = attack.values(person, REFERENCE)
        learned: set[str] = set()
        best: Counter[str] = Counter()
        for columns, counts in tables:
            wanted = [values[c] for c in columns]
            for group, held in counts.items():
                if all(covers(g, v) for g, v in zip(group, wanted, strict=True)):
                    best.update(held)
                    if len(held) == 1:
                        learned |= set(held)
        outcome.single += bool(learned)
        outcome.certain += bool(learned) and learned <= truth
        guess = best.most_common(1)[0][0] if best else common  # else: the prior
        outcome.guessed += guess in truth
        outcome.baseline += common in truth
    return outcome


def run(args: argparse.Namespace) -> tuple[dict[str, list[Outcome]], float, dict[str, Any], Any]:
    """Generate the clinic; release and attack with each engine. Returns the outcomes per
    engine, the setup time, this tree's single release's risk report and the aggregates'."""
    with tempfile.TemporaryDirectory(prefix="custos-bench-") as tmp:
        folder = Path(tmp)
        clinic = generate_clinic(
            folder / "clinic", persons=args.persons, patients=args.patients, seed=args.seed
        )
        (folder / "taxonomy.yaml").write_text(TAXONOMY, encoding="utf-8")
        engines = {"before": Path(args.before_src) if args.before_src else before_src()}
        engines["now"] = ROOT / "src"
        outcomes: dict[str, list[Outcome]] = {}
        risk: dict[str, Any] = {}
        counted = None
        setup = 0.0
        for name, src in engines.items():
            engine = Engine(name, src)
            try:
                clock = time.perf_counter()
                engine.ask(
                    op="setup",
                    db=str(folder / f"{name}.db"),
                    key=str(folder / f"{name}.key"),
                    taxonomy=str(folder / "taxonomy.yaml"),
                    crm=clinic.crm,
                    visits=clinic.visits,
                    consents=clinic.consents,
                    map=clinic.map_path,
                )
                setup += time.perf_counter() - clock
                attack = Attack(clinic, engine, folder, args.roll)
                outcomes[name], found = sequences(attack)
                if name == "now":
                    risk, counted = found, aggregates(attack)
            finally:
                engine.close()
    return outcomes, setup, risk, counted


def table(outcomes: dict[str, list[Outcome]]) -> str:
    """The outcomes, before issue 20 → now, as a Markdown table."""
    lines = [
        "| sequence | releases (refused) | targets | certain disclosure "
        "| unique re-identification | generalisation height | suppressed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def share(n: int, targets: int) -> str:
        return f"{n} ({n / targets:.1%})" if targets else str(n)

    def mean(values: list[float], form: str) -> str:
        return format(sum(values) / len(values), form) if values else "-"

    for old, new in zip(outcomes["before"], outcomes["now"], strict=True):
        note = f" ({old.note} → {new.note})" if old.note or new.note else ""
        lines.append(
            f"| {new.name}{note} | {old.releases} ({old.refused}) → {new.releases} ({new.refused}) "
            f"| {old.targets} → {new.targets} "
            f"| {share(old.certain, old.targets)} → {share(new.certain, new.targets)} "
            f"| {share(old.unique, old.targets)} → {share(new.unique, new.targets)} "
            f"| {mean(old.height, '.2f')} → {mean(new.height, '.2f')} "
            f"| {mean(old.suppressed, '.1%')} → {mean(new.suppressed, '.1%')} |"
        )
    return "\n".join(lines)


def _aggregates(found: AggregateOutcome | None) -> str:
    """The aggregate attack in a few sentences."""
    if found is None:
        return ""
    t = found.targets

    def pct(n: int) -> str:
        return f"{n} ({n / t:.1%})" if t else str(n)

    return (
        f"Aggregates (this tree; before issue 20 there were none): {found.made} releases at ε=1 "
        f"(`-q age,sex --level age=2`, `-q postcode --level postcode=4`, `-q age,sex "
        f"--level age=3`), then {found.refused} refused (budget 3 spent, {found.left:g} left); "
        f"groups listed {', '.join(map(str, found.groups))}. Of {t} consenting patients on the "
        f"roll, {pct(found.single)} are in a group that lists one condition only, and it is "
        f"theirs for {pct(found.certain)} (differential privacy makes no count certain: this is "
        f"the attacker's best inference); the best guess (the condition counted most in the "
        f"target's groups, else the most common) is right for {pct(found.guessed)}, against "
        f"{pct(found.baseline)} for guessing the most common condition without the release; "
        f"rare conditions listed: {found.rare_listed}."
    )


def _risk(risk: dict[str, Any]) -> str:
    """The single release's risk report (FILE.risk.json) in one sentence."""
    if not risk:
        return "The single release was refused: no risk report."
    closeness = ", ".join(f"{c} {t:.2f}" for c, t in risk["t_closeness"].items())
    return (
        f"Risk report of the single release (now): prosecutor max {risk['prosecutor_max']:.1%}, "
        f"mean {risk['prosecutor_mean']:.1%}; journalist max {risk['journalist_max']:.1%}, mean "
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
    parser.add_argument(
        "--before-src", help=f"src of the engine before issue 20 (default: worktree of {BEFORE})"
    )
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    outcomes, setup, risk, counted = run(args)
    elapsed = time.perf_counter() - started
    body = "\n".join(
        [
            f"A synthetic clinic ({args.persons:,} CRM persons, {args.patients:,} patients, seed "
            f"{args.seed}); the attacker's voter roll holds {args.roll:,} of the CRM persons. "
            "Every release k=5, l=2, `-s condition`, purpose `health_research`, source `clinic`. "
            f"Each cell: the engine before issue 20 (commit {BEFORE}: one pseudonym per person "
            "and purpose, ages on the run date, no register) → this tree's engine. Shares are of "
            "the roll's targets who are released patients. Targets (issue 20): certain "
            "disclosure ≤ 1% and unique re-identification ≤ 1% over any sequence of releases "
            "for one purpose. Every release is checked against the purpose's earlier ones by "
            "the release register (consistent generalisation, composition on the combined view "
            "whatever the pseudonyms, differencing: a newcomer is held back until k have "
            "joined, suppression complements).",
            "",
            table(outcomes),
            "",
            _risk(risk),
            "",
            _aggregates(counted),
            "",
            f"Setup (ingest, resolve; both engines) {setup:.0f} s; whole run {elapsed:.0f} s.",
        ]
    )
    print(body)
    if not args.no_record:
        write_section(
            "release (linkage attack)", "python bench/release.py " + " ".join(sys.argv[1:]), body
        )


if __name__ == "__main__":
    main()
