"""Shared by the command modules: the Typer apps, the consoles, opening custos, errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperOption

from custos.core.errors import AccessDenied, CustosError
from custos.core.settings import Settings
from custos.service import Custos


def _flags_show_no_type() -> None:
    """Typer (0.29) prints ``<bool>`` beside every flag in ``--help``, as if it took a value; a
    flag takes none, so its type column stays empty."""
    typed = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else typed(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()

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


def table_of(title: str | None, *columns: str) -> Table:
    """A table with a title and these (plain, left-aligned) columns, rows to be added."""
    made = Table(title=title)
    for name in columns:
        made.add_column(name)
    return made


# Options and arguments that several commands take, spelled once.
Key = Annotated[str, typer.Argument(help="A profile id, an e-mail address or a phone number.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
ReadPurpose = Annotated[
    str | None,
    typer.Option(
        "--purpose", "-p", help="Why you read it (default: CUSTOS_PURPOSE, customer_service)."
    ),
]
ExportPurpose = Annotated[
    str, typer.Option("--purpose", "-p", help="The purpose of the export (required).")
]
OutputFile = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="File to write (default: standard output)."),
]


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
def open_custos(*, create: bool = False, settings: Settings | None = None) -> Any:
    """Open custos on the store of ``--db``; custos errors end the command with exit 2.

    Only ``custos init`` (and the demo) create a store: every other command refuses one that
    does not exist, so a typo in ``--db`` is not answered from a new, empty store. ``settings``
    replaces those of the environment (a command's options over them)."""
    try:
        with Custos.open(state.db, settings or Settings(), create=create) as custos:
            yield custos
    except CustosError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        if exc.hint:
            err.print(f"  fix: {exc.hint}")
        raise typer.Exit(2) from None


def parse_when(text: str | None) -> datetime | None:
    """A date (the end of that day) or an ISO time from the command line, in UTC."""
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


def guarded(read: Callable[[], Any]) -> Any:
    """Run a read; a refusal by the guard ends with exit 3, other errors with exit 2."""
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
