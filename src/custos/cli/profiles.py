"""Commands on profiles: show, explain, unmerge, merge."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from custos.cli.common import (
    guarded,
    open_custos,
    out,
    parse_when,
    profile_app,
)


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
    with open_custos() as custos:
        report = guarded(lambda: custos.explain(key))
    if as_json:
        out.print_json(orjson.dumps(report).decode())
        return
    table = Table(title=f"why these records are profile {report['profile_id']}")
    for name in ("record", "linked with", "by", "weight", "weight per field"):
        table.add_column(name)
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
