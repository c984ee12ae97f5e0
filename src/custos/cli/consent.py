"""Commands on the consent ledger and the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from custos.cli.common import (
    AsJson,
    Key,
    audit_app,
    consent_app,
    err,
    guarded,
    open_custos,
    out,
    parse_when,
    table_of,
)
from custos.core.files import write_private


@consent_app.command("show")
def consent_show(
    key: Key,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The state as of this date (YYYY-MM-DD) or time.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """A person's consent state per purpose (now or as of a date) and the full ledger."""
    with open_custos() as custos:
        report = guarded(lambda: custos.consent(key, as_of=parse_when(as_of)))
    if as_json:
        out.print_json(orjson.dumps(report).decode())
        return
    when = report["as_of"] or "now"
    table = table_of(
        f"consent of {report['profile_id']} as of {when}",
        "purpose",
        "basis",
        "state",
        "explicit",
        "since",
        "may read",
    )
    for purpose, state in report["states"].items():
        table.add_row(
            purpose,
            state["basis"],
            state["status"] + (" (possible match)" if state.get("via_possible_match") else ""),
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
            e["source"] + (" (possible match)" if e.get("via_possible_match") else ""),
            e["method"] or "",
            e["notice_version"] or "",
            "yes" if e["explicit"] else "",
            (e["expires_at"] or "")[:10],
        )
    out.print(ledger_table)
    if report.get("possible_matches"):
        out.print(
            "restrictions of possible matches apply (identity uncertain, consent conservative): "
            + "; ".join(
                f"{m['record']} ~ {m['with']} (profile {m['profile_id']}, weight {m['weight']:.1f})"
                for m in report["possible_matches"]
            )
        )


def _record(
    status: str,
    key: str,
    purpose: str,
    source: str,
    method: str,
    explicit: bool,
    notice: str | None,
) -> None:
    with open_custos() as custos:
        event = guarded(
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
    key: Key,
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
    key: Key,
    purpose: Annotated[str, typer.Option("--purpose", "-p", help="The purpose withdrawn.")],
    source: Annotated[str, typer.Option("--source", "-s", help="Where the withdrawal came in.")],
    method: Annotated[str, typer.Option("--method", help="How: form, call, e-mail, …")] = "manual",
) -> None:
    """Record that the person withdrew consent for a purpose; it acts on the next read."""
    _record("withdrawn", key, purpose, source, method, False, None)


@consent_app.command("vendor")
def consent_vendor(
    key: Key,
    purpose: Annotated[str, typer.Option("--purpose", "-p", help="The purpose of the sharing.")],
    vendor: Annotated[int, typer.Option("--vendor", min=1, help="The IAB TCF vendor id (GVL).")],
    as_json: AsJson = False,
) -> None:
    """May the person's data go to an IAB TCF vendor for a purpose? Exit 0 yes, 3 no."""
    with open_custos() as custos:
        answer = guarded(lambda: custos.tcf_vendor(key, purpose=purpose, vendor=vendor))
    if as_json:
        out.print_json(orjson.dumps(answer).decode())
    else:
        out.print(("yes: " if answer["allowed"] else "no: ") + answer["reason"])
    if not answer["allowed"]:
        raise typer.Exit(3)


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="Also check against this checkpoint, exported earlier (repeatable).",
        ),
    ] = None,
) -> None:
    """Check the keyed hash chain of the audit log and its end against the checkpoint; exit 1
    when an entry was changed, removed, or the chain rewritten."""
    with open_custos() as custos:
        finding = guarded(lambda: custos.audit_verify(checkpoint or ()))
    if finding is None:
        out.print("the audit log is intact")
        return
    err.print(f"[red]the audit log was tampered with:[/red] {finding.reason}")
    err.print(f"  checked against the checkpoint {custos.store.audit_anchor.checkpoint}")
    err.print("  (a store replaced on purpose by a new one: move its old checkpoint away)")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (mode 0600; default: standard output)."),
    ] = None,
) -> None:
    """Export the signed head of the verified audit log (newest entry id and hash), to keep
    where the store's administrators cannot change it; check against it with
    `custos audit verify --checkpoint FILE`."""
    with open_custos() as custos:
        signed = guarded(custos.audit_checkpoint)
    if output is None:
        out.print(signed.decode(), markup=False, highlight=False, soft_wrap=True)
        return
    write_private(output, signed.decode() + "\n")
    err.print(f"wrote the audit checkpoint to {output}")


@audit_app.command("show")
def audit_show(
    profile: Annotated[
        str | None, typer.Option("--profile", help="Only entries that touched this profile.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many entries.")] = 50,
    as_json: AsJson = False,
) -> None:
    """Accesses and changes, newest first: who, purpose, which profiles, which fields, when."""
    with open_custos() as custos:
        entries = guarded(lambda: custos.audit_entries(profile=profile, limit=limit))
    if as_json:
        out.print_json(orjson.dumps(entries).decode())
        return
    table = table_of(
        "audit log (newest first)", "id", "when", "actor", "action", "purpose", "profiles", "detail"
    )
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
