"""Commands on profiles: show, explain, unmerge, merge, and the review queue."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from custos.cli.common import (
    AsJson,
    Key,
    ReadPurpose,
    err,
    guarded,
    open_custos,
    out,
    parse_when,
    profile_app,
    table_of,
)


@profile_app.command("show")
def profile_show(
    key: Key,
    as_json: AsJson = False,
    purpose: ReadPurpose = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Decide consent as of this date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Show one profile as the purpose may see it: golden record with provenance, identifiers,
    records, interactions."""
    with open_custos() as custos:
        detail = guarded(
            lambda: custos.profile(
                key, purpose=purpose or custos.settings.purpose, as_of=parse_when(as_of)
            )
        )
    if as_json:
        out.print_json(orjson.dumps(detail).decode())
        return
    print_profile(detail)


#: What a profile shows where the purpose may not know the source (see Presence oracles).
_HIDDEN = "(not shown)"


def print_profile(detail: dict[str, Any]) -> None:
    """A profile detail as tables (golden record, identifiers, records, interactions)."""
    out.print(
        f"purpose: {detail.get('purpose', '')} (fields this purpose may not use are not shown)"
    )
    out.print(
        f"[bold]profile {detail['profile_id']}[/bold]  ({detail['status']}, since {detail['created_at'][:10]})"
    )
    if detail["merged_ids"]:
        out.print(f"merged ids redirecting here: {', '.join(detail['merged_ids'])}")
    golden = table_of("golden record", "attribute", "value", "source", "record", "observed", "rule")
    for g in detail["golden"]:
        # A source the purpose may not know of leaves its values without provenance.
        golden.add_row(
            g["attribute"],
            g["value"],
            g["source"] or _HIDDEN,
            g["record_id"] or _HIDDEN,
            (g["observed_at"] or "")[:10],
            g["rule"],
        )
    out.print(golden)
    for kind, values in detail["identifiers"].items():
        out.print(f"{kind}: {', '.join(values)}")
    records = table_of(
        f"member records ({len(detail['records'])})", "source", "record", "name", "email", "phone"
    )
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
        events = table_of(
            f"interactions ({detail['interaction_count']}, newest first)",
            "when",
            "channel",
            "source",
            "record",
            "text",
        )
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
    key: Key,
    as_json: AsJson = False,
) -> None:
    """Why each record belongs to the profile: the links that join it and people's decisions."""
    with open_custos() as custos:
        report = guarded(lambda: custos.explain(key))
    if as_json:
        out.print_json(orjson.dumps(report).decode())
        return
    table = table_of(
        f"why these records are profile {report['profile_id']}",
        "record",
        "linked with",
        "by",
        "weight",
        "weight per field",
    )
    for record in report["records"]:
        for i, why in enumerate(record["why"]):
            fields = why.get("fields", {})
            table.add_row(
                record["record"] if i == 0 else "",
                why.get("with", ""),
                why["rule"],
                why.get("weight") or "",
                " ".join(f"{k} {v:+.1f}" for k, v in fields.items()),
            )
    out.print(table)
    for d in report["decisions"]:
        out.print(
            f"decision: {d['left']} and {d['right']} {d['decision']} ({d['actor']}, {d['at'][:10]}: {d['reason']})"
        )
    if report.get("not_linked"):
        pairs = Table(
            title="scored but not linked (possible matches restrict this profile's consent)"
        )
        for name in ("record", "with", "profile", "status", "weight", "reason"):
            pairs.add_column(name)
        for p in report["not_linked"]:
            pairs.add_row(
                p["record"],
                p["with"],
                p["profile_id"] or "",
                p["status"],
                f"{p['weight']:.1f}",
                p["reason"],
            )
        out.print(pairs)


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
    with open_custos() as custos:
        result = guarded(lambda: custos.unmerge(key, records, reason=reason))
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
    with open_custos() as custos:
        survivor = guarded(lambda: custos.merge(first, second, reason=reason))
    out.print(f"merged into profile {survivor}")


review_app = typer.Typer(
    help="The review queue: pairs of records that resolution scored but did not link. Without "
    "a command, list them, strongest first; `accept ID` joins a pair for good (one person), "
    "`reject ID` keeps it apart for good (two persons). Decisions are kept like merge and "
    "unmerge: every later run obeys them and the pair never comes back.",
    short_help="Pairs resolution did not link, to accept or reject (list without a command).",
    invoke_without_command=True,
    no_args_is_help=False,
)
profile_app.add_typer(review_app, name="review")


