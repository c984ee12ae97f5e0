"""``custos insight …`` and ``custos segment …``: sentiment, trends, event impact, segments."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from custos.cli.common import (
    app,
    err,
    guarded,
    open_custos,
    out,
    table_of,
)
from custos.cli.data import _progress
from custos.core.files import csv_writer
from custos.core.settings import Settings
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
        f"({summary.unknown_language} in other languages: unknown; {summary.uncertain} "
        f"uncertain, confidence < {custos_threshold():g}); "
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
    table = table_of(None, "when", "channel", "label", "score", "confidence")
    for row in report["timeline"]:
        table.add_row(
            row["at"], row["channel"] or "", row["label"], str(row["score"]),
            str(row["confidence"]),
        )  # fmt: skip
    out.print(table)
    _left_out_note(custos_threshold())


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
    points = _analysed(
        insight.trend, by, interval=interval, purpose=purpose, chart=chart, channel=channel
    )
    if fmt == "json":
        rows = [{**p.__dict__, "period": p.period.isoformat()} for p in points]
        out.print_json(orjson.dumps(rows).decode())
        return
    table = _numbers_table(
        f"sentiment by {by} per {interval} ({purpose})",
        (
            "segment",
            interval,
            "interactions",
            "persons",
            "mean",
            "95% interval",
            "negative",
        ),
    )
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
    _left_out_note(custos_threshold())
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
    result = _analysed(
        insight.impact, event, window_days=days, by=by, purpose=purpose, channel=channel
    )
    if fmt == "json":
        out.print_json(orjson.dumps([_json(s.as_dict()) for s in result]).decode())
        return
    shown = result[0].window_days if result else days
    table = _numbers_table(
        f"sentiment {shown} days before and after {event} by {by} ({purpose})",
        ("segment", "n before", "n after", "before", "after", "delta", "95% interval",
         "p (Holm)", "vs others", "turned"),
    )  # fmt: skip
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
    _left_out_note(custos_threshold())


def _analysed(analysis: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``analysis(custos, *args, **kwargs)``, guarded, after it has scored the texts not scored
    yet (with a progress bar on a terminal)."""
    with open_custos() as custos, _progress("scoring new texts") as progress:
        phase = progress.phase if progress else None
        return guarded(lambda: analysis(custos, *args, progress=progress, phase=phase, **kwargs))


def _numbers_table(title: str, columns: Sequence[str]) -> Table:
    """A table of a name (the first column, left-aligned) and numbers (right-aligned)."""
    table = Table(title=title)
    for i, name in enumerate(columns):
        table.add_column(name, justify="right" if i else "left")
    return table


def custos_threshold() -> float:
    """The confidence below which a text's sentiment is uncertain (the setting)."""
    return Settings().sentiment_min_confidence


def _left_out_note(threshold: float) -> None:
    """Say that uncertain texts are left out, and where the threshold is set."""
    if threshold > 0:
        out.print(
            f"texts whose sentiment is uncertain (confidence < {threshold:g}, "
            "CUSTOS_SENTIMENT_MIN_CONFIDENCE) are left out"
        )


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


# -- a company's own labels ------------------------------------------------------------------
TextColumn = Annotated[str, typer.Option("--text-column", help="The column of the texts.")]
LabelColumn = Annotated[
    str,
    typer.Option(
        "--label-column", help="The column of the labels: negative, neutral, positive (or "
        "neg/neu/pos, negativ/positiv, -1/0/1, 0/1/2, 0/1 for two classes, stars 1-5); rows "
        "labelled mixed, unknown or nothing are left out and counted."
    ),
]  # fmt: skip
LabelMap = Annotated[
    str | None,
    typer.Option(
        "--label-map",
        help="What each label means, where the column's own reading is not yours: "
        "'0=negative,1=neutral,2=positive'; 'x=skip' leaves a label's rows out.",
    ),
]
LanguageColumn = Annotated[
    str | None,
    typer.Option(
        "--language-column",
        help="A column stating each text's language (en, de, ...); it wins over detection.",
    ),
]
LabelledFile = Annotated[
    Path,
    typer.Argument(
        help="A labelled file, read as `custos ingest` reads a source: CSV (commas or "
        "semicolons), TSV, JSON Lines or Parquet.",
        exists=True,
    ),
]


