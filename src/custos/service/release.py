"""De-identified releases of tabular extracts (research): guarded read → pseudonymise →
generalise and suppress until k-anonymous, l-diverse and t-close per person → write, or refuse.

Rows are the records and interactions (optionally of one source) of the persons the purpose may
see; a column is taken from the row, else from the person's golden record; ``age`` is derived from
the date of birth at the release's reference date, top-coded at 90+. The taxonomy decides what a
column is, whatever the analyst calls it: direct identifiers (contact data, names) never appear;
identity, location and demographic columns and every date-valued column are quasi-identifiers
(one named under ``--sensitive`` is generalised and checked as one, a date never finer than its
month); free text is refused, or released only as the PII engine's redacted form
(``redact_text``). Sensitive values that fewer than k persons hold are recoded to ``other``,
counts are top-coded where fewer than k persons reach them, and each person is one row (several
values of a column as a sorted set), so neither a rare value nor a row count singles them out.
Each person is one keyed pseudonym, new in every release (so two releases cannot be joined on it)
unless the release is asked to be linkable (stable per purpose). Beside the file,
``FILE.meta.json`` states how it was made and ``FILE.risk.json`` the risk that remains.

Each release written is kept in the register (:mod:`custos.store.releases`), and the next release
of the purpose is checked against it: a column released before is released at that level or
coarser; k and l hold on the combined view of every release of the purpose, as if joined (with
per-release pseudonyms too: groups still intersect on what an attacker knows of a target);
persons suppressed before stay out of releases that share a quasi-identifier with that one; and
a release of the same columns may not differ from the last by fewer than k persons.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, select

from custos.consent.guard import Access
from custos.core.errors import ConfigError, InputError
from custos.core.fields import PROSE_WORDS, reads_as_prose, years_old
from custos.core.files import csv_writer, private_file, write_private
from custos.privacy.deid import Refused, Row, deidentify, pseudonym
from custos.privacy.deid.operators import operator_for
from custos.privacy.deid.operators.base import Operator
from custos.privacy.deid.operators.dates import Dates
from custos.privacy.deid.risk import assess
from custos.service.dsr import secret_key
from custos.service.reads import GuardSession
from custos.store import Store
from custos.store import golden as golden_store
from custos.store import releases as register
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

#: Columns that name a person outright: never released (the pseudonym stands for the person).
DIRECT_IDENTIFIERS = frozenset(
    {
        "first_name",
        "last_name",
        "full_name",
        "email",
        "phone",
        "street",
        "social_handle",
        "customer_id",
        "record_id",
        "profile_id",
        "person",
    }
)
#: Taxonomy categories whose columns are never released: contact data names a person outright,
#: free text names persons, places and numbers that no generalisation can make safe.
NEVER_RELEASED = {"contact": "a direct identifier", "free_text": "free text"}
#: Fields that hold free text whatever their category (a health note is filed under health).
FREE_TEXT = frozenset({"text", "health_text"})
#: A column reads as free text, whatever its tag, when one in PROSE_SHARE of its distinct values
#: has more than PROSE_WORDS words (a note tagged ``health`` still names persons and numbers).
PROSE_SHARE = 20
#: Taxonomy categories whose columns are quasi-identifiers wherever the analyst puts them: a
#: voter roll or a CRM holds them beside the name (a city named as "sensitive" is still linked).
QUASI_CATEGORIES = frozenset({"identity", "location", "coarse_location", "demographics"})
#: The finest level a date-valued quasi-identifier is released at (1: the month, never the day).
DATE_FLOOR = 1
#: What a sensitive value held by fewer than k persons is released as (if the values recoded
#: together are held by k persons or more; else those values are left out).
RARE_VALUE = "other"
#: How several values of one person's column are written in their one row (sorted).
SET_SEPARATOR = ";"
#: Derived columns and the field whose category decides whether the purpose may use them.
DERIVED = {"age": "date_of_birth"}
#: Ages from here up are one group, ``90+`` (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)).
AGE_TOP = 90
#: The least k and l a release may ask for without an override (with a reason, audited).
MIN_K, MIN_L = 5, 2
#: The largest t (variational distance of a group's sensitive values from the whole extract's) a
#: release may have without an override. Measured on the synthetic clinic (k=5, l=2, -s
#: condition), releases without a limit reach t = 0.42 (-q age,sex,postcode), 0.60 (-q age),
#: 0.61 (-q postcode) and 0.73 (-q postcode,sex). At 0.5 the single -q age,sex,postcode release
#: is unchanged and the others give up a level or suppress a few more persons; at 0.4 that
#: release would lose its postcode altogether. t holds only with k and l: small groups of a
#: dozen conditions cannot come closer than about 0.3.
MAX_T = 0.5


@dataclass
class ReleaseReport:
    """What a release wrote."""

    file: str
    purpose: str
    rows: int
    persons: int
    suppressed_persons: int
    refused_persons: int
    k: int
    l: int  # noqa: E741 - the name of the measure
    generalisation: dict[str, str] = field(default_factory=dict)
    metadata: str = ""
    release_id: str = ""
    reference_date: str = ""
    pseudonyms: str = ""
    override_reason: str | None = None
    #: newcomers since the last release of the same columns, fewer than k: held back until k
    held_back: int = 0
    risk: dict[str, Any] = field(default_factory=dict)
    t: float = MAX_T
    #: columns named --sensitive that the taxonomy makes quasi-identifiers (generalised, checked)
    promoted: list[str] = field(default_factory=list)
    #: free-text columns released in the PII engine's redacted form (redact_text)
    redacted_text: list[str] = field(default_factory=list)
    #: per sensitive column: how many rare values were recoded, held by how many persons, as what
    rare_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per count column: the value from which counts were top-coded (``N+``)
    top_coded: dict[str, str] = field(default_factory=dict)


def release(
    app: Custos,
    *,
    purpose: str,
    quasi_identifiers: Sequence[str],
    sensitive: Sequence[str],
    k: int,
    l_div: int,
    output: Path,
    source: str | None = None,
    max_suppression: float = 0.05,
    generalise: dict[str, str] | None = None,
    reference_date: date | None = None,
    linkable: bool = False,
    override_reason: str | None = None,
    actor: str = "cli",
    t: float = MAX_T,
    redact_text: bool = False,
) -> ReleaseReport:
    """Write a release of ``output`` (and ``output.meta.json``) that is k-anonymous, l-diverse
    and t-close per person, one row per person, or raise :class:`custos.privacy.deid.Refused`
    with counts only (audited; nothing is written). ``linkable`` keeps one pseudonym per person
    and purpose across releases; ``redact_text`` releases free-text columns named under
    ``sensitive`` in their redacted form instead of refusing them."""
    _check_columns(quasi_identifiers, sensitive)
    asked_columns = [*quasi_identifiers, *sensitive]
    reason = _check_minimum(k, l_div, t, override_reason)
    if not 0.0 <= max_suppression <= 1.0:
        raise ConfigError("--max-suppression is a share of persons, between 0 and 1")
    reference = reference_date or date(datetime.now(UTC).year, 1, 1)
    # One guarded read: audited when it ends, as a release (from when it is registered) or as
    # a refusal with counts only; a request refused before any person is read is not.
    with GuardSession(app, purpose, actor=actor, action="release", audit_empty=False) as session:
        with app.store.read() as conn:
            access = session.access(conn)
            earlier = register.entries(conn, access.purpose.name)
            # Each column an earlier release of the purpose let out, once more at the finest level
            # it was let out at: checked in the combined view, not released (see _combined).
            joined = _combined(earlier)
            extra = _joined_columns(joined, sensitive)
            born = sorted({DERIVED[c] for c, at in extra if at})  # ages at other reference dates
            more = [*(c for c, _ in extra), *born]
            wanted = [*asked_columns, *(c for c in more if c not in asked_columns)]
            rows, refused, kinds = _rows(conn, access, wanted, source, reference, redact_text)
        named = set(quasi_identifiers)
        quasi_identifiers, sensitive, texts = _classify(quasi_identifiers, sensitive, kinds)
        promoted = [c for c in quasi_identifiers if c not in named]
        columns = [*quasi_identifiers, *sensitive]
        released = len(quasi_identifiers)
        searched = [*quasi_identifiers, *(c for c, _ in extra)]
        # What a joined release showed of a person it left out is nothing: hidden in the combined view.
        shown = [set().union(*(e.persons for e in joined if _shows(e, c, at))) for c, at in extra]
        extract = [
            Row(
                pid,
                (
                    *(values[c] for c in quasi_identifiers),
                    *(
                        (_age(values[DERIVED[c]], date.fromisoformat(at)) if at else values[c])
                        if pid in seen
                        else None
                        for (c, at), seen in zip(extra, shown, strict=True)
                    ),
                ),
                tuple(str(values[c]) for c in sensitive),
            )
            for pid, values in rows
            if all(values[c] for c in sensitive)
        ]
        if not extract:
            raise InputError(
                "no rows to release: no person the purpose may see has a value for "
                + ", ".join(sensitive),
                hint="check --source, --sensitive and the persons' consent for the purpose",
            )
        # Decided on everyone the purpose may see (before any earlier release's suppression), so
        # that re-running a release recodes the same values and leaves out the same persons.
        extract, rare_values, left_out = _recode_rare(extract, sensitive, k)
        chosen = _same_operators(earlier, searched, generalise or {})
        extract, top_coded = _top_code(extract, quasi_identifiers, chosen, k)
        suppressed_before, last = _history(earlier, quasi_identifiers, sensitive)
        held = {r.person for r in extract if r.person not in suppressed_before}
        held = held - last.persons if last is not None else set()
        if len(held) >= k:
            held = set()
        again = {r.person for r in extract} & suppressed_before  # suppressed again, see _history
        extract = [r for r in extract if r.person not in suppressed_before | held]
        operators = [
            operator_for(
                c, sorted({v for r in extract if (v := r.qi[i]) is not None}), chosen.get(c)
            )
            for i, c in enumerate(searched)
        ]
        floors = [
            max(
                min((e.level(c) for e in joined if _shows(e, c, at)), default=0),
                DATE_FLOOR if kinds.get(c) == "date" else 0,
            )
            for c, at in [*((c, "") for c in quasi_identifiers), *extra]
        ]
        fields = sorted({DERIVED.get(c, c) for c in (*columns, *texts)})
        asked: dict[str, object] = {"columns": [*asked_columns], "k": k, "l": l_div, "t": t}
        if reason:
            asked["override_reason"] = reason
        try:
            plan = deidentify(
                extract,
                operators,
                columns=quasi_identifiers,
                sensitive=sensitive,
                k=k,
                l_div=l_div,
                max_suppression=max_suppression,
                floors=floors,
                fixed=[i >= released for i in range(len(searched))],
                t=t,
            )
            kept = {p for g in plan.kept for p in g.persons}
            if last is not None:
                _check_difference(kept, last, k)
        except Refused as exc:
            session.deny(
                action="release_refused",
                refused=len(refused),
                fields=fields,
                detail={**asked, **exc.counts},
            )
            raise
        levels = plan.levels[:released]
        release_id = secrets.token_hex(8)
        key = secret_key(app)
        # A random release id in the keyed hash's domain: a new pseudonym per person in every
        # release, which no one without the key can compute or match across releases.
        domain = f"release:{access.purpose.name}" + ("" if linkable else f":{release_id}")
        population = [
            Row(
                r.person,
                tuple(
                    op.generalise(v, level)
                    for op, v, level in zip(operators, r.qi[:released], levels, strict=False)
                ),
                r.sensitive,
            )
            for r in extract
        ]
        out_persons = [r for r in population if r.person in kept]
        redacted = _redacted(rows, texts, kept)
        out_rows = _one_row_per_person(
            out_persons, redacted, texts, lambda p: pseudonym(key, domain, p)
        )
        assessed = assess(out_persons, sensitive, population)
        risk = assessed.as_dict()
        suppressed = len(plan.suppressed | again | left_out)
        risk["suppressed_persons"] = suppressed
        risk["suppressed_share"] = (
            suppressed / (len(kept) + suppressed) if kept or suppressed else 0.0
        )
        risk["rare_values"] = rare_values
        generalisation = {
            c: described(op, level)
            for c, op, level in zip(quasi_identifiers, operators, levels, strict=False)
        }
        meta = output.with_name(output.name + ".meta.json")
        metadata = {
            "release": release_id,
            "purpose": access.purpose.name,
            "quasi_identifiers": list(quasi_identifiers),
            "sensitive": list(sensitive),
            "promoted_to_quasi_identifiers": promoted,
            "redacted_text": texts,
            "rows": "one per person; several values of a column as a sorted set joined by "
            f"{SET_SEPARATOR!r}",
            "k": plan.k,
            "l": plan.l,
            "t": max(assessed.t_closeness.values(), default=0.0),
            "k_asked": k,
            "l_asked": l_div,
            "t_asked": t,
            "override_reason": reason,
            "reference_date": reference.isoformat(),
            "ages": f"at the reference date, {AGE_TOP} and over as {AGE_TOP}+",
            "pseudonyms": "linkable per purpose" if linkable else "per release",
            "generalisation": generalisation,
            "rare_values": rare_values,
            "top_coded": top_coded,
            "persons": len(kept),
            "suppressed_persons": suppressed,
            "held_back_persons": len(held),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        # Registered before the files are written (a failed write leaves a release registered,
        # which only constrains the purpose's next release: fail closed), and audited (when the
        # session closes) whatever part of the files was written.
        with app.store.write() as conn:
            register.add(
                conn,
                _register_entry(
                    release_id,
                    access.purpose.name,
                    actor,
                    quasi_identifiers,
                    sensitive,
                    zip(operators, levels, strict=False),
                    reference,
                    persons=kept,
                    linkable=linkable,
                    k=plan.k,
                    l_div=plan.l,
                    suppressed=plan.suppressed | suppressed_before | left_out,
                ),
            )
        session.handed_all(
            sorted(kept),
            fields,
            refused=len(refused),
            detail={**asked, "release": release_id, "pseudonyms": metadata["pseudonyms"]},
        )
        _write(output, ["person", *columns, *texts], out_rows)
        write_private(meta, orjson.dumps(metadata, option=orjson.OPT_INDENT_2).decode() + "\n")
        write_private(
            output.with_name(output.name + ".risk.json"),
            orjson.dumps({"release": release_id, **risk}, option=orjson.OPT_INDENT_2).decode()
            + "\n",
        )
        return ReleaseReport(
            file=str(output),
            purpose=access.purpose.name,
            rows=len(out_rows),
            persons=len(kept),
            suppressed_persons=suppressed,
            refused_persons=len(refused),
            k=plan.k,
            l=plan.l,
            generalisation=generalisation,
            metadata=str(meta),
            release_id=release_id,
            reference_date=reference.isoformat(),
            pseudonyms=str(metadata["pseudonyms"]),
            override_reason=reason,
            held_back=len(held),
            risk=risk,
            t=t,
            promoted=promoted,
            redacted_text=texts,
            rare_values=rare_values,
            top_coded=top_coded,
        )


def _register_entry(
    release_id: str,
    purpose: str,
    actor: str,
    quasi_identifiers: Sequence[str],
    sensitive: Sequence[str],
    generalised: Iterable[tuple[Operator, int]],
    reference: date,
    *,
    persons: Iterable[str],
    linkable: bool = False,
    k: int = 0,
    l_div: int = 0,
    suppressed: Iterable[str] = (),
    kind: str = "rows",
    epsilon: float | None = None,
) -> register.Entry:
    """The register's entry of a release (rows or aggregate) made now: per quasi-identifier,
    in order, the operator and level it was ``generalised`` with and what that shows."""
    return register.Entry(
        id=release_id,
        purpose=purpose,
        created_at=datetime.now(UTC),
        actor=actor,
        linkable=linkable,
        quasi_identifiers=tuple(quasi_identifiers),
        sensitive=tuple(sensitive),
        generalisation={
            c: {"operator": op.name, "level": level, "shown": described(op, level)}
            for c, (op, level) in zip(quasi_identifiers, generalised, strict=False)
        },
        k=k,
        l=l_div,
        reference_date=reference.isoformat(),
        persons=frozenset(persons),
        suppressed=frozenset(suppressed),
        kind=kind,
        epsilon=epsilon,
    )


def described(operator: Operator, level: int) -> str:
    """What a column generalised by ``operator`` at ``level`` shows, as a release states it."""
    return f"{operator.name}: {operator.describe(level)}"


def releases(app: Custos, purpose: str | None = None) -> list[dict[str, Any]]:
    """The release register (of one purpose), oldest first: counts only, no person ids; each
    with the ε its purpose's aggregate releases had spent after it and had left of the budget."""
    with app.store.read() as conn:
        listed = [e.summary() for e in register.entries(conn, purpose, kind=None)]
    budget, spent = app.settings.release_epsilon_budget, dict[str, float]()
    for entry in listed:
        total = spent[entry["purpose"]] = spent.get(entry["purpose"], 0.0) + (entry["epsilon"] or 0)
        entry["epsilon_spent"], entry["epsilon_left"] = total, max(0.0, budget - total)
    return listed