@review_app.callback()
def profile_review(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only pairs of this kind: possible (a match weight below the threshold, or no "
            "person-level evidence) or conflict (the records show two persons).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Pairs to show.", min=1)] = 50,
    offset: Annotated[int, typer.Option("--offset", help="Pairs to skip.", min=0)] = 0,
    as_json: AsJson = False,
) -> None:
    """List the pairs waiting for a decision, strongest match first: record references, their
    profiles, the reason and the match weight per field (no personal values)."""
    if ctx.invoked_subcommand is not None:
        return
    with open_custos() as custos:
        queue = guarded(lambda: custos.review_queue(limit=limit, offset=offset, status=status))
    if as_json:
        out.print_json(orjson.dumps(queue).decode())
        return
    print_review(queue, offset)


def print_review(queue: dict[str, Any], offset: int) -> None:
    """The review queue as a table, with what to do next."""
    items = queue["items"]
    if not items:
        out.print(
            "no pairs waiting for review"
            if not queue["total"]
            else f"no pairs from {offset + 1} on ({queue['total']} waiting)"
        )
        return
    table = Table(title=f"pairs waiting for review ({queue['total']}, strongest first)")
    for name in ("id", "status", "weight"):
        table.add_column(name, justify="left" if name == "status" else "right", no_wrap=True)
    # A record and its profile stay on one line; one line per field; the reason wraps.
    table.add_column("left → profile", no_wrap=True)
    table.add_column("right → profile", no_wrap=True)
    table.add_column("reason", ratio=1)
    table.add_column("weight per field", no_wrap=True)
    for item in items:
        table.add_row(
            str(item["id"]),
            item["status"],
            f"{item['weight']:.1f}",
            f"{item['left']['record']} → {item['left']['profile_id'] or '(none)'}",
            f"{item['right']['record']} → {item['right']['profile_id'] or '(none)'}",
            item["reason"],
            "\n".join(
                f"{k} {v:+.1f}"
                for k, v in (
                    item["fields"] | ({"prior": item["prior"]} if item["prior"] is not None else {})
                ).items()
            ),
        )
    out.print(table)
    shown_to = offset + len(items)
    if shown_to < queue["total"]:
        out.print(
            f"{offset + 1}–{shown_to} of {queue['total']}: next page with --offset {shown_to}"
        )
    out.print(
        "decide: custos profile review accept ID (one person) | reject ID (two persons); "
        "compare the two profiles first with custos profile show PROFILE_ID"
    )


def _decide(
    candidate: int, accept: bool, reason: str, records: list[str] | None, as_json: bool
) -> None:
    if records and len(records) != 2:
        err.print("[red]error:[/red] give --record twice: the pair's two records, as listed")
        raise typer.Exit(2)
    expect = (records[0], records[1]) if records else None
    with open_custos() as custos:
        result = guarded(
            lambda: custos.review_decide(candidate, accept=accept, reason=reason, expect=expect)
        )
    if as_json:
        out.print_json(orjson.dumps(result).decode())
    left, right = result["left"], result["right"]
    if accept and result["profile_id"] is None:
        err.print(
            f"[yellow]warning:[/yellow] pair {candidate} accepted, but {left['record']} and "
            f"{right['record']} are not in one profile after resolution (see custos profile "
            "explain)"
        )
        raise typer.Exit(1)
    if as_json:
        return
    if accept:
        out.print(
            f"pair {candidate} accepted: {left['record']} and {right['record']} are profile "
            f"{result['profile_id']}"
        )
        out.print("the profiles were rebuilt, which may renumber the queue: list it again")
    else:
        out.print(
            f"pair {candidate} rejected: {left['record']} (profile {left['profile_id']}) and "
            f"{right['record']} (profile {right['profile_id']}) stay apart on every later run"
        )


ReviewId = Annotated[int, typer.Argument(help="The pair's id (see custos profile review).")]
ReviewReason = Annotated[str, typer.Option("--reason", help="Why (kept with the decision).")]
ReviewRecords = Annotated[
    list[str] | None,
    typer.Option(
        "--record",
        "-r",
        help="The pair's records as listed (SOURCE:RECORD_ID, give it twice): refused if the id "
        "names another pair by now (every rebuild renumbers the queue).",
    ),
]


def _decision_command(name: str, accept: bool, doc: str) -> None:
    """Register ``profile review accept`` or ``reject``: the same options, one decision each."""

    def command(
        candidate: ReviewId,
        reason: ReviewReason = "",
        records: ReviewRecords = None,
        as_json: AsJson = False,
    ) -> None:
        _decide(candidate, accept, reason, records, as_json)

    command.__doc__ = doc
    command.__name__ = f"profile_review_{name}"
    review_app.command(name)(command)


_decision_command(
    "accept", True, "The pair is one person: join the two records (and their profiles) for good."
)
_decision_command("reject", False, "The pair is two persons: keep the two records apart for good.")
