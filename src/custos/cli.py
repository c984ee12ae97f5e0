"""The ``custos`` command line: parse arguments, call :mod:`custos.service`, print.

The commands and their outputs are a contract other tools rely on; keep them stable.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from custos.core.errors import AccessDenied, CustosError
from custos.core.fields import GOLDEN_ATTRIBUTES, STRONG_IDENTIFIERS, Kind
from custos.core.settings import Settings
from custos.service import Custos
from custos.service.demo import run_demo

app = typer.Typer(
    help="custos — a consent-first customer data platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
export_app = typer.Typer(help="Export data for other systems.", no_args_is_help=True)
profile_app = typer.Typer(help="Look at unified customer profiles.", no_args_is_help=True)
quarantine_app = typer.Typer(
    help="Rows that could not be ingested, with the reason.", no_args_is_help=True
)
app.add_typer(export_app, name="export")
app.add_typer(profile_app, name="profile")
consent_app = typer.Typer(
    help="The consent ledger: show a person's state, record by hand.", no_args_is_help=True
)
audit_app = typer.Typer(help="The tamper-evident audit log of every access.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(consent_app, name="consent")
app.add_typer(audit_app, name="audit")

# Wide output when piped or captured, so that tables stay readable in files and logs.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)


class State:
    """Options given before the command."""

    db: str | None = None


state = State()


@app.callback()
def main_options(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="CUSTOS_DB",
            help="Store: a SQLite file (default ./custos.db) or a postgresql:// URL.",
        ),
    ] = None,
) -> None:
    """custos — unify customer data from silos into durable profiles, with consent."""
    state.db = db


@contextmanager
def _custos() -> Any:
    try:
        with Custos.open(state.db, Settings()) as custos:
            yield custos
    except CustosError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        if exc.hint:
            err.print(f"  fix: {exc.hint}")
        raise typer.Exit(2) from None


@app.command()
def init() -> None:
    """Create the store (or bring its schema up to date)."""
    with _custos() as custos:
        revision = custos.store.migrate()
        out.print(f"store ready: {custos.store.describe()} (schema {revision})")


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A .csv, .jsonl or .parquet file.")],
    source: Annotated[
        str, typer.Option("--source", "-s", help="Name of the silo the file comes from.")
    ],
    kind: Annotated[
        Kind | None,
        typer.Option(
            "--kind", "-k", help="What the rows are (default: the map file's, else records)."
        ),
    ] = None,
    map_path: Annotated[
        Path | None,
        typer.Option("--map", "-m", help="YAML map file: canonical field → source column."),
    ] = None,
) -> None:
    """Read a file into the store: normalise, deduplicate, quarantine bad rows."""
    with _custos() as custos, _progress(path.name) as progress:
        summary = custos.ingest(path, source, kind=kind, map_path=map_path, progress=progress)
    table = Table(title=f"{summary.file} → source {summary.source} ({summary.kind.value})")
    for name in ("read", "stored", "duplicates skipped", "quarantined"):
        table.add_column(name, justify="right")
    table.add_row(
        str(summary.read), str(summary.stored), str(summary.duplicates), str(summary.quarantined)
    )
    out.print(table)
    rate = summary.read / summary.seconds if summary.seconds else 0.0
    out.print(f"{summary.seconds:.1f} s, {rate:,.0f} rows/s")
    if summary.quarantined:
        out.print(
            f"{summary.quarantined} row(s) quarantined ({summary.quarantined_new} new): "
            "see `custos quarantine list`"
        )
    if summary.read == 0:
        out.print("the file holds no rows")
    if not summary.ok:
        err.print("[red]nothing could be stored from this file[/red]")
        raise typer.Exit(1)


@contextmanager
def _progress(label: str) -> Any:
    if not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command()
def resolve() -> None:
    """Build profiles from records and interactions by their identifiers (ids stay stable)."""
    with _custos() as custos:
        summary = custos.resolve()
    _print_resolve(summary)


def _print_resolve(summary: Any) -> None:
    out.print(
        f"profiles: {summary.profiles} ({summary.created} new, {summary.merged} merged into older ids), "
        f"from {summary.records} records and {summary.linked_interactions} of {summary.interactions} "
        f"interactions; {summary.multi_record_profiles} profiles join several records, "
        f"largest {summary.largest_profile}; {summary.edges} identifier links; {summary.seconds:.1f} s"
    )
    if summary.withheld_links:
        out.print(
            f"{summary.withheld_links} shared identifier(s) linked only the records of each person"
        )
    if summary.ignored:
        table = Table(title="identifiers ignored by guard rails (values not shown)")
        for name in ("identifier", "records", "persons", "why"):
            table.add_column(name)
        for item in summary.ignored[:20]:
            table.add_row(item.kind, str(item.records), str(item.persons or "-"), item.reason)
        out.print(table)
        if len(summary.ignored) > 20:
            out.print(f"… and {len(summary.ignored) - 20} more")


@export_app.command("xref")
def export_xref(
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or jsonl.")] = "csv",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default: standard output)."),
    ] = None,
) -> None:
    """One row per ingested record and interaction: source, record_id, profile_id."""
    if fmt not in ("csv", "jsonl"):
        err.print("[red]error:[/red] --format must be csv or jsonl")
        raise typer.Exit(2)
    with _custos() as custos:
        handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
        try:
            rows = 0
            if fmt == "csv":
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(("source", "record_id", "profile_id"))
                for row in custos.xref(actor="cli"):
                    writer.writerow(row)
                    rows += 1
            else:
                for source, record_id, profile_id in custos.xref(actor="cli"):
                    item = {"source": source, "record_id": record_id, "profile_id": profile_id}
                    handle.write(orjson.dumps(item).decode() + "\n")
                    rows += 1
        finally:
            if output:
                handle.close()
    if output:
        err.print(f"wrote {rows} rows to {output}")


@export_app.command("profiles")
def export_profiles(
    purpose: Annotated[
        str, typer.Option("--purpose", "-p", help="The purpose of the export (required).")
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv.")] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default: standard output)."),
    ] = None,
) -> None:
    """Profiles the purpose may see, with only the attributes and identifiers it may see."""
    if fmt not in ("csv", "jsonl"):
        err.print("[red]error:[/red] --format must be jsonl or csv")
        raise typer.Exit(2)
    with _custos() as custos:
        chosen = _guarded(lambda: custos.taxonomy.purpose(purpose))  # refuse before writing
        rows = custos.export_profiles(purpose)
        handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
        try:
            if fmt == "jsonl":
                count = sum(handle.write(orjson.dumps(item).decode() + "\n") > 0 for item in rows)
            else:
                count = _write_profiles_csv(handle, rows, chosen, custos)
        finally:
            if output:
                handle.close()
    if output:
        err.print(f"wrote {count} profiles to {output}")


def _write_profiles_csv(
    handle: Any, rows: Iterator[dict[str, Any]], purpose: Any, custos: Custos
) -> int:
    """CSV with a fixed header: the purpose's canonical attributes, the extra attributes it may
    see (tagged columns), and one column per identifier kind (values joined by ``|``)."""
    allowed = [a for a in GOLDEN_ATTRIBUTES if custos.taxonomy.category(a) in purpose.categories]
    kinds = [k for k in STRONG_IDENTIFIERS if custos.taxonomy.category(k) in purpose.categories]
    extras = sorted(
        column
        for tagged in custos.source_categories().values()
        for column, category in tagged.items()
        if category in purpose.categories and column not in allowed
    )
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["profile_id", *allowed, *extras, *(f"identifiers.{k}" for k in kinds)])
    count = 0
    for item in rows:
        ids = item.get("identifiers", {})
        writer.writerow(
            [item["profile_id"], *(item.get(a, "") for a in (*allowed, *extras))]
            + ["|".join(ids.get(k, [])) for k in kinds]
        )
        count += 1
    return count


@profile_app.command("show")
def profile_show(
    key: Annotated[str, typer.Argument(help="A profile id, an e-mail address or a phone number.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    purpose: Annotated[
        str | None,
        typer.Option(
            "--purpose", "-p", help="Why you read it (default: CUSTOS_PURPOSE, customer_service)."
        ),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Decide consent as of this date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Show one profile as the purpose may see it: golden record with provenance, identifiers,
    records, interactions."""
    with _custos() as custos:
        detail = _guarded(
            lambda: custos.profile(
                key, purpose=purpose or custos.settings.purpose, as_of=_date(as_of)
            )
        )
    if as_json:
        out.print_json(orjson.dumps(detail).decode())
        return
    _print_profile(detail)


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        err.print(f"[red]error:[/red] not a date: {text!r} (write YYYY-MM-DD or an ISO timestamp)")
        raise typer.Exit(2) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
        if len(text) == 10:  # a day: the state at its end
            when += timedelta(days=1) - timedelta(microseconds=1)
    return when


