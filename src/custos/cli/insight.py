"""``custos insight …`` and ``custos segment …``: sentiment, trends, event impact, segments."""

from __future__ import annotations

import math
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from custos.cli.common import app, err, guarded, open_custos, out
from custos.cli.data import _progress
from custos.core.files import csv_writer
from custos.service import insight

insight_app = typer.Typer(
    help="Customer insight: sentiment of calls and posts, trends, event impact.",
    no_args_is_help=True,
)
segment_app = typer.Typer(help="Named, rule-based segments of profiles.", no_args_is_help=True)
app.add_typer(insight_app, name="insight")
app.add_typer(segment_app, name="segment")

Purpose = Annotated[
    str, typer.Option("--purpose", "-p", help="The purpose this analysis serves (guarded).")
]


@insight_app.command("score")
def score(
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Sentiment engine (default CUSTOS_SENTIMENT_ENGINE: e5-head; lexicon is faster).",
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Texts per batch.")] = 256,
) -> None:
    """Score the sentiment of every interaction text not yet scored by this engine version."""
    with open_custos() as custos, _progress("scoring") as progress:
        summary = guarded(
            lambda: insight.score(custos, engine=engine, batch=batch, progress=progress)
        )
    rate = summary.scored / summary.seconds if summary.seconds else 0.0
    out.print(
        f"scored {summary.scored} interaction(s) with {summary.engine} {summary.version} "
        f"({summary.unknown_language} in other languages: unknown); "
        f"{summary.seconds:.1f} s, {rate:,.0f} texts/s"
    )


@insight_app.command("mood")
def mood(
    key: Annotated[str, typer.Argument(help="Profile id, e-mail or phone.")],
    purpose: Purpose = "analytics",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A profile's sentiment timeline and current (recency-weighted) mood."""
    with open_custos() as custos:
        report = guarded(lambda: insight.mood(custos, key, purpose=purpose))
    if as_json:
        out.print_json(orjson.dumps(report).decode())
        return
    out.print(f"profile {report['profile_id']}: current mood {report['mood']}")
    table = Table()
    for name in ("when", "channel", "label", "score"):
        table.add_column(name)
    for row in report["timeline"]:
        table.add_row(row["at"], row["channel"] or "", row["label"], str(row["score"]))
    out.print(table)


@insight_app.command("trend")
def trend(
    by: Annotated[str, typer.Option("--by", help="Attribute to segment by (e.g. country).")],
    interval: Annotated[str, typer.Option("--interval", help="week or month.")] = "week",
    purpose: Purpose = "analytics",
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="Draw the chart to this file (.png or .svg); none if absent."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    channel: Annotated[
        str | None, typer.Option("--channel", help="Only interactions of this channel.")
    ] = None,
) -> None:
    """Sentiment per segment and week: counts, mean score with 95% bootstrap interval, share
    negative."""
    if interval not in ("week", "month"):
        err.print("[red]error:[/red] --interval must be week or month")
        raise typer.Exit(2)
    with open_custos() as custos, _progress("scoring new texts") as progress:
        points = guarded(
            lambda: insight.trend(
                custos,
                by,
                interval=interval,
                purpose=purpose,
                chart=chart,
                channel=channel,
                progress=progress,
                phase=progress.phase if progress else None,
            )
        )
    if fmt == "json":
        rows = [{**p.__dict__, "period": p.period.isoformat()} for p in points]
        out.print_json(orjson.dumps(rows).decode())
        return
    table = Table(title=f"sentiment by {by} per {interval} ({purpose})")
    for name in (
        "segment",
        interval,
        "interactions",
        "persons",
        "mean",
        "95% interval",
        "negative",
    ):
        table.add_column(name, justify="left" if name == "segment" else "right")
    for p in points:
        table.add_row(
            p.segment,
            p.period.isoformat(),
            str(p.interactions),
            str(p.persons),
            f"{p.mean:+.2f}",
            f"{p.ci_low:+.2f} … {p.ci_high:+.2f}",
            f"{p.share_negative:.0%}",
        )
    out.print(table)
    if chart is not None:
        out.print(f"chart: {chart}")


@insight_app.command("impact")
def impact(
    when: Annotated[str, typer.Option("--date", help="The event's date, YYYY-MM-DD.")],
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            help="Days before and after, e.g. 60d (default: the longest equal window the data "
            "allows, up to 180d).",
        ),
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Attribute to segment by.")] = "country",
    purpose: Purpose = "analytics",
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    channel: Annotated[
        str | None, typer.Option("--channel", help="Only interactions of this channel.")
    ] = None,
) -> None:
    """Sentiment per segment before vs after an event: difference, interval, significance."""
    try:
        event = date.fromisoformat(when)
        days = None if window is None else int(window.rstrip("d"))
    except ValueError:
        err.print("[red]error:[/red] --date is YYYY-MM-DD and --window a number of days (60d)")
        raise typer.Exit(2) from None
    with open_custos() as custos, _progress("scoring new texts") as progress:
        result = guarded(
            lambda: insight.impact(
                custos,
                event,
                window_days=days,
                by=by,
                purpose=purpose,
                channel=channel,
                progress=progress,
                phase=progress.phase if progress else None,
            )
        )
    if fmt == "json":
        out.print_json(orjson.dumps([_json(s.as_dict()) for s in result]).decode())
        return
    shown = result[0].window_days if result else days
    table = Table(title=f"sentiment {shown} days before and after {event} by {by} ({purpose})")
    for name in ("segment", "n before", "n after", "before", "after", "delta", "95% interval",
                 "p (Holm)", "vs others", "turned"):  # fmt: skip
        table.add_column(name, justify="left" if name == "segment" else "right")
    for s in result:
        if not s.tested:  # no interval, no test: say why instead of printing nan
            interval, p_value = f"too few texts ({s.n_before} before, {s.n_after} after)", ""
        else:
            interval, p_value = f"{s.ci_low:+.2f} … {s.ci_high:+.2f}", f"{s.p_value:.3f}"
        table.add_row(
            s.segment,
            str(s.n_before),
            str(s.n_after),
            _signed(s.mean_before),
            _signed(s.mean_after),
            _signed(s.delta),
            interval,
            p_value,
            _signed(s.did),
            "yes" if s.significant else "",
        )
    out.print(table)
    out.print("n: persons with a scored text in the window (each person is one voice)")


