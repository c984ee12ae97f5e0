"""Commands that move data: init, ingest, resolve, exports, stats, quarantine, demo."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO

import orjson
import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from custos import process
from custos.cli.common import (
    ExportPurpose,
    OutputFile,
    app,
    err,
    export_app,
    guarded,
    open_custos,
    out,
    quarantine_app,
    table_of,
)
from custos.cli.profiles import print_profile
from custos.core.errors import CustosError
from custos.core.fields import GOLDEN_ATTRIBUTES, STRONG_IDENTIFIERS, Kind
from custos.core.files import csv_writer, private_file
from custos.core.settings import Settings
from custos.identity.matcher import MIN_TRAINING_RECORDS
from custos.ingest.pipeline import IngestSummary
from custos.ingest.readers import FILE_TYPES
from custos.service import Custos, insight, quarantine
from custos.service.demo import run_demo


@app.command()
def init() -> None:
    """Create the store (or bring its schema up to date)."""
    with open_custos(create=True) as custos:
        revision = custos.store.migrate()
        out.print(f"store ready: {custos.store.describe()} (schema {revision})")


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help=f"A {FILE_TYPES} file.")],
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
    pii: Annotated[
        str | None,
        typer.Option(
            "--pii",
            help="Free text: redact (default), pseudonymise or keep personal data in it.",
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="Text encoding of a CSV file, e.g. cp1252 (default: the map file's, else "
            "UTF-8; a file with no UTF-8 at all is read as Windows-1252).",
        ),
    ] = None,
) -> None:
    """Read a file into the store: normalise, deduplicate, version changed rows, quarantine
    bad rows."""
    with open_custos() as custos, _progress(path.name) as progress:
        summary = custos.ingest(
            path,
            source,
            kind=kind,
            map_path=map_path,
            progress=progress,
            pii=pii,
            encoding=encoding,
        )
    _print_summary(summary, f"{summary.file} → source {summary.source} ({summary.kind.value})")
    if summary.read == 0:
        out.print("the file holds no rows")
    if not summary.ok:
        err.print("[red]nothing could be stored from this file[/red]")
        raise typer.Exit(1)


def _print_summary(summary: IngestSummary, title: str) -> None:
    """The counts of an ingestion (or a quarantine retry), and what to do about them."""
    table = Table(title=title)
    for name in ("read", "stored new", "changed", "unchanged", "quarantined", "skipped"):
        table.add_column(name, justify="right")
    counts = (summary.read, summary.stored, summary.changed, summary.duplicates)
    table.add_row(*map(str, counts), str(summary.quarantined), str(summary.skipped))
    out.print(table)
    rate = summary.read / summary.seconds if summary.seconds else 0.0
    out.print(f"{summary.seconds:.1f} s, {rate:,.0f} rows/s")
    if summary.skipped:
        out.print(f"{summary.skipped} blank line(s) skipped")
    if summary.closed:
        out.print(
            f"{summary.closed} quarantine entr{'y' if summary.closed == 1 else 'ies'} closed: "
            "their rows have landed"
        )
    if summary.quarantined:
        out.print(
            f"{summary.quarantined} row(s) quarantined ({summary.quarantined_new} new): "
            "see `custos quarantine list`"
        )
    if summary.fields_dropped:
        out.print(
            f"{summary.fields_dropped} unreadable field(s) left out of stored rows: "
            "see `custos quarantine list`"
        )
    if summary.changed:
        out.print(
            f"{summary.changed} record(s) changed: stored as new versions (the old ones kept); "
            "run `custos resolve` to update their profiles"
        )
    if summary.unclassified:
        names = ", ".join(summary.unclassified)
        example = ", ".join(f"{c}: behaviour" for c in summary.unclassified[:2])
        out.print(
            f"{len(summary.unclassified)} column(s) stored unclassified, which no purpose may "
            f"use: {names}; classify them in the map file (categories: {{{example}}}, any "
            "category of the taxonomy) and ingest again, or for every source in your taxonomy "
            "file (fields:, see the README, 'A custom taxonomy')"
        )


class Activity:
    """What a long command shows on a terminal while it works: a spinner with the phase and its
    time, and a bar where the step counts (call it with done and total)."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        self._bar, self._task = bar, task

    def __call__(self, done: int, total: int) -> None:
        self._bar.update(self._task, completed=done, total=total)

    def phase(self, name: str) -> None:
        """A new phase: its name, and no count until it reports one."""
        self._bar.reset(self._task, description=name, total=None)
        self._bar.refresh()  # shown at once, however short the phase


