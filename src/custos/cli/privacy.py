"""Commands for privacy operations: data-subject requests (``dsr``) and de-identified releases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.table import Table

from custos.cli.common import AsJson, Key, app, err, guarded, open_custos, out, table_of
from custos.core.errors import ConfigError
from custos.ingest.readers import FILE_TYPES
from custos.privacy.deid import Refused
from custos.privacy.dsr.requests import Request
from custos.service import aggregate, dsr, release
from custos.service.aggregate import DEFAULT_EPSILON
from custos.service.dsr import RequestFailed

_Report = TypeVar("_Report")

dsr_app = typer.Typer(
    help="Data-subject requests (GDPR Art. 15-20): access, export, rectify, restrict, erase.",
    no_args_is_help=True,
)
app.add_typer(dsr_app, name="dsr")

Output = Annotated[
    Path, typer.Option("--output", "-o", help="Folder for the files (readable by you only).")
]


def _failed(run: Any) -> Any:
    """Run ``run()``; a failed step of a request (or a refused release) ends with exit 1."""
    try:
        return run()
    except (RequestFailed, Refused) as exc:
        err.print(
            f"[red]{'refused' if isinstance(exc, Refused) else 'failed'}:[/red] {exc.message}"
        )
        for line in getattr(exc, "failing", []):
            err.print(f"  {line}")
        if exc.hint:
            err.print(f"  fix: {exc.hint}")
        raise typer.Exit(1) from None


def _request(run: Any, as_json: bool = False) -> dict[str, Any]:
    """Run a request and print its state (exit 1 when a step failed, with how to resume)."""
    with open_custos() as custos:
        done: Request = guarded(lambda: _failed(lambda: run(custos)))
    shown = done.as_dict()
    if as_json:
        out.print_json(orjson.dumps(shown).decode())
    else:
        out.print(f"request {shown['request']} ({shown['kind']}) {shown['state']}")
        out.print(f"  found by: {_found_by(shown)}")
        for step in shown["steps"]:
            out.print(f"  {step['name']}: {step['state']}")
    return shown


def _request_writing(run: Any, as_json: bool) -> None:
    """Run a request that writes files (access, export); print its state and the files."""
    shown = _request(run, as_json)
    if not as_json:
        for name in shown["result"].get("files", []):
            out.print(f"wrote {name}")


def _found_by(shown: dict[str, Any]) -> str:
    """Which identifier found the person, in which sources (a line)."""
    found = shown["result"].get("found_by") or {}
    if found.get("by") in (None, "profile_id"):
        return "profile id"
    return f"{found['by']} in {', '.join(found['sources']) or 'no source'}"


@dsr_app.command("access")
def dsr_access(key: Key, output: Output = Path("."), as_json: AsJson = False) -> None:
    """Art. 15: everything held on the person and what is done with it, as JSON and HTML."""
    _request_writing(lambda c: dsr.access(c, key, output=output), as_json)


@dsr_app.command("export")
def dsr_export(key: Key, output: Output = Path("."), as_json: AsJson = False) -> None:
    """Art. 20: the data the person provided, machine-readable (JSON and CSV)."""
    _request_writing(lambda c: dsr.export(c, key, output=output), as_json)


@dsr_app.command("rectify")
def dsr_rectify(
    key: Key,
    attribute: Annotated[
        str, typer.Option("--attribute", "-a", help="The attribute, e.g. last_name or email.")
    ],
    value: Annotated[str, typer.Option("--value", help="The correct value.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the profile).")] = "",
    as_json: AsJson = False,
) -> None:
    """Art. 16: correct an attribute; the correction becomes its provenance."""
    _request(
        lambda c: dsr.rectify(c, key, attribute=attribute, value=value, reason=reason), as_json
    )


@dsr_app.command("restrict")
def dsr_restrict(
    key: Key,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the profile).")] = "",
    lift: Annotated[bool, typer.Option("--lift", help="Lift the restriction.")] = False,
    as_json: AsJson = False,
) -> None:
    """Art. 18: restrict processing (every purpose but legal obligation is refused), or lift it."""
    _request(lambda c: dsr.restrict(c, key, reason=reason, lift=lift), as_json)


@dsr_app.command("erase")
def dsr_erase(
    key: Key,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: AsJson = False,
) -> None:
    """Art. 17: delete the person everywhere, suppress their return, list who must be told."""
    if not yes and not typer.confirm("Erase this person from the store? This cannot be undone"):
        out.print("nothing erased")
        raise typer.Exit(1)
    shown = _request(lambda c: dsr.erase(c, key), as_json)
    if not as_json:
        _print_receipt(shown["result"].get("receipt", {}))


def _print_receipt(receipt: dict[str, Any]) -> None:
    if not receipt:
        return
    out.print(f"erased profile(s): {', '.join(receipt['profile_ids'])}")
    removed = ", ".join(f"{table} {n}" for table, n in sorted(receipt["removed"].items()))
    out.print(f"removed rows: {removed or 'none'}")
    suppressed = ", ".join(f"{kind} {n}" for kind, n in sorted(receipt["suppressed"].items()))
    out.print(f"suppression entries: {suppressed or 'none new'}")
    maybe = receipt.get("possible_interactions_erased") or []
    if maybe:
        out.print(f"interactions that may be theirs, erased too: {', '.join(maybe)}")
    readers = receipt["recipients_to_notify"]
    if readers:
        table = table_of(
            "recipients to notify (GDPR Art. 19)", "actor", "purposes", "reads", "last read"
        )
        for r in readers:
            table.add_row(r["actor"], ", ".join(r["purposes"]), str(r["reads"]), r["last"][:19])
        out.print(table)
    else:
        out.print("no one read this person's data: no recipients to notify")


@dsr_app.command("resume")
def dsr_resume(
    request: Annotated[str, typer.Argument(help="The request, e.g. dsr-12.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for the files.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Run a request again from the step that failed."""
    shown = _request(lambda c: dsr.resume(c, request, output=output), as_json)
    if not as_json:
        _print_receipt(shown["result"].get("receipt", {}))