def _combined(earlier: Sequence[register.Entry]) -> list[register.Entry]:
    """The earlier releases a new release of the purpose is checked with, as if joined: all of
    them, linkable or not. Per-release pseudonyms stop a join on the pseudonym, not an attacker
    who knows a target's quasi-identifiers: the target's group in each release bounds their
    sensitive value, and the intersection of those bounds (``-q age`` then ``-q postcode``: one
    exact age and one exact postcode) can leave one value. That intersection holds no fewer
    persons and values than the target's group in the releases joined, so k and l on the joined
    view bound it, whatever the pseudonyms."""
    return list(earlier)


def _joined_columns(
    joined: Sequence[register.Entry], sensitive: Sequence[str]
) -> list[tuple[str, str]]:
    """The columns of the combined view that earlier releases let out: (column, the release's
    reference date where the column is derived from it, else ""). An age at another reference
    date is a column of its own: ages at two dates bound the birth date between them."""
    return sorted(
        {
            (c, e.reference_date if c in DERIVED else "")
            for e in joined
            for c in e.quasi_identifiers
            if c not in sensitive
        }
    )


def _shows(entry: register.Entry, column: str, at: str) -> bool:
    """Whether ``entry`` let ``column`` out (at reference date ``at``, when given)."""
    return column in entry.generalisation and (not at or entry.reference_date == at)