@contextmanager
def _progress(label: str) -> Iterator[Activity | None]:
    """An :class:`Activity` on standard error when it is a terminal (None otherwise: pipes and
    logs get the results only)."""
    if not err.is_terminal:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        activity = Activity(bar, bar.add_task(label, total=None))
        bar.refresh()
        yield activity


@app.command(
    help="Build or update profiles: exact identifiers plus probabilistic matches (ids stay "
    f"stable). A store of fewer than {MIN_TRAINING_RECORDS:,} records uses the matching model "
    "shipped with custos instead of training one."
)
def resolve(
    full: bool = typer.Option(
        False, "--full", help="Rebuild every profile from every record (default: attach new ones)."
    ),
    retrain: bool = typer.Option(
        False,
        "--retrain",
        help="Train and save a new matching model version first (implies --full).",
    ),
    engine: str | None = typer.Option(
        None,
        "--engine",
        help="Where to score candidate pairs: duckdb (in process) or spark (implies --full; "
        "needs custos[spark] and Java 17). Default: CUSTOS_ENGINE, else duckdb.",
    ),
    spark_master: str | None = typer.Option(
        None, "--spark-master", help="Spark master URL (default local[2]; CUSTOS_SPARK_MASTER)."
    ),
    spark_conf: list[str] = typer.Option(
        [], "--spark-conf", help="A Spark setting KEY=VALUE (repeatable; over CUSTOS_SPARK_CONF)."
    ),
    engine_location: str | None = typer.Option(
        None,
        "--engine-location",
        help="Where Spark reads and writes its Parquet files and keeps a run's work: a path, "
        "or a Hadoop URI shared with the cluster (CUSTOS_ENGINE_LOCATION).",
    ),
) -> None:
    """Build or update profiles (help text above: it names the shipped model's threshold)."""
    settings = _engine_settings(engine, spark_master, spark_conf, engine_location)
    spark = settings.engine == "spark"
    phase = "resolving profiles" + (" (training the matching model first)" if retrain else "")
    with (
        open_custos(settings=settings) as custos,
        _progress(phase) as activity,
        process.paused_gc(),
    ):
        report = activity.phase if activity else (_log_phase if spark else None)
        summary = custos.resolve(full=full or spark, retrain=retrain, progress=report)
    _print_resolve(summary)


def _engine_settings(
    engine: str | None, master: str | None, conf: list[str], location: str | None
) -> Settings:
    """The environment's settings with the engine options of ``custos resolve`` over them."""
    settings = Settings()
    update: dict[str, Any] = {}
    if engine is not None:
        if engine not in ("duckdb", "spark"):
            err.print(f"[red]error:[/red] --engine {engine!r}: write duckdb or spark")
            raise typer.Exit(2)
        update["engine"] = engine
    if master is not None:
        update["spark_master"] = master
    if location is not None:
        update["engine_location"] = location
    pairs = dict(settings.spark_conf)
    for item in conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            err.print(f"[red]error:[/red] --spark-conf {item!r}: write KEY=VALUE")
            raise typer.Exit(2)
        pairs[key.strip()] = value
    if conf:
        update["spark_conf"] = pairs
    return settings.model_copy(update=update)


def _log_phase(phase: str) -> None:
    """A phase of a long run, for logs (standard error is no terminal)."""
    err.print(f"resolve: {phase}")