@insight_app.command("evaluate")
def evaluate(
    path: LabelledFile,
    text_column: TextColumn,
    label_column: LabelColumn,
    language_column: LanguageColumn = None,
    label_map: LabelMap = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Measure the current sentiment engine on your labelled texts: accuracy, macro-F1,
    confusion matrix, accuracy of its most confident 10%..100%."""
    with open_custos() as custos:
        report = guarded(
            lambda: insight.evaluate(
                custos,
                path,
                text_column=text_column,
                label_column=label_column,
                language_column=language_column,
                label_map=label_map,
            )
        )
    if as_json:
        out.print_json(orjson.dumps(report).decode())
        return
    out.print(f"{report['engine']} {report['version']} on {path.name}")
    out.print(_labels_read(report["labels"]))
    _print_measure(report)
    out.print(
        f"uncertain (confidence < {report['min_confidence']:g}): {report['uncertain']} text(s); "
        "they are counted above by their most probable class"
    )


def _labels_read(labels: dict[str, Any]) -> str:
    """One line: how each label was read, the numeric scheme, and the rows left out."""
    read = ", ".join(
        f"{label or '(empty)'} → {meaning or 'left out'}"
        for label, meaning in labels["read_as"].items()
    )
    line = f"labels read as {read}" + (f" ({labels['scheme']})" if labels["scheme"] else "")
    if labels["left_out"]:
        left = ", ".join(f"{n} {label or '(empty)'}" for label, n in labels["left_out"].items())
        line += f"; rows left out: {left}"
    return line


def _print_measure(report: dict[str, Any]) -> None:
    """Accuracy, macro-F1, the confusion matrix and the confident-share curve."""
    out.print(
        f"{report['scored']} of {report['texts']} texts scored ({report['unknown']} in other "
        f"languages: unknown); accuracy {_share(report['accuracy'])}, macro-F1 "
        f"{_share(report['macro_f1'])}; negative vs positive (the "
        f"{report['negative_vs_positive']['texts']} texts labelled so, neutral set aside) "
        f"{_share(report['negative_vs_positive']['accuracy'])}"
    )
    confusion = Table(title="confusion (rows: your label, columns: the engine's)")
    confusion.add_column("label")
    for name in report["confusion"]:
        confusion.add_column(name, justify="right")
    for truth, row in report["confusion"].items():
        confusion.add_row(truth, *(str(v) for v in row.values()))
    out.print(confusion)
    curve = Table(title="accuracy of the most confident share of the answers")
    for name in ("share", "texts", "accuracy"):
        curve.add_column(name, justify="right")
    for point in report["confident"]:
        curve.add_row(f"{point['share']:.0%}", str(point["texts"]), _share(point["accuracy"]))
    out.print(curve)
    kept = Table(title="answers kept at a confidence threshold (CUSTOS_SENTIMENT_MIN_CONFIDENCE)")
    for name in ("min confidence", "kept", "accuracy of those kept"):
        kept.add_column(name, justify="right")
    for point in report["thresholds"]:
        kept.add_row(
            f"{point['min_confidence']:g}", _share(point["kept"]), _share(point["accuracy"])
        )
    out.print(kept)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


@insight_app.command("train")
def train(
    path: LabelledFile,
    text_column: TextColumn,
    label_column: LabelColumn,
    language_column: LanguageColumn = None,
    label_map: LabelMap = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train a sentiment head on your labelled texts (English and German; at least 30, 5 of
    each class), compare it with the shipped head by cross-validation, and keep it in the store:
    `insight score` uses it from now on."""
    with open_custos() as custos, _progress("training") as progress:
        report = guarded(
            lambda: insight.train(
                custos,
                path,
                text_column=text_column,
                label_column=label_column,
                language_column=language_column,
                label_map=label_map,
                phase=progress.phase if progress else None,
            )
        )
    if as_json:
        out.print_json(orjson.dumps(report).decode())
        return
    metrics, trained = report["metrics"], report["trained_on"]
    out.print(
        f"trained on {trained['texts']} texts "
        + ", ".join(f"{k} {v}" for k, v in trained["classes"].items())
        + f" ({trained['other_languages_left_out']} in other languages left out)"
    )
    out.print(_labels_read(trained["labels"]))
    table = _numbers_table(
        "held out (5-fold cross-validation) vs the shipped head, same texts",
        ("head", "accuracy", "macro-F1", "most confident 50%"),
    )
    for name, label in (("company", "yours"), ("shipped", "shipped")):
        measured = metrics[name]
        half = next(p for p in measured["confident"] if p["share"] == 0.5)
        table.add_row(
            label, _share(measured["accuracy"]), _share(measured["macro_f1"]),
            _share(half["accuracy"]),
        )  # fmt: skip
    out.print(table)
    out.print(
        f"stored as head {report['version']}, active: `custos insight score` re-scores with it; "
        "`custos insight heads --deactivate` goes back to the shipped head"
    )


@insight_app.command("heads")
def heads(
    deactivate: Annotated[
        bool, typer.Option("--deactivate", help="Score with the shipped head again.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The sentiment heads trained on your labels (`insight train`), newest first."""
    with open_custos() as custos:
        if deactivate:
            was = insight.deactivate_head(custos)
            out.print(
                "the shipped head scores from now on"
                + ("" if was else " (no trained head was active)")
            )
        rows = insight.heads(custos)
    if as_json:
        out.print_json(orjson.dumps(rows).decode())
        return
    table = Table(title="sentiment heads trained on your labels")
    for name in ("version", "created", "active", "texts", "accuracy", "shipped head"):
        table.add_column(name, justify="left" if name == "created" else "right")
    for row in rows:
        metrics = row["metrics"]
        table.add_row(
            str(row["version"]), row["created_at"], "yes" if row["active"] else "",
            str(row["trained_on"]["texts"]), _share(metrics["company"]["accuracy"]),
            _share(metrics["shipped"]["accuracy"]),
        )  # fmt: skip
    out.print(table)