def _same_operators(
    earlier: Sequence[register.Entry], columns: Sequence[str], chosen: dict[str, str]
) -> dict[str, str]:
    """The operator per column: one released before keeps the operator it was released with
    (its levels are only comparable on the same ladder)."""
    out = dict(chosen)
    for entry in earlier:
        for column, how in entry.generalisation.items():
            if column not in columns:
                continue
            before = str(how["operator"])
            if out.setdefault(column, before) != before:
                raise ConfigError(
                    f"{column} was released for purpose {entry.purpose} with the {before} "
                    f"operator (release {entry.id}); another operator could release it finer",
                    hint=f"use --generalise {column}={before}, or leave --generalise {column} out",
                )
    return out


def _history(
    earlier: Sequence[register.Entry], quasi_identifiers: Sequence[str], sensitive: Sequence[str]
) -> tuple[set[str], register.Entry | None]:
    """Persons suppressed by an earlier release that shares a quasi-identifier with this one
    (they stay out: released here, a finer view of that column would single them out), and the
    last release of the same columns (differencing is checked against it)."""
    suppressed: set[str] = set()
    last = None
    for entry in earlier:
        if set(entry.quasi_identifiers) & set(quasi_identifiers):
            suppressed |= entry.suppressed
        if set(entry.quasi_identifiers) == set(quasi_identifiers) and set(entry.sensitive) == set(
            sensitive
        ):
            last = entry
    return suppressed, last