def _print_resolve(summary: Any) -> None:
    split = f", {summary.split} of them split off a profile" if summary.split else ""
    out.print(
        f"profiles: {summary.profiles} ({summary.created} new{split}, "
        f"{summary.merged} merged into older ids), "
        f"from {summary.records} records and {summary.linked_interactions} of {summary.interactions} "
        f"interactions; {summary.multi_record_profiles} profiles join several records, "
        f"largest {summary.largest_profile}; {summary.edges} links "
        f"({summary.probabilistic_links} probabilistic); {summary.seconds:.1f} s"
    )
    model = (
        f"model v{summary.model_version}" + (" (trained now)" if summary.trained else "")
        if summary.model_version
        else "exact identifiers only"
    )
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in summary.phases.items())
    engine = f", scored on {summary.engine}" if summary.engine != "duckdb" else ""
    resumed = (
        f"; resumed a failed run: {', '.join(summary.resumed)} read back" if summary.resumed else ""
    )
    out.print(f"{summary.mode} run, {model}{engine}; {phases}{resumed}")
    if summary.conflicts:
        out.print(f"{summary.conflicts} links refused: they would join different birth dates")
    if summary.withheld_links:
        out.print(
            f"{summary.withheld_links} shared identifier(s) linked only the records of each person"
        )
    if summary.ignored:
        table = table_of(
            "identifiers ignored by guard rails (values not shown)",
            "identifier",
            "records",
            "persons",
            "why",
        )
        for item in summary.ignored[:20]:
            table.add_row(item.kind, str(item.records), str(item.persons or "-"), item.reason)
        out.print(table)
        if len(summary.ignored) > 20:
            out.print(f"… and {len(summary.ignored) - 20} more")


def _check_format(fmt: str) -> None:
    if fmt not in ("csv", "jsonl"):
        err.print("[red]error:[/red] --format must be csv or jsonl")
        raise typer.Exit(2)


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """The file to write (mode 0600, appears whole when done), or standard output."""
    if path is None:
        yield sys.stdout
        return
    with private_file(path) as handle:
        yield handle


