"""Aggregate releases: counts of persons per group with differential-privacy noise
(``custos release --aggregate``), for studies that need tables rather than rows.

The rows are those a row release reads (:func:`custos.service.release._rows`: the persons the
purpose may see, the taxonomy's refusals of direct identifiers and free text, ages at the
reference date, 90+). Each person counts once per group, in at most ``per_person`` groups (the
contribution bound, and so the sensitivity); the counts get discrete Laplace noise at the
release's ε, and a group is listed only when its noisy count reaches the threshold
(:mod:`custos.privacy.deid.noise`). Every aggregate release is registered with its ε, and the
ε a purpose's aggregate releases spend together may not exceed its budget
(``CUSTOS_RELEASE_EPSILON_BUDGET``): a release that would is refused with counts only, audited.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from custos.core.errors import ConfigError, InputError
from custos.core.files import write_private
from custos.privacy.deid import Refused
from custos.privacy.deid.noise import Cell, generator, noisy_counts
from custos.privacy.deid.operators import operator_for
from custos.service.reads import GuardSession
from custos.service.release import (
    AGE_TOP,
    DERIVED,
    _check_released,
    _register_entry,
    _rows,
    _write,
    described,
)
from custos.store import releases as register

if TYPE_CHECKING:
    from custos.service.app import Custos

#: The ε of an aggregate release when none is given.
DEFAULT_EPSILON = 1.0


@dataclass
class AggregateReport:
    """What an aggregate release wrote (noisy figures only: no exact count of persons)."""

    file: str
    purpose: str
    release_id: str
    groups: int
    epsilon: float
    epsilon_budget: float
    epsilon_spent: float
    epsilon_left: float
    noise: dict[str, Any] = field(default_factory=dict)
    generalisation: dict[str, str] = field(default_factory=dict)
    reference_date: str = ""
    metadata: str = ""
    per_person: int = 1


def aggregate(
    app: Custos,
    *,
    purpose: str,
    quasi_identifiers: Sequence[str],
    sensitive: Sequence[str] = (),
    output: Path,
    epsilon: float = DEFAULT_EPSILON,
    levels: dict[str, int] | None = None,
    generalise: dict[str, str] | None = None,
    source: str | None = None,
    reference_date: date | None = None,
    per_person: int = 1,
    actor: str = "cli",
    rng: np.random.Generator | None = None,
) -> AggregateReport:
    """Write noisy counts of persons per group of ``quasi_identifiers`` (at ``levels``, crossed
    with ``sensitive``) to ``output`` and ``output.meta.json``, spending ``epsilon`` of the
    purpose's budget; :class:`Refused` (audited, nothing written) when the budget would be
    exceeded. ``rng`` is for tests only: by default the noise is seeded from :mod:`secrets`."""
    columns = [*quasi_identifiers, *sensitive]
    _check(columns, quasi_identifiers, epsilon, per_person)
    reference = reference_date or date(datetime.now(UTC).year, 1, 1)
    budget = app.settings.release_epsilon_budget
    fields = sorted({DERIVED.get(c, c) for c in columns})
    # One guarded read, audited when it ends: as a release once registered (whatever part of
    # the files is written), as a refusal when the budget is spent.
    with GuardSession(app, purpose, actor=actor, action="release", audit_empty=False) as session:
        with app.store.read() as conn:
            access = session.access(conn)
            name = access.purpose.name
            _check_budget(session, budget, register.epsilon_spent(conn, name), epsilon, fields)
            rows, refused, _ = _rows(conn, access, columns, source, reference)
        operators = []
        for c in quasi_identifiers:
            values = sorted({v for _, row in rows if (v := row[c]) is not None})
            operators.append(operator_for(c, values, (generalise or {}).get(c)))
        chosen = _levels(quasi_identifiers, operators, levels or {})
        cells: dict[str, set[Cell]] = {}
        for pid, row in rows:
            if any(row[c] is None for c in sensitive):
                continue
            shown = tuple(
                op.generalise(row[c], level)
                for c, op, level in zip(quasi_identifiers, operators, chosen, strict=True)
            )
            cells.setdefault(pid, set()).add((*shown, *(str(row[c]) for c in sensitive)))
        if not cells:
            raise InputError(
                "no rows to count: no person the purpose may see has a value for every column",
                hint="check --source, the columns and the persons' consent for the purpose",
            )
        rng = rng or generator()
        counts: Counter[Cell] = Counter()
        for pid in sorted(cells):
            held = sorted(cells[pid])
            # The contribution bound: a person in more groups counts in per_person of them, drawn
            # at random (the sensitivity is what one person can change, whatever the data).
            if len(held) > per_person:
                held = [held[i] for i in sorted(rng.permutation(len(held))[:per_person].tolist())]
            counts.update(held)
        noisy = noisy_counts(counts, epsilon=epsilon, sensitivity=per_person, rng=rng)
        generalisation = {
            c: described(op, level)
            for c, op, level in zip(quasi_identifiers, operators, chosen, strict=True)
        }
        release_id = secrets.token_hex(8)
        # Registered (and the budget checked again) in the write transaction, before the file is
        # written: two releases at once cannot both spend the last of the budget.
        with app.store.write() as conn:
            spent = register.epsilon_spent(conn, name)
            if _within(budget, spent, epsilon):
                register.add(
                    conn,
                    _register_entry(
                        release_id,
                        name,
                        actor,
                        quasi_identifiers,
                        sensitive,
                        zip(operators, chosen, strict=True),
                        reference,
                        persons=cells,
                        kind="aggregate",
                        epsilon=epsilon,
                    ),
                )
        _check_budget(session, budget, spent, epsilon, fields)  # refused if spent meanwhile
        session.handed_all(
            sorted(cells),
            fields,
            refused=len(refused),
            detail={
                "kind": "aggregate",
                "columns": columns,
                "epsilon": epsilon,
                "release": release_id,
            },
        )
        spent += epsilon
        meta = output.with_name(output.name + ".meta.json")
        metadata = {
            "release": release_id,
            "kind": "aggregate",
            "purpose": name,
            "quasi_identifiers": list(quasi_identifiers),
            "sensitive": list(sensitive),
            "counts": "persons per group, each counted once in at most "
            f"{per_person} group(s) (the contribution bound)",
            **noisy.describe(),
            "budget": {"epsilon": budget, "spent": spent, "left": max(0.0, budget - spent)},
            "reference_date": reference.isoformat(),
            "ages": f"at the reference date, {AGE_TOP} and over as {AGE_TOP}+",
            "generalisation": generalisation,
            "groups": len(noisy.counts),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write(output, [*columns, "count"], [(*c, n) for c, n in sorted(noisy.counts.items())])
        write_private(meta, orjson.dumps(metadata, option=orjson.OPT_INDENT_2).decode() + "\n")
        return AggregateReport(
            file=str(output),
            purpose=name,
            release_id=release_id,
            groups=len(noisy.counts),
            epsilon=epsilon,
            epsilon_budget=budget,
            epsilon_spent=spent,
            epsilon_left=max(0.0, budget - spent),
            noise=noisy.describe(),
            generalisation=generalisation,
            reference_date=reference.isoformat(),
            metadata=str(meta),
            per_person=per_person,
        )


def _check_budget(
    session: GuardSession, budget: float, spent: float, epsilon: float, fields: list[str]
) -> None:
    """Refuse (audited, counts only) a release whose ε exceeds what the purpose has left."""
    if _within(budget, spent, epsilon):
        return
    purpose = session.purpose
    left = max(0.0, budget - spent)
    counts = {"epsilon_asked": epsilon, "epsilon_spent": spent, "epsilon_budget": budget}
    session.deny(
        action="release_refused",
        refused=0,
        fields=fields,
        detail={"kind": "aggregate", **counts, "epsilon_left": left},
    )
    raise Refused(
        f"the privacy budget of purpose {purpose} is ε={budget:g}: {spent:g} is spent, "
        f"{left:g} is left, and this release asks for ε={epsilon:g}",
        [f"ε asked: {epsilon:g}", f"ε spent: {spent:g}", f"ε left: {left:g}"],
        counts={**counts, "epsilon_left": left},
        hint=f"ask for --epsilon {left:g} or less (noisier counts), or raise "
        "CUSTOS_RELEASE_EPSILON_BUDGET if the purpose's data protection assessment allows",
    )


def _within(budget: float, spent: float, epsilon: float) -> bool:
    return spent + epsilon <= budget + 1e-9  # (sums of decimal ε: not refused by rounding)


def _levels(columns: Sequence[str], operators: Sequence[Any], levels: dict[str, int]) -> list[int]:
    """The stated level of each column (0, exact, unless ``--level COLUMN=N`` says)."""
    unknown = sorted(set(levels) - set(columns))
    if unknown:
        raise ConfigError(
            f"--level names {', '.join(unknown)}, not a quasi-identifier of this release",
            hint="give --level COLUMN=N for columns of --quasi-identifiers",
        )
    out = []
    for column, op in zip(columns, operators, strict=True):
        level = levels.get(column, 0)
        if not 0 <= level <= op.levels:
            steps = ", ".join(f"{n} {op.describe(n)}" for n in range(op.levels + 1))
            raise ConfigError(
                f"--level {column}={level}: the {op.name} operator has levels 0-{op.levels}",
                hint=f"one of: {steps}",
            )
        out.append(level)
    return out


def _check(
    columns: Sequence[str], quasi_identifiers: Sequence[str], epsilon: float, per_person: int
) -> None:
    if not quasi_identifiers:
        raise ConfigError(
            "an aggregate release counts persons per group of --quasi-identifiers",
            hint="e.g. --aggregate -q age,sex -s condition",
        )
    _check_released(columns, "count by other columns")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(
            f"--epsilon {epsilon:g} is not a positive number",
            hint=f"e.g. --epsilon {DEFAULT_EPSILON:g} (smaller: noisier counts, less spent)",
        )
    if per_person < 1:
        raise ConfigError("--per-person is the most groups one person counts in: at least 1")