def _check_difference(kept: set[str], last: register.Entry, k: int) -> None:
    """Refuse a release whose persons differ from the last release of the same columns by fewer
    than k persons (the difference of the two files is those persons' rows)."""
    added, removed = len(kept - last.persons), len(last.persons - kept)
    if 0 < added < k or 0 < removed < k:
        raise Refused(
            f"this release differs from release {last.id} of the same columns by {added} "
            f"person(s) added and {removed} left out: fewer than k={k}, so comparing the two "
            "would single them out",
            [f"added: {added}", f"left out: {removed}"],
            counts={"added": added, "left_out": removed, "previous_persons": len(last.persons)},
            hint="wait until at least k persons have joined (newcomers are held back until then) "
            "or left, or release other columns",
        )


def _check_minimum(k: int, l_div: int, t: float, override_reason: str | None) -> str | None:
    """The override's reason, required (and only kept) when k or l is below the minimum or t
    above the maximum."""
    reason = (override_reason or "").strip() or None
    if not 0.0 < t <= 1.0:
        raise ConfigError("--t is a distance between distributions: above 0, at most 1")
    below = k < MIN_K or l_div < MIN_L or t > MAX_T
    if below and reason is None:
        raise ConfigError(
            f"k={k}, l={l_div}, t={t} is below the minimum for a de-identified release "
            f"(k >= {MIN_K}, l >= {MIN_L}, t <= {MAX_T})",
            hint=f"use --k {MIN_K} --l {MIN_L} --t {MAX_T} or stricter, or give --override-reason "
            '"why" (audited and written into the release\'s metadata)',
        )
    return reason if below else None


