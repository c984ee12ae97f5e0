"""De-identified releases of tabular extracts (research): guarded read → pseudonymise →
generalise and suppress until k-anonymous and l-diverse per person → write, or refuse.

Rows are the records and interactions (optionally of one source) of the persons the purpose may
see; a column is taken from the row, else from the person's golden record; ``age`` is derived from
the date of birth at the release's reference date, top-coded at 90+. Direct identifiers and free
text never appear: each person is one keyed pseudonym, new in every release (so two releases
cannot be joined on it) unless the release is asked to be linkable (stable per purpose). Beside
the file, ``FILE.meta.json`` states how it was made and ``FILE.risk.json`` the risk that remains.

Each release written is kept in the register (:mod:`custos.store.releases`), and the next release
of the purpose is checked against it: a column released before is released at that level or
coarser; k and l hold on the combined view of every release of the purpose, as if joined (with
per-release pseudonyms too: groups still intersect on what an attacker knows of a target);
persons suppressed before stay out of releases that share a quasi-identifier with that one; and
a release of the same columns may not differ from the last by fewer than k persons.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, select

from custos.consent.guard import Access, Guard
from custos.core.errors import ConfigError, InputError
from custos.core.files import csv_writer, private_file, write_private
from custos.privacy.deid import Refused, Row, deidentify, pseudonym
from custos.privacy.deid.operators import operator_for
from custos.privacy.deid.risk import assess
from custos.service.dsr import secret_key
from custos.service.reads import record_access
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
PROSE_WORDS, PROSE_SHARE = 6, 20
#: Derived columns and the field whose category decides whether the purpose may use them.
DERIVED = {"age": "date_of_birth"}
#: Ages from here up are one group, ``90+`` (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)).
AGE_TOP = 90
#: The least k and l a release may ask for without an override (with a reason, audited).
MIN_K, MIN_L = 5, 2


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
) -> ReleaseReport:
    """Write a release of ``output`` (and ``output.meta.json``) that is k-anonymous and l-diverse
    per person, or raise :class:`custos.privacy.deid.Refused` with counts only (audited; nothing
    is written). ``linkable`` keeps one pseudonym per person and purpose across releases."""
    columns = [*quasi_identifiers, *sensitive]
    _check_columns(quasi_identifiers, sensitive)
    reason = _check_minimum(k, l_div, override_reason)
    if not 0.0 <= max_suppression <= 1.0:
        raise ConfigError("--max-suppression is a share of persons, between 0 and 1")
    reference = reference_date or date(datetime.now(UTC).year, 1, 1)
    guard = Guard(app.taxonomy)
    with app.store.read() as conn:
        access = guard.access(conn, purpose)
        earlier = register.entries(conn, access.purpose.name)
        # Each column an earlier release of the purpose let out, once more at the finest level
        # it was let out at: checked in the combined view, not released (see _combined).
        joined = _combined(earlier)
        extra = _joined_columns(joined, sensitive)
        born = sorted({DERIVED[c] for c, at in extra if at})  # ages at other reference dates
        wanted = [*columns, *(c for c in [*(c for c, _ in extra), *born] if c not in columns)]
        rows, refused = _rows(conn, access, wanted, source, reference)
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
    chosen = _same_operators(earlier, searched, generalise or {})
    suppressed_before, last = _history(earlier, quasi_identifiers, sensitive)
    held = {r.person for r in extract if r.person not in suppressed_before}
    held = held - last.persons if last is not None else set()
    if len(held) >= k:
        held = set()
    again = {r.person for r in extract} & suppressed_before  # suppressed again, see _history
    extract = [r for r in extract if r.person not in suppressed_before | held]
    operators = [
        operator_for(c, sorted({v for r in extract if (v := r.qi[i]) is not None}), chosen.get(c))
        for i, c in enumerate(searched)
    ]
    floors = [
        min((e.level(c) for e in joined if _shows(e, c, at)), default=0)
        for c, at in [*((c, "") for c in quasi_identifiers), *extra]
    ]
    fields = sorted({DERIVED.get(c, c) for c in columns})
    asked: dict[str, object] = {"columns": columns, "k": k, "l": l_div}
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
        )
        kept = {p for g in plan.kept for p in g.persons}
        if last is not None:
            _check_difference(kept, last, k)
    except Refused as exc:
        record_access(
            app,
            actor=actor,
            action="release_refused",
            purpose=access.purpose.name,
            subjects=(),
            fields=fields,
            refused=len(refused),
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
    out_rows = sorted((pseudonym(key, domain, r.person), *r.qi, *r.sensitive) for r in out_persons)
    risk = assess(out_persons, sensitive, population).as_dict()
    generalisation = {
        c: f"{op.name}: {op.describe(level)}"
        for c, op, level in zip(quasi_identifiers, operators, levels, strict=False)
    }
    meta = output.with_name(output.name + ".meta.json")
    metadata = {
        "release": release_id,
        "purpose": access.purpose.name,
        "quasi_identifiers": list(quasi_identifiers),
        "sensitive": list(sensitive),
        "k": plan.k,
        "l": plan.l,
        "k_asked": k,
        "l_asked": l_div,
        "override_reason": reason,
        "reference_date": reference.isoformat(),
        "ages": f"at the reference date, {AGE_TOP} and over as {AGE_TOP}+",
        "pseudonyms": "linkable per purpose" if linkable else "per release",
        "generalisation": generalisation,
        "persons": len(kept),
        "suppressed_persons": len(plan.suppressed | again),
        "held_back_persons": len(held),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write(output, ["person", *columns], out_rows)
    write_private(meta, orjson.dumps(metadata, option=orjson.OPT_INDENT_2).decode() + "\n")
    with app.store.write() as conn:
        register.add(
            conn,
            register.Entry(
                id=release_id,
                purpose=access.purpose.name,
                created_at=datetime.now(UTC),
                actor=actor,
                linkable=linkable,
                quasi_identifiers=tuple(quasi_identifiers),
                sensitive=tuple(sensitive),
                generalisation={
                    c: {"operator": op.name, "level": level, "shown": generalisation[c]}
                    for c, op, level in zip(quasi_identifiers, operators, levels, strict=False)
                },
                k=plan.k,
                l=plan.l,
                reference_date=reference.isoformat(),
                persons=frozenset(kept),
                suppressed=frozenset(plan.suppressed | suppressed_before),
            ),
        )
    write_private(
        output.with_name(output.name + ".risk.json"),
        orjson.dumps({"release": release_id, **risk}, option=orjson.OPT_INDENT_2).decode() + "\n",
    )
    record_access(
        app,
        actor=actor,
        action="release",
        purpose=access.purpose.name,
        subjects=sorted(kept),
        fields=fields,
        refused=len(refused),
        detail={**asked, "release": release_id, "pseudonyms": metadata["pseudonyms"]},
    )
    return ReleaseReport(
        file=str(output),
        purpose=access.purpose.name,
        rows=len(out_rows),
        persons=len(kept),
        suppressed_persons=len(plan.suppressed | again),
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
    )


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


def _check_minimum(k: int, l_div: int, override_reason: str | None) -> str | None:
    """The override's reason, required (and only kept) when k or l is below the minimum."""
    reason = (override_reason or "").strip() or None
    if (k < MIN_K or l_div < MIN_L) and reason is None:
        raise ConfigError(
            f"k={k}, l={l_div} is below the minimum for a de-identified release "
            f"(k >= {MIN_K}, l >= {MIN_L})",
            hint=f'use --k {MIN_K} --l {MIN_L} or more, or give --override-reason "why" '
            "(audited and written into the release's metadata)",
        )
    return reason if k < MIN_K or l_div < MIN_L else None