def _guarded(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except AccessDenied as exc:
        err.print(f"[red]refused:[/red] {exc.message}")
        if exc.hint:
            err.print(f"  why: {exc.hint}")
        raise typer.Exit(3) from None
    except CustosError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        if exc.hint:
            err.print(f"  fix: {exc.hint}")
        raise typer.Exit(2) from None


def _print_profile(detail: dict[str, Any]) -> None:
    out.print(
        f"purpose: {detail.get('purpose', '')} (fields this purpose may not use are not shown)"
    )
    out.print(
        f"[bold]profile {detail['profile_id']}[/bold]  ({detail['status']}, since {detail['created_at'][:10]})"
    )
    if detail["merged_ids"]:
        out.print(f"merged ids redirecting here: {', '.join(detail['merged_ids'])}")
    golden = Table(title="golden record")
    for name in ("attribute", "value", "source", "record", "observed", "rule"):
        golden.add_column(name)
    for g in detail["golden"]:
        golden.add_row(
            g["attribute"],
            g["value"],
            g["source"],
            g["record_id"],
            g["observed_at"][:10],
            g["rule"],
        )
    out.print(golden)
    for kind, values in detail["identifiers"].items():
        out.print(f"{kind}: {', '.join(values)}")
    records = Table(title=f"member records ({len(detail['records'])})")
    for name in ("source", "record", "name", "email", "phone"):
        records.add_column(name)
    for r in detail["records"]:
        records.add_row(
            r["source"],
            r["record_id"],
            r.get("full_name", ""),
            r.get("email", ""),
            r.get("phone", ""),
        )
    out.print(records)
    if detail["interactions"]:
        events = Table(title=f"interactions ({detail['interaction_count']}, newest first)")
        for name in ("when", "channel", "source", "record", "text"):
            events.add_column(name)
        for e in detail["interactions"]:
            text = e.get("text", "")
            events.add_row(
                e.get("timestamp", "")[:16],
                e.get("channel", ""),
                e["source"],
                e["record_id"],
                text if len(text) <= 80 else text[:77] + "…",
            )
        out.print(events)
    if detail["evidence"]:
        out.print(
            "linked by: "
            + "; ".join(
                f"{e['left']} ↔ {e['right']} ({e['rule']})" for e in detail["evidence"][:10]
            )
        )


@profile_app.command("explain")
def profile_explain(
    key: Annotated[str, typer.Argument(help="A profile id, an e-mail address or a phone number.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Why each record belongs to the profile: the links that join it and people's decisions."""
    with _custos() as custos:
        report = _guarded(lambda: custos.explain(key))
    if as_json:
        out.print_json(orjson.dumps(report).decode())
        return
    table = Table(title=f"why these records are profile {report['profile_id']}")
    for name in ("record", "linked with", "by", "weight"):
        table.add_column(name)
    for record in report["records"]:
        for i, why in enumerate(record["why"]):
            table.add_row(
                record["record"] if i == 0 else "",
                why.get("with", ""),
                why["rule"],
                why.get("weight") or "",
            )
    out.print(table)
    for d in report["decisions"]:
        out.print(
            f"decision: {d['left']} and {d['right']} {d['decision']} ({d['actor']}, {d['at'][:10]}: {d['reason']})"
        )


@profile_app.command("unmerge")
def profile_unmerge(
    key: Annotated[str, typer.Argument(help="The profile (id, e-mail or phone).")],
    records: Annotated[
        list[str],
        typer.Option("--record", "-r", help="SOURCE:RECORD_ID to split off (repeatable)."),
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the decision).")] = "",
) -> None:
    """Split records off a profile; later runs will not merge them back."""
    with _custos() as custos:
        result = _guarded(lambda: custos.unmerge(key, records, reason=reason))
    for ref, pid in result["records"].items():
        out.print(f"{ref} → profile {pid}")
    out.print(f"profile {result['profile_id']} keeps its other records")


@profile_app.command("merge")
def profile_merge(
    first: Annotated[str, typer.Argument(help="A profile (id, e-mail or phone).")],
    second: Annotated[str, typer.Argument(help="The other profile.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the decision).")] = "",
) -> None:
    """Join two profiles for good; the older id survives and the other redirects to it."""
    with _custos() as custos:
        survivor = _guarded(lambda: custos.merge(first, second, reason=reason))
    out.print(f"merged into profile {survivor}")


@app.command()
def stats() -> None:
    """Counts of sources, records, interactions, profiles and quarantined rows."""
    with _custos() as custos:
        counts = custos.stats()
    table = Table(title="custos store")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in counts.items():
        table.add_row(name.replace("_", " "), str(value))
    out.print(table)


@quarantine_app.command("list")
def quarantine_list(
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many rows.")] = 100,
) -> None:
    """Quarantined rows: source, file, line, record id, field, reason and the fix."""
    with _custos() as custos:
        rows = custos.quarantine(source=source, limit=limit)
    if not rows:
        out.print("the quarantine is empty")
        return
    table = Table(title=f"quarantined rows (newest first, at most {limit})")
    for name in ("source", "file", "line", "record", "field", "reason", "fix"):
        table.add_column(name)
    for r in rows:
        table.add_row(
            r["source"],
            r["file_name"] or "",
            str(r["line_no"] or ""),
            r["record_id"] or "",
            r["field"] or "",
            r["reason"],
            r["fix"] or "",
        )
    out.print(table)


@consent_app.command("show")
def consent_show(
    key: Annotated[str, typer.Argument(help="A profile id, an e-mail address or a phone number.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The state as of this date (YYYY-MM-DD) or time.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """A person's consent state per purpose (now or as of a date) and the full ledger."""
    with _custos() as custos:
        report = _guarded(lambda: custos.consent(key, as_of=_date(as_of)))
    if as_json:
        out.print_json(orjson.dumps(report).decode())
        return
    when = report["as_of"] or "now"
    table = Table(title=f"consent of {report['profile_id']} as of {when}")
    for name in ("purpose", "basis", "state", "explicit", "since", "may read"):
        table.add_column(name)
    for purpose, state in report["states"].items():
        table.add_row(
            purpose,
            state["basis"],
            state["status"],
            "yes" if state["explicit"] else "",
            (state["since"] or "")[:19],
            "yes" if state["allowed"] else "no",
        )
    out.print(table)
    ledger_table = Table(title=f"ledger ({len(report['ledger'])} events, oldest first)")
    for name in (
        "id",
        "when",
        "purpose",
        "status",
        "source",
        "method",
        "notice",
        "explicit",
        "expires",
    ):
        ledger_table.add_column(name)
    for e in report["ledger"]:
        ledger_table.add_row(
            str(e["id"]),
            (e["timestamp"] or "")[:19],
            e["purpose"],
            e["status"],
            e["source"],
            e["method"] or "",
            e["notice_version"] or "",
            "yes" if e["explicit"] else "",
            (e["expires_at"] or "")[:10],
        )
    out.print(ledger_table)


def _record(
    status: str,
    key: str,
    purpose: str,
    source: str,
    method: str,
    explicit: bool,
    notice: str | None,
) -> None:
    with _custos() as custos:
        event = _guarded(
            lambda: custos.record_consent(
                key,
                purpose=purpose,
                status=status,
                source=source,
                method=method,
                explicit=explicit,
                notice_version=notice,
            )
        )
    out.print(f"recorded consent event {event}: {status} for {purpose}")


@consent_app.command("grant")
def consent_grant(
    key: Annotated[str, typer.Argument(help="A profile id, an e-mail address or a phone number.")],
    purpose: Annotated[str, typer.Option("--purpose", "-p", help="The purpose consented to.")],
    source: Annotated[str, typer.Option("--source", "-s", help="Where the consent was given.")],
    method: Annotated[
        str, typer.Option("--method", help="How: form, call, checkout, …")
    ] = "manual",
    explicit: Annotated[
        bool,
        typer.Option(
            "--explicit", help="Explicit consent (needed for health and other special data)."
        ),
    ] = False,
    notice: Annotated[
        str | None, typer.Option("--notice", help="Version of the privacy notice shown.")
    ] = None,
) -> None:
    """Record that the person granted consent for a purpose (appends to the ledger)."""
    _record("granted", key, purpose, source, method, explicit, notice)


@consent_app.command("withdraw")
def consent_withdraw(
    key: Annotated[str, typer.Argument(help="A profile id, an e-mail address or a phone number.")],
    purpose: Annotated[str, typer.Option("--purpose", "-p", help="The purpose withdrawn.")],
    source: Annotated[str, typer.Option("--source", "-s", help="Where the withdrawal came in.")],
    method: Annotated[str, typer.Option("--method", help="How: form, call, e-mail, …")] = "manual",
) -> None:
    """Record that the person withdrew consent for a purpose; it acts on the next read."""
    _record("withdrawn", key, purpose, source, method, False, None)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the hash chain of the audit log; exit 1 when an entry was changed or removed."""
    with _custos() as custos:
        broken = custos.audit_verify()
    if broken is None:
        out.print("the audit log is intact")
        return
    err.print(f"[red]the audit log was tampered with at entry {broken}[/red]")
    raise typer.Exit(1)


@audit_app.command("show")
def audit_show(
    profile: Annotated[
        str | None, typer.Option("--profile", help="Only entries that touched this profile.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Accesses and changes, newest first: who, purpose, which profiles, which fields, when."""
    with _custos() as custos:
        entries = _guarded(lambda: custos.audit_entries(profile=profile, limit=limit))
    if as_json:
        out.print_json(orjson.dumps(entries).decode())
        return
    table = Table(title="audit log (newest first)")
    for name in ("id", "when", "actor", "action", "purpose", "profiles", "detail"):
        table.add_column(name)
    for e in entries:
        subjects = e["subjects"] if isinstance(e["subjects"], str) else ", ".join(e["subjects"])
        table.add_row(
            str(e["id"]),
            e["at"][:19],
            e["actor"],
            e["action"],
            e["purpose"] or "",
            subjects,
            orjson.dumps(e["detail"]).decode(),
        )
    out.print(table)


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option("--folder", help="Where the demo data and store go.")
    ] = Path("custos-demo"),
    people: Annotated[int, typer.Option("--people", help="How many synthetic people.")] = 1500,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same company).")] = 7,
) -> None:
    """Generate a synthetic company, ingest its silos, resolve profiles, and show what happened."""
    out.print(f"generating a synthetic company of {people} people (seed {seed}) in {folder}/ …")

    def on_file(s: Any) -> None:
        out.print(
            f"  {s.file:<24} → {s.source:<11} {s.kind.value:<12} read {s.read:>5}  stored {s.stored:>5}"
            f"  quarantined {s.quarantined}"
        )

    try:
        report = run_demo(folder, people=people, seed=seed, on_file=on_file)
    except CustosError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    assert report.resolved is not None and report.scores is not None
    _print_resolve(report.resolved)
    s = report.scores
    out.print(
        f"against the generator's truth: pairwise precision {s.precision:.3f}, recall {s.recall:.3f}, "
        f"F1 {s.f1:.3f} (exact identifiers only; probabilistic matching comes next)"
    )
    if report.example:
        out.print("\nexample profile (the one with the most linked records):")
        _print_profile(report.example)
    out.print(
        f"\ndone in {report.seconds:.1f} s. Explore it: "
        f"custos --db {report.store} stats | profile show ID | quarantine list | export xref"
    )


def main() -> None:
    """Entry point of the ``custos`` console script."""
    app()


if __name__ == "__main__":
    main()