def _check_released(columns: Sequence[str], instead: str) -> None:
    """Refuse a direct identifier among the columns of a release (``instead``: what to do),
    and a column named twice."""
    direct = sorted(set(columns) & DIRECT_IDENTIFIERS)
    if direct:
        raise ConfigError(
            f"direct identifiers are never released: {', '.join(direct)}", hint=instead
        )
    if len(set(columns)) != len(columns):
        raise ConfigError("a column is named twice (as quasi-identifier and sensitive)")


def _check_columns(quasi_identifiers: Sequence[str], sensitive: Sequence[str]) -> None:
    if not quasi_identifiers or not sensitive:
        raise ConfigError(
            "a release needs quasi-identifiers and at least one sensitive column",
            hint="e.g. --quasi-identifiers age,sex,postcode --sensitive finding",
        )
    _check_released(
        [*quasi_identifiers, *sensitive],
        "each person appears as a pseudonym (column person); leave these out",
    )
    if "date_of_birth" in sensitive:
        raise ConfigError(
            "date_of_birth is never released as a sensitive column (it is released verbatim and "
            "identifies almost everyone with the other columns)",
            hint="give age as a quasi-identifier instead: -q age,...",
        )


def _kinds(
    access: Access,
    seen: dict[str, set[str | None]],
    distinct: dict[str, set[str]],
    redact_text: bool,
) -> dict[str, str]:
    """What each column is, from the taxonomy and its values: ``quasi`` (identity, location,
    demographics), ``date`` (every value a date: a quasi-identifier never finer than its month),
    ``text`` (free text, released redacted only with ``redact_text``) or ``sensitive``. Refuses
    direct identifiers, and free text without ``redact_text``."""
    hint = "leave it out of --quasi-identifiers and --sensitive"
    kinds: dict[str, str] = {}
    for column, sources in seen.items():
        name = DERIVED.get(column, column)
        categories = {access.category(name, where) for where in sorted(sources, key=str)}
        values = distinct.get(column, set())
        prose = sum(reads_as_prose(v) for v in values)
        text = name in FREE_TEXT or "free_text" in categories
        for category in sorted(categories):
            kind = "free text" if text else NEVER_RELEASED.get(category)
            if kind == "free text" and redact_text:
                continue
            if kind is not None:
                raise ConfigError(
                    f"{column} is never released: the taxonomy classifies it as {kind} "
                    f"(category {category})",
                    hint=hint + (", or give --redact-text" if kind == "free text" else ""),
                )
        if not text and prose and prose * PROSE_SHARE >= len(values):
            if not redact_text:
                raise ConfigError(
                    f"{column} is never released: {prose} of its {len(values)} distinct values "
                    f"read as free text (more than {PROSE_WORDS} words)",
                    hint=hint + ", tag a coded column instead, or give --redact-text",
                )
            text = True
        if text:
            kinds[column] = "text"
        elif column not in DERIVED and Dates.accepts(column, sorted(values)):
            kinds[column] = "date"
        elif categories & QUASI_CATEGORIES:
            kinds[column] = "quasi"
        else:
            kinds[column] = "sensitive"
    return kinds