@dsr_app.command("show")
def dsr_show(
    request: Annotated[str, typer.Argument(help="The request, e.g. dsr-12.")],
    as_json: AsJson = False,
) -> None:
    """A request: its state, each step, and its result (files, erasure receipt)."""
    with open_custos() as custos:
        shown = guarded(lambda: dsr.show(custos, request))
    if as_json:
        out.print_json(orjson.dumps(shown).decode())
        return
    out.print(
        f"request {shown['request']}: {shown['kind']} of {shown['profile_id']}, {shown['state']}"
    )
    out.print(f"  found by: {_found_by(shown)}")
    for step in shown["steps"]:
        detail = orjson.dumps(step["detail"]).decode()
        out.print(f"  {step['name']}: {step['state']} {(step['at'] or '')[:19]} {detail}")
    _print_receipt(shown["result"].get("receipt", {}))


@dsr_app.command("list")
def dsr_list(
    key: Annotated[
        str | None, typer.Argument(help="Only requests about this person (id, e-mail, phone).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 50,
    as_json: AsJson = False,
) -> None:
    """Data-subject requests, newest first."""
    with open_custos() as custos:
        found = guarded(lambda: dsr.listing(custos, key=key, limit=limit))
    if as_json:
        out.print_json(orjson.dumps(found).decode())
        return
    table = table_of(
        "data-subject requests (newest first)",
        "request",
        "kind",
        "profile",
        "state",
        "created",
        "actor",
    )
    for r in found:
        table.add_row(
            r["request"], r["kind"], r["profile_id"], r["state"], r["created_at"][:19], r["actor"]
        )
    out.print(table)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


release_app = typer.Typer(
    help="De-identified releases (custos release -p P -q ... -s ... -o FILE) and their register "
    "(custos release list)."
)
app.add_typer(release_app, name="release")


@release_app.callback(invoke_without_command=True)
def release_command(
    ctx: typer.Context,
    purpose: Annotated[
        str | None, typer.Option("--purpose", "-p", help="Why the data is released (required).")
    ] = None,
    quasi_identifiers: Annotated[
        str | None,
        typer.Option(
            "--quasi-identifiers",
            "-q",
            help="Comma-separated columns, e.g. age,sex,postcode (required).",
        ),
    ] = None,
    sensitive: Annotated[
        str | None,
        typer.Option("--sensitive", "-s", help="Comma-separated sensitive columns (required)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file, .csv or .jsonl (required).")
    ] = None,
    k: Annotated[int, typer.Option("--k", help="Persons per group, at least.")] = 5,
    l_div: Annotated[int, typer.Option("--l", help="Per-person l-diversity, at least.")] = 2,
    t: Annotated[
        float,
        typer.Option("--t", help="t-closeness: a group's sensitive values within this distance."),
    ] = release.MAX_T,
    redact_text: Annotated[
        bool,
        typer.Option(
            "--redact-text",
            help="Release free-text columns named under -s redacted by the PII engine.",
        ),
    ] = False,
    source: Annotated[
        str | None, typer.Option("--source", help="Only the rows of this source.")
    ] = None,
    max_suppression: Annotated[
        float,
        typer.Option("--max-suppression", help="Share of persons that may be left out (0-1)."),
    ] = 0.05,
    generalise: Annotated[
        list[str] | None,
        typer.Option(
            "--generalise",
            help="COLUMN=OPERATOR (bands, prefix, dates, categorical); repeatable.",
        ),
    ] = None,
    reference_date: Annotated[
        str | None,
        typer.Option(
            "--reference-date",
            help="Ages are computed at this date (YYYY-MM-DD; default: 1 January this year).",
        ),
    ] = None,
    linkable: Annotated[
        bool,
        typer.Option(
            "--linkable",
            help="Keep each person's pseudonym across this purpose's releases (longitudinal).",
        ),
    ] = False,
    override_reason: Annotated[
        str | None,
        typer.Option(
            "--override-reason",
            help="Why k < 5, l < 2 or t > 0.5 is needed (audited, in the metadata).",
        ),
    ] = None,
    aggregate: Annotated[
        bool,
        typer.Option(
            "--aggregate",
            help="Counts of persons per group (of -q, crossed with -s) with differential-privacy "
            "noise, instead of rows.",
        ),
    ] = False,
    epsilon: Annotated[
        float,
        typer.Option(
            "--epsilon", help="With --aggregate: the ε this release spends of the purpose's budget."
        ),
    ] = DEFAULT_EPSILON,
    level: Annotated[
        list[str] | None,
        typer.Option(
            "--level",
            help="With --aggregate: COLUMN=N, the column's generalisation level (0: exact).",
        ),
    ] = None,
    per_person: Annotated[
        int,
        typer.Option(
            "--per-person",
            help="With --aggregate: the most groups one person counts in (the sensitivity).",
        ),
    ] = 1,
    as_json: AsJson = False,
) -> None:
    """Write a de-identified extract: pseudonyms, generalised quasi-identifiers, k-anonymous and
    l-diverse per person, and FILE.meta.json beside it; refused (exit 1, with counts only, never
    a group's values) when it cannot be, alone or with the purpose's earlier releases. With
    --aggregate: noisy counts per group, refused when the purpose's ε budget would be exceeded."""
    if ctx.invoked_subcommand is not None:
        return
    given: dict[str, object] = {"--purpose": purpose, "--quasi-identifiers": quasi_identifiers}
    given |= {"--output": output} if aggregate else {"--sensitive": sensitive, "--output": output}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise typer.BadParameter(
            f"a release needs {', '.join(missing)} (or: custos release list)", ctx=ctx
        )
    assert purpose and quasi_identifiers and output
    chosen = dict(item.split("=", 1) for item in generalise or [] if "=" in item)
    if aggregate:
        if linkable or override_reason:
            raise typer.BadParameter(
                "--linkable and --override-reason are for row releases, not --aggregate", ctx=ctx
            )
        asked = _AggregateAsked(epsilon, _levels(level or [], ctx), per_person)
        _aggregate(
            purpose,
            quasi_identifiers,
            sensitive,
            output,
            source,
            chosen,
            reference_date,
            asked,
            as_json,
        )
        return
    assert sensitive

    report = _written(
        lambda custos: release.release(
            custos,
            purpose=purpose,
            quasi_identifiers=_names(quasi_identifiers),
            sensitive=_names(sensitive),
            k=k,
            l_div=l_div,
            output=output,
            source=source,
            max_suppression=max_suppression,
            generalise=chosen,
            reference_date=_date(reference_date),
            linkable=linkable,
            override_reason=override_reason,
            t=t,
            redact_text=redact_text,
        ),
        as_json,
    )
    if report is None:
        return
    out.print(
        f"wrote {report.file}: {report.rows} rows of {report.persons} persons, "
        f"k={report.k}, l={report.l} (per person); {report.suppressed_persons} suppressed, "
        f"{report.refused_persons} refused by the guard"
    )
    for column, how in report.generalisation.items():
        out.print(f"  {column}: {how}")
    if report.promoted:
        out.print(
            f"  released as quasi-identifiers (the taxonomy's, never verbatim): "
            f"{', '.join(report.promoted)}"
        )
    if report.redacted_text:
        out.print(f"  free text redacted by the PII engine: {', '.join(report.redacted_text)}")
    for column, rare in report.rare_values.items():
        out.print(
            f"  {column}: {rare['values']} value(s) held by fewer than {k} persons "
            f"({rare['persons']} person(s)) released as {rare['as']}"
        )
    for column, top in report.top_coded.items():
        out.print(f"  {column}: top-coded at {top}")
    out.print(
        f"  pseudonyms: {report.pseudonyms}; ages at {report.reference_date}; "
        f"metadata: {report.metadata}"
    )
    if report.override_reason:
        out.print(f"  minimum k/l overridden: {report.override_reason}")
    if report.held_back:
        out.print(
            f"  {report.held_back} person(s) new since the last release of these columns held "
            f"back until {k} have joined"
        )

    _print_risk(report.risk)


def _date(text: str | None) -> date | None:
    """``--reference-date``, checked."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise ConfigError(
            f"--reference-date {text!r} is not a date", hint="give YYYY-MM-DD"
        ) from None


@dataclass(frozen=True)
class _AggregateAsked:
    epsilon: float
    levels: dict[str, int]
    per_person: int


def _levels(items: list[str], ctx: typer.Context) -> dict[str, int]:
    """``--level COLUMN=N`` options as column → level."""
    out = {}
    for item in items:
        column, _, number = item.partition("=")
        if not number.strip().isdigit():
            raise typer.BadParameter(f"--level {item!r}: give COLUMN=N, e.g. age=2", ctx=ctx)
        out[column.strip()] = int(number)
    return out


def _written(make: Callable[[Any], _Report], as_json: bool) -> _Report | None:
    """Write a release with ``make(custos)``. A refusal ends with exit 1 (with ``--json``, the
    refusal as JSON: reason, failing groups and counts only); with ``--json`` the report is
    printed as JSON and None returned, else the report is returned for the caller to print."""

    def run(custos: Any) -> _Report:
        try:
            return make(custos)
        except Refused as exc:
            if not as_json:
                raise
            refusal = {"refused": True, "reason": exc.message, "failing": exc.failing}
            out.print_json(orjson.dumps({**refusal, "counts": exc.counts}).decode())
            raise typer.Exit(1) from None

    with open_custos() as custos:
        report: _Report = guarded(lambda: _failed(lambda: run(custos)))
    if as_json:
        out.print_json(orjson.dumps(report.__dict__).decode())
        return None
    return report


def _aggregate(
    purpose: str,
    quasi_identifiers: str,
    sensitive: str | None,
    output: Path,
    source: str | None,
    generalise: dict[str, str],
    reference_date: str | None,
    asked: _AggregateAsked,
    as_json: bool,
) -> None:
    """``custos release --aggregate``: noisy counts, or a refusal (exit 1; JSON with --json)."""

    report = _written(
        lambda custos: aggregate.aggregate(
            custos,
            purpose=purpose,
            quasi_identifiers=_names(quasi_identifiers),
            sensitive=_names(sensitive or ""),
            output=output,
            epsilon=asked.epsilon,
            levels=asked.levels,
            generalise=generalise,
            source=source,
            reference_date=_date(reference_date),
            per_person=asked.per_person,
        ),
        as_json,
    )
    if report is None:
        return
    out.print(
        f"wrote {report.file}: {report.groups} groups, noisy counts of persons "
        f"(ε={report.epsilon:g}, {report.noise['mechanism']}, sensitivity "
        f"{report.noise['sensitivity']}); groups below {report.noise['threshold']} not listed"
    )
    for column, how in report.generalisation.items():
        out.print(f"  {column}: {how}")
    out.print(
        f"  budget of {report.purpose}: ε {report.epsilon_spent:g} spent of "
        f"{report.epsilon_budget:g}, {report.epsilon_left:g} left; metadata: {report.metadata}"
    )


@release_app.command("list")
def release_list(
    purpose: Annotated[
        str | None, typer.Option("--purpose", "-p", help="Only this purpose's releases.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The release register: each release written, its columns, generalisation, k, l and how
    many persons it released and suppressed (counts only, never a person's id)."""
    with open_custos() as custos:
        listed = guarded(lambda: release.releases(custos, purpose))
    if as_json:
        out.print_json(orjson.dumps(listed).decode())
        return
    table = Table("release", "purpose", "created", "columns", "generalisation", "k", "l")
    table.add_column("persons")
    table.add_column("suppressed")
    table.add_column("pseudonyms")
    table.add_column("ε (spent / left)")
    left: dict[str, str] = {}
    for entry in listed:
        counts = entry["kind"] == "aggregate"
        spent = f"{entry['epsilon_spent']:g} / {entry['epsilon_left']:g}"
        left[entry["purpose"]] = spent
        table.add_row(
            entry["release"],
            entry["purpose"],
            entry["created_at"],
            ("--aggregate " if counts else "")
            + f"-q {','.join(entry['quasi_identifiers'])}"
            + (f" -s {','.join(entry['sensitive'])}" if entry["sensitive"] else ""),
            "; ".join(f"{c}: {how}" for c, how in entry["generalisation"].items()),
            "-" if counts else str(entry["k"]),
            "-" if counts else str(entry["l"]),
            str(entry["persons"]),
            str(entry["suppressed_persons"]),
            "noisy counts" if counts else entry["pseudonyms"],
            f"{entry['epsilon']:g}: {spent}" if counts else "",
        )
    out.print(table)
    for name, spent in left.items():
        out.print(f"privacy budget of {name}: ε spent / left {spent}")


def _print_risk(risk: dict[str, Any]) -> None:
    """The release's risk report (FILE.risk.json) as a small table."""
    table = Table("risk", "max", "mean", title="re-identification risk (per person)")
    table.add_row("prosecutor", f"{risk['prosecutor_max']:.1%}", f"{risk['prosecutor_mean']:.1%}")
    table.add_row("journalist", f"{risk['journalist_max']:.1%}", f"{risk['journalist_mean']:.1%}")
    table.add_row("marketer", "", f"{risk['marketer']:.1%}")
    table.add_row("unique combinations", "", f"{risk['unique_share']:.1%}")
    for column, t in risk["t_closeness"].items():
        table.add_row(f"t-closeness {column}", f"{t:.2f}", "")
    table.add_row("suppressed", str(risk["suppressed_persons"]), f"{risk['suppressed_share']:.1%}")
    out.print(table)


__all__ = ["dsr_app"]


pii_app = typer.Typer(help="Personal data in free text.", no_args_is_help=True)
app.add_typer(pii_app, name="pii")


@pii_app.command("scan")
def pii_scan(
    path: Annotated[Path | None, typer.Argument(help=f"A {FILE_TYPES} file to scan.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Scan a source's stored free text.")
    ] = None,
    column: Annotated[
        str | None,
        typer.Option(
            "--column",
            help="The file's free-text column (default: text, notes, comment, message, body).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Report personal data found in free text, per entity type; changes nothing."""
    from custos.service import pii as pii_service

    if (path is None) == (source is None):
        err.print("[red]error:[/red] give a FILE or --source NAME")
        raise typer.Exit(2)
    with open_custos() as custos:
        report = guarded(
            lambda: (
                pii_service.scan_file(path, text_column=column)
                if path is not None
                else pii_service.scan_source(custos, source or "")
            )
        )
    data = report.as_dict()
    if as_json:
        out.print_json(orjson.dumps(data).decode())
        return
    out.print(f"{data['texts']} text(s), {data['with_findings']} with personal data")
    table = Table(title="findings per entity type (no values shown)")
    table.add_column("entity type")
    table.add_column("findings", justify="right")
    for kind, count in data["findings"].items():
        table.add_row(kind, str(count))
    out.print(table)