def _signed(value: float) -> str:
    """A signed number, or a dash where there is none (a side with no texts)."""
    return "–" if math.isnan(value) else f"{value:+.2f}"


def _json(row: dict[str, Any]) -> dict[str, Any]:
    """NaN is not JSON: unknown numbers become null."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


@segment_app.command("create")
def segment_create(
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    where: Annotated[
        str, typer.Option("--where", help="Rule, e.g. \"country = 'DE' and age < 35\".")
    ],
) -> None:
    """Save a rule-based segment (checked now; evaluated whenever it is used)."""
    with open_custos() as custos:
        segment = guarded(lambda: insight.create_segment(custos, name, where))
    out.print(
        f"segment {segment.name}: {segment.where} (fields: {', '.join(sorted(segment.fields))})"
    )


@segment_app.command("list")
def segment_list() -> None:
    """The saved segments."""
    with open_custos() as custos:
        rows = insight.segments(custos)
    for row in rows:
        out.print(f"{row['name']}: {row['where']}")


@segment_app.command("export")
def segment_export(
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    purpose: Annotated[str, typer.Option("--purpose", "-p", help="The purpose of the export.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
) -> None:
    """The profiles of a segment, as the purpose may see them (guarded, audited)."""
    with open_custos() as custos:
        rows = guarded(lambda: insight.segment_members(custos, name, purpose=purpose))
    if fmt == "jsonl":
        for row in rows:
            sys.stdout.write(orjson.dumps(row, default=str).decode() + "\n")
    else:
        columns = sorted({k for row in rows for k in row if k != "identifiers"})
        writer = csv_writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([row.get(c, "") for c in columns] for row in rows)
    err.print(f"{len(rows)} profile(s) in segment {name}")