def _classify(
    quasi_identifiers: Sequence[str], sensitive: Sequence[str], kinds: dict[str, str]
) -> tuple[list[str], list[str], list[str]]:
    """(quasi-identifiers, sensitive columns, free-text columns) as the taxonomy decides: a
    column named sensitive that is a quasi-identifier (an identity, location or demographic
    column, or a date) is released as one, generalised and checked, never verbatim."""
    texts = [c for c in quasi_identifiers if kinds.get(c) == "text"]
    if texts:
        raise ConfigError(
            f"{', '.join(texts)} is free text: it cannot be a quasi-identifier",
            hint="leave it out, or name it under --sensitive with --redact-text",
        )
    promoted = [c for c in sensitive if kinds.get(c) in ("quasi", "date")]
    kept = [c for c in sensitive if kinds.get(c, "sensitive") == "sensitive"]
    if not kept:
        raise ConfigError(
            "no sensitive column left: the taxonomy makes "
            + (", ".join(promoted) or "every column named")
            + " a quasi-identifier or free text (never released verbatim)",
            hint="name a coded sensitive column, e.g. --sensitive condition",
        )
    return (
        [*quasi_identifiers, *promoted],
        kept,
        [c for c in sensitive if kinds.get(c) == "text"],
    )


def _recode_rare(
    extract: list[Row], sensitive: Sequence[str], k: int
) -> tuple[list[Row], dict[str, dict[str, Any]], set[str]]:
    """Sensitive values that fewer than k persons hold, recoded to :data:`RARE_VALUE` (or left
    out, with the persons who hold nothing else, when fewer than k persons hold them all): the
    one patient with a rare condition is otherwise found by it. Returns the rows, what was done
    per column (counts only) and the persons left out."""
    report: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(sensitive):
        holders: dict[str, set[str]] = {}
        for row in extract:
            holders.setdefault(row.sensitive[i], set()).add(row.person)
        rare = {v for v, persons in holders.items() if len(persons) < k}
        if not rare:
            continue
        persons = set().union(*(holders[v] for v in rare))
        common = [r for r in extract if r.sensitive[i] not in rare]
        # Too few for even "other" to hide them: left out, unless nothing would be left (every
        # value rare: the search refuses the release, with counts).
        recoded = len(persons) >= k or not common
        report[name] = {
            "values": len(rare),
            "persons": len(persons),
            "as": RARE_VALUE if recoded else "left out",
        }
        extract = (
            [
                replace(r, sensitive=(*r.sensitive[:i], RARE_VALUE, *r.sensitive[i + 1 :]))
                if r.sensitive[i] in rare
                else r
                for r in extract
            ]
            if recoded
            else common
        )
    before = {r.person for r in extract}
    return extract, report, before - {r.person for r in extract}