def _check_columns(quasi_identifiers: Sequence[str], sensitive: Sequence[str]) -> None:
    if not quasi_identifiers or not sensitive:
        raise ConfigError(
            "a release needs quasi-identifiers and at least one sensitive column",
            hint="e.g. --quasi-identifiers age,sex,postcode --sensitive finding",
        )
    columns = [*quasi_identifiers, *sensitive]
    direct = sorted(set(columns) & DIRECT_IDENTIFIERS)
    if direct:
        raise ConfigError(
            f"direct identifiers are never released: {', '.join(direct)}",
            hint="each person appears as a pseudonym (column person); leave these out",
        )
    if len(set(columns)) != len(columns):
        raise ConfigError("a column is named twice (as quasi-identifier and sensitive)")
    if "date_of_birth" in sensitive:
        raise ConfigError(
            "date_of_birth is never released as a sensitive column (it is released verbatim and "
            "identifies almost everyone with the other columns)",
            hint="give age as a quasi-identifier instead: -q age,...",
        )


def _check_categories(
    access: Access, seen: dict[str, set[str | None]], distinct: dict[str, set[str]]
) -> None:
    """Refuse columns the taxonomy classifies as direct identifiers or free text, and columns
    whose values read as prose whatever their tag."""
    hint = "leave it out of --quasi-identifiers and --sensitive"
    for column, sources in seen.items():
        name = DERIVED.get(column, column)
        for where in sorted(sources, key=str):
            category = access.category(name, where)
            kind = "free text" if name in FREE_TEXT else NEVER_RELEASED.get(category)
            if kind is not None:
                raise ConfigError(
                    f"{column} is never released: the taxonomy classifies it as {kind} "
                    f"(category {category})",
                    hint=hint,
                )
        values = distinct.get(column, set())
        prose = sum(len(v.split()) > PROSE_WORDS for v in values)
        if prose and prose * PROSE_SHARE >= len(values):
            raise ConfigError(
                f"{column} is never released: {prose} of its {len(values)} distinct values "
                f"read as free text (more than {PROSE_WORDS} words)",
                hint=hint + ", or tag a coded column instead",
            )