def _write_rows(
    handle: TextIO, fmt: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Write ``rows`` (values in the order of ``columns``) as CSV under a header line, or as
    JSON Lines (an object per row); how many rows were written."""
    count = 0
    if fmt == "csv":
        writer = csv_writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(row)
            count += 1
    else:
        for row in rows:
            handle.write(orjson.dumps(dict(zip(columns, row, strict=True))).decode() + "\n")
            count += 1
    return count


@export_app.command("xref")
def export_xref(
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or jsonl.")] = "csv",
    output: OutputFile = None,
) -> None:
    """One row per ingested record and interaction: source, record_id, profile_id."""
    _check_format(fmt)
    # closing(): audited however the export ends
    with (
        open_custos() as custos,
        _output(output) as handle,
        closing(custos.xref(actor="cli")) as found,
    ):
        rows = _write_rows(handle, fmt, ("source", "record_id", "profile_id"), found)
    if output:
        err.print(f"wrote {rows} rows to {output}")


@export_app.command("profiles")
def export_profiles(
    purpose: ExportPurpose,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv.")] = "jsonl",
    output: OutputFile = None,
) -> None:
    """Profiles the purpose may see, with only the attributes and identifiers it may see."""
    _check_format(fmt)
    with open_custos() as custos:
        chosen = guarded(lambda: custos.taxonomy.purpose(purpose))  # refuse before writing
        # closing(): a write that fails (a closed pipe, a full disk) ends the export at once, and
        # its audit entry names the profiles handed out so far.
        with closing(custos.export_profiles(purpose)) as rows, _output(output) as handle:
            if fmt == "jsonl":
                count = sum(handle.write(orjson.dumps(item).decode() + "\n") > 0 for item in rows)
            else:
                count = _write_profiles_csv(handle, rows, chosen, custos)
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
    writer = csv_writer(handle)
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


@export_app.command("interactions")
def export_interactions(
    purpose: ExportPurpose,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or jsonl.")] = "csv",
    output: OutputFile = None,
) -> None:
    """One row per interaction the purpose may see, with its sentiment (label, score,
    confidence); texts not scored yet are scored first (guarded, audited)."""
    _check_format(fmt)
    with open_custos() as custos:
        guarded(lambda: custos.taxonomy.purpose(purpose))  # refuse before scoring or writing
        with _progress("scoring new texts") as progress:
            guarded(lambda: insight.score(custos, missing_only=True, progress=progress))
        rows = guarded(lambda: insight.export_interactions(custos, purpose, actor="cli"))
        with closing(rows) as found, _output(output) as handle:
            values = (tuple(item.values()) for item in found)
            count = _write_rows(handle, fmt, insight.INTERACTION_COLUMNS, values)
    if output:
        err.print(f"wrote {count} interactions to {output}")


@app.command()
def stats() -> None:
    """Counts of sources, records, interactions, profiles and quarantined rows."""
    with open_custos() as custos:
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
    open_only: Annotated[
        bool,
        typer.Option(
            "--open/--all",
            help="Only the open entries (rows still waiting; the default), or the closed ones "
            "too, with the time their rows landed.",
        ),
    ] = True,
) -> None:
    """Quarantined rows: source, file, line, record id, field, reason and the fix."""
    with open_custos() as custos:
        rows = custos.quarantine(source=source, limit=limit, open_only=open_only)
    if not rows:
        out.print("the quarantine is empty" if open_only else "nothing was ever quarantined")
        return
    shown = "open entries" if open_only else "entries, open and closed"
    table = Table(title=f"quarantined rows: {shown} (newest first, at most {limit})")
    names = ["source", "file", "line", "record", "field", "reason", "fix"]
    for name in names if open_only else [*names, "closed"]:
        table.add_column(name)
    for r in rows:
        cells = [
            r["source"],
            r["file_name"] or "",
            str(r["line_no"] or ""),
            r["record_id"] or "",
            r["field"] or "",
            r["reason"],
            r["fix"] or "",
        ]
        if not open_only:
            cells.append(f"{r['closed_at']:%Y-%m-%d %H:%M:%S}" if r["closed_at"] else "open")
        table.add_row(*cells)
    out.print(table)


@quarantine_app.command("export")
def quarantine_export(
    source: Annotated[str, typer.Option("--source", "-s", help="The source whose rows wait.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The CSV file to write.")],
    kind: Annotated[
        Kind | None,
        typer.Option("--kind", "-k", help="Only rows of this kind (needed when several wait)."),
    ] = None,
) -> None:
    """Write the rows that wait in the quarantine to a CSV file to fix (with the reason and the
    fix in columns); `custos ingest` the fixed file to close their entries."""
    with open_custos() as custos:
        written, without = quarantine.export(custos, source, output, kind=kind)
    out.print(f"{written} row(s) to fix written to {output}")
    if without:
        out.print(
            f"{without} open entr{'y' if without == 1 else 'ies'} hold no row to export "
            "(unreadable lines, erased persons, collected calls): fix those at the source"
        )


@quarantine_app.command("retry")
def quarantine_retry(
    source: Annotated[str, typer.Option("--source", "-s", help="The source whose rows wait.")],
    map_path: Annotated[
        Path | None,
        typer.Option("--map", "-m", help="The (changed) map file to read the rows with."),
    ] = None,
    pii: Annotated[
        str | None,
        typer.Option("--pii", help="Free text: redact (default), pseudonymise or keep."),
    ] = None,
) -> None:
    """Read the rows that wait in the quarantine again (after a map file or taxonomy change):
    those that land close their entries, the others keep them with the reason found now."""
    with open_custos() as custos:
        summary = quarantine.retry(custos, source, map_path=map_path, pii=pii)
    _print_summary(summary, f"quarantine of source {source}, read again")


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
        with _progress("starting") as activity:
            report = run_demo(
                folder,
                people=people,
                seed=seed,
                on_file=on_file,
                on_phase=activity.phase if activity else None,
                progress=activity,
            )
    except CustosError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    assert report.resolved is not None and report.scores is not None
    _print_resolve(report.resolved)
    s = report.scores
    out.print(
        f"against the generator's truth: pairwise precision {s.precision:.3f}, recall {s.recall:.3f}, "
        f"F1 {s.f1:.3f} (exact identifiers and probabilistic matches)"
    )
    total = report.resolved.profiles
    uses = ", ".join(f"{n} may be used for {p}" for p, n in report.allowed.items())
    out.print(
        f"consent guard: of {total} profiles, {uses} "
        "(consent purposes need a grant; analytics rests on legitimate interest)"
    )
    if report.impact:
        turned = [i for i in report.impact if i.significant]
        out.print(
            f"insight: {report.scored} texts scored; social posts 120 days around the planted "
            "event (a price rise in Germany): "
            + (
                ", ".join(f"{i.segment} turned {i.delta:+.2f} (p={i.p_value:.3f})" for i in turned)
                if turned
                else "no segment turned"
            )
            + " — see `custos insight impact`"
        )
    if report.example:
        out.print("\nexample profile (the one with the most linked records):")
        print_profile(report.example)
    out.print(
        f"\ndone in {report.seconds:.1f} s. Explore it: "
        f"custos --db {report.store} stats | profile show ID | quarantine list | export xref"
    )