def _top_code(
    extract: list[Row], quasi_identifiers: Sequence[str], chosen: dict[str, str], k: int
) -> tuple[list[Row], dict[str, str]]:
    """Count columns (whole numbers generalised in bands; ages have their own 90+) top-coded at
    the value that at least k persons reach: ``N+`` for every value from N (a person with 41
    visits is otherwise the one with 41)."""
    top_coded: dict[str, str] = {}
    for i, column in enumerate(quasi_identifiers):
        values = sorted({str(v) for r in extract if (v := r.qi[i]) is not None})
        if column in DERIVED or not values or not all(v.isdigit() for v in values):
            continue
        if operator_for(column, values, chosen.get(column)).name != "bands":
            continue
        highest: dict[str, int] = {}
        for row in extract:
            if row.qi[i] is not None:
                highest[row.person] = max(highest.get(row.person, 0), int(str(row.qi[i])))
        ranked = sorted(highest.values(), reverse=True)
        if len(ranked) < k or ranked[0] == ranked[k - 1]:
            continue
        top = ranked[k - 1]
        top_coded[column] = f"{top}+"
        extract = [
            replace(r, qi=(*r.qi[:i], f"{top}+", *r.qi[i + 1 :]))
            if r.qi[i] is not None and int(str(r.qi[i])) >= top
            else r
            for r in extract
        ]
    return extract, top_coded


def _redacted(
    rows: Sequence[tuple[str, dict[str, str | None]]], texts: Sequence[str], kept: set[str]
) -> dict[str, list[set[str]]]:
    """person → per free-text column, the PII engine's redacted form of their texts."""
    if not texts:
        return {}
    from custos.service.pii import filter_text

    memo: dict[str, str] = {}
    out: dict[str, list[set[str]]] = {}
    for pid, values in rows:
        if pid not in kept:
            continue
        held = out.setdefault(pid, [set() for _ in texts])
        for i, column in enumerate(texts):
            text = values.get(column)
            if text:
                if text not in memo:
                    memo[text] = filter_text(text, None)[0]
                held[i].add(memo[text])
    return out


def _one_row_per_person(
    persons: Sequence[Row],
    redacted: dict[str, list[set[str]]],
    texts: Sequence[str],
    name: Any,
) -> list[tuple[str, ...]]:
    """One row per person, sorted by pseudonym (``name`` of a person id): each column's values
    over their rows as a sorted set, so how many rows a person had does not single them out."""
    held: dict[str, list[set[str]]] = {}
    for row in persons:
        values = (*(str(v) for v in row.qi), *row.sensitive)
        sets = held.setdefault(row.person, [set() for _ in values])
        for found, value in zip(sets, values, strict=True):
            found.add(value)
    return sorted(
        (
            name(person),
            *(SET_SEPARATOR.join(sorted(v)) for v in sets),
            *(SET_SEPARATOR.join(sorted(v)) for v in redacted.get(person, [set()] * len(texts))),
        )
        for person, sets in held.items()
    )


def _age(born: str | None, reference: date) -> str | None:
    """The ``age`` column: whole years at the reference date, top-coded at :data:`AGE_TOP`."""
    years = years_old(born, reference)
    if years is None:
        return None
    return f"{AGE_TOP}+" if years >= AGE_TOP else str(years)