def _age(born: str | None, reference: date) -> str | None:
    if not born:
        return None
    try:
        birth = date.fromisoformat(born[:10])
    except ValueError:
        return None
    years = (
        reference.year - birth.year - ((reference.month, reference.day) < (birth.month, birth.day))
    )
    return f"{AGE_TOP}+" if years >= AGE_TOP else str(years)


def _rows(
    conn: Connection,
    access: Access,
    columns: Sequence[str],
    source: str | None,
    reference: date,
) -> tuple[list[tuple[str, dict[str, str | None]]], set[str]]:
    """(person, column → value) of the rows the purpose may use, and the persons refused."""
    wanted = {DERIVED.get(c, c) for c in columns}
    pm, src = t.profile_members, t.sources
    found: list[tuple[str, str, dict[str, Any]]] = []
    for table in (t.records, t.interactions):
        names = [c for c in wanted if c in table.c]
        query = (
            select(pm.c.profile_id, src.c.name, table.c.extra, *(table.c[n] for n in names))
            .join(pm, pm.c.raw_id == table.c.raw_id)
            .join(src, src.c.id == table.c.source_id)
            .order_by(table.c.raw_id)
        )
        if source is not None:
            query = query.where(src.c.name == source)
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
    _check_categories(access, origins, distinct)
    blocked = sorted(c for c, seen in rules.items() if seen == {"no"})
    if blocked:
        raise ConfigError(
            f"purpose {access.purpose.name} may not use {', '.join(blocked)} "
            f"(categories: {', '.join(access.category(DERIVED.get(c, c)) for c in blocked)})",
            hint="choose a purpose whose categories include them (see the taxonomy)",
        )
    return out, refused - {pid for pid, _ in out}


def _person_values(
    conn: Connection, pids: list[str], wanted: list[str]
) -> dict[str, dict[str, tuple[str, str]]]:
    """person → column → (value, source) from the golden record, else from the first of the
    person's records that has it: an extract's rows (visits) rarely repeat the person's data."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    pg, pm, r, src = t.profile_golden, t.profile_members, t.records, t.sources
    names = [n for n in wanted if n in r.c]
    for i in range(0, len(pids), 500):
        chunk = pids[i : i + 500]
        query = select(pg.c.profile_id, pg.c.document).where(pg.c.profile_id.in_(chunk))
        for pid, document in conn.execute(query):
            golden = golden_store.values_with_source(document)
            out[pid] = {name: golden[name] for name in wanted if name in golden}
        members = (
            select(pm.c.profile_id, src.c.name, r.c.extra, *(r.c[n] for n in names))
            .join(r, r.c.raw_id == pm.c.raw_id)
            .join(src, src.c.id == r.c.source_id)
            .where(pm.c.profile_id.in_(chunk))
            .order_by(r.c.raw_id)
        )
        for row in conn.execute(members):
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
