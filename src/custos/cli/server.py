"""``custos serve`` (the REST and collection API) and ``custos keys create|list|revoke``."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from custos.cli.common import app, err, open_custos, out, state
from custos.core.errors import CustosError
from custos.service import keys

keys_app = typer.Typer(
    help="API keys of the REST and collection API, bound to purposes.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the REST API (profiles under purposes) and the Segment-compatible collection API
    on the same store as the CLI; OpenAPI docs at /docs."""
    import uvicorn

    if state.db:
        # The app is built by uvicorn from its import string (the CLI does not import the API
        # package: both are entry points); it reads its settings, this store among them, from
        # the environment like every custos process.
        os.environ["CUSTOS_DB"] = state.db
    with open_custos():  # refuse an unusable store here, with the usual message and exit 2
        pass
    out.print(f"custos API on http://{host}:{port} (docs at /docs)")
    # No access log: request lines could carry personal data in query strings.
    uvicorn.run(
        "custos.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        access_log=False,
        log_level="info",
    )


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Key name: the actor in the audit log.")],
    purpose: Annotated[
        list[str] | None,
        typer.Option("--purpose", "-p", help="A purpose the key reads for (repeatable)."),
    ] = None,
    scope: Annotated[
        str, typer.Option("--scope", help="read, write (collection) or admin.")
    ] = "read",
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    with open_custos() as custos:
        try:
            key = keys.create(custos, name, list(purpose or []), scope)
        except CustosError as exc:
            err.print(f"[red]error:[/red] {exc.message}")
            if exc.hint:
                err.print(f"  fix: {exc.hint}")
            raise typer.Exit(2) from None
    err.print(f"key {name} ({scope}) created; it is shown once, keep it safe:")
    print(key)


@keys_app.command("list")
def listing() -> None:
    """Every key: name, prefix, scope, purposes, created and revoked times."""
    with open_custos() as custos:
        rows = keys.listing(custos)
    table = Table()
    for column in ("name", "prefix", "scope", "purposes", "created", "revoked"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["name"],
            r["prefix"] + "…",
            r["scope"],
            ", ".join(r["purposes"]),
            r["created_at"],
            r["revoked_at"] or "",
        )
    out.print(table)


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: it is refused from the next request on."""
    with open_custos() as custos:
        try:
            keys.revoke(custos, name)
        except CustosError as exc:
            err.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(2) from None
    out.print(f"key {name} revoked")