def _rows(
    conn: Connection,
    access: Access,
    columns: Sequence[str],
    source: str | None,
    reference: date,
    redact_text: bool = False,
) -> tuple[list[tuple[str, dict[str, str | None]]], set[str], dict[str, str]]:
    """(person, column → value) of the rows the purpose may use, the persons refused, and what
    each column is (:func:`_kinds`)."""
    wanted = {DERIVED.get(c, c) for c in columns}
    members, sources = t.profile_members, t.sources
    found: list[tuple[str, str, dict[str, Any]]] = []
    for table in (t.records, t.interactions):
        names = [c for c in wanted if c in table.c]
        query = (
            select(
                members.c.profile_id, sources.c.name, table.c.extra, *(table.c[n] for n in names)
            )
            .join(members, members.c.raw_id == table.c.raw_id)
            .join(sources, sources.c.id == table.c.source_id)
            .order_by(table.c.raw_id)
        )
        if source is not None:
            query = query.where(sources.c.name == source)
        for result in conn.execute(query):
            values = dict(zip(names, result[3:], strict=True))
            values.update(orjson.loads(result[2]) if result[2] else {})
            found.append((result[0], result[1], values))
    if source is not None and not found:
        raise InputError(f"source {source!r} has no rows in profiles", hint="check --source")
    golden = _person_values(conn, sorted({pid for pid, _, _ in found}), sorted(wanted))
    rules: dict[str, set[str]] = {c: set() for c in columns}
    origins: dict[str, set[str | None]] = {c: {None} for c in columns}
    distinct: dict[str, set[str]] = {c: set() for c in columns}
    out: list[tuple[str, dict[str, str | None]]] = []
    refused: set[str] = set()
    for pid, origin, values in found:
        row: dict[str, str | None] = {}
        usable = allowed = access.allowed(pid)
        for column in columns:
            name = DERIVED.get(column, column)
            value, where = values.get(name), origin
            if value in (None, "") and name in golden.get(pid, {}):
                value, where = golden[pid][name]
            if value in (None, ""):
                row[column] = None
                continue
            rules[column].add(access.rule(name, where))  # decided for everyone, allowed or not
            origins[column].add(where)
            if not allowed or not access.field_allowed(pid, name, where):
                usable = False
                continue
            text = str(value)
            distinct[column].add(text)
            row[column] = _age(text, reference) if column in DERIVED else text
        if usable:
            out.append((pid, row))
        else:
            refused.add(pid)
    kinds = _kinds(access, origins, distinct, redact_text)
    blocked = sorted(c for c, seen in rules.items() if seen == {"no"})
    if blocked:
        raise ConfigError(
            f"purpose {access.purpose.name} may not use {', '.join(blocked)} "
            f"(categories: {', '.join(access.category(DERIVED.get(c, c)) for c in blocked)})",
            hint="choose a purpose whose categories include them (see the taxonomy)",
        )
    return out, refused - {pid for pid, _ in out}, kinds


def _person_values(
    conn: Connection, pids: list[str], wanted: list[str]
) -> dict[str, dict[str, tuple[str, str]]]:
    """person → column → (value, source) from the golden record, else from the first of the
    person's records that has it: an extract's rows (visits) rarely repeat the person's data."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    documents = t.profile_golden
    members, records, sources = t.profile_members, t.records, t.sources
    names = [n for n in wanted if n in records.c]
    for chunk in Store.of(conn).chunks(pids):
        query = select(documents.c.profile_id, documents.c.document).where(
            documents.c.profile_id.in_(chunk)
        )
        for pid, document in conn.execute(query):
            golden = golden_store.values_with_source(document)
            out[pid] = {name: golden[name] for name in wanted if name in golden}
        held = (
            select(
                members.c.profile_id,
                sources.c.name,
                records.c.extra,
                *(records.c[n] for n in names),
            )
            .join(records, records.c.raw_id == members.c.raw_id)
            .join(sources, sources.c.id == records.c.source_id)
            .where(members.c.profile_id.in_(chunk))
            .order_by(records.c.raw_id)
        )
        for row in conn.execute(held):
            values = dict(zip(names, row[3:], strict=True))
            values.update(orjson.loads(row[2]) if row[2] else {})
            known = out.setdefault(row[0], {})
            for name in wanted:
                if name not in known and values.get(name) not in (None, ""):
                    known[name] = (str(values[name]), row[1])
    return out


def _write(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Write atomically, mode 0600: the release appears whole or not at all."""
    with private_file(path) as handle:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            for row in rows:
                handle.write(orjson.dumps(dict(zip(header, row, strict=True))).decode() + "\n")
        else:
            writer = csv_writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
