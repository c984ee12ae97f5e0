"""``custos serve`` (the REST and collection API) and ``custos keys create|list|revoke``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table

from custos.cli.common import app, err, guarded, open_custos, out, state
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
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Server processes; each writes collected calls in groups, and SQLite "
            "takes their transactions one at a time.",
        ),
    ] = 1,
) -> None:
    """Serve the REST API (profiles under purposes) and the Segment-compatible collection API
    on the same store as the CLI; OpenAPI docs at /docs."""
    import uvicorn

    with open_custos() as custos:  # refuse an unusable store here, with the usual message
        settings = custos.settings
    # No access log: request lines could carry personal data in query strings (and writing it
    # costs more than serving a collection request). uvloop is used when installed (uvicorn's
    # "auto"); the HTTP protocol is h11, with a deadline for request heads (below).
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "access_log": False,
        "log_level": "info",
        "timeout_graceful_shutdown": 10,
        # Limits before authentication (README, "Resource limits before authentication"): the
        # body limits and deadlines are the app's (custos.api.limits); here, the connections.
        # The protocol is uvicorn's h11 with a deadline for request heads, which uvicorn lacks.
        "http": "custos.api.limits:HeadTimeoutH11",
        "limit_concurrency": settings.api_max_connections,
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 16 * 1024,
    }
    config = uvicorn.Config("custos.api.server:server_app", workers=workers, **options)
    sock = _listen(host, port)
    address = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"
    out.print(f"custos web UI on {address}/ (API under /v1, docs at {address}/docs)")
    with _store_of_the_server(state.db):
        if workers == 1:
            uvicorn.Server(config).run(sockets=[sock])
            return
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()


@contextmanager
def _store_of_the_server(db: str | None) -> Iterator[None]:
    """The store of ``--db`` in the environment while the server runs.

    uvicorn builds the app from its import string in each server process (the CLI does not
    import the API package: both are entry points), and the app reads its settings, this store
    among them, from the environment like every custos process. The variable is taken back
    when the server stops, so a caller that runs this command in process keeps its own."""
    if not db:
        yield
        return
    before = os.environ.get("CUSTOS_DB")
    os.environ["CUSTOS_DB"] = db
    try:
        yield
    finally:
        if before is None:
            del os.environ["CUSTOS_DB"]
        else:
            os.environ["CUSTOS_DB"] = before


#: The kernel's receive buffer of each connection (it doubles the value for its bookkeeping).
#: Linux grows it up to net.ipv4.tcp_rmem's maximum (often 6 to 32 MB) when a client pushes
#: faster than the server reads: kernel memory a sender of an oversized body could fill on
#: every connection, and that closing the connection then has to free. 256 KiB still keeps a
#: 500 KB collection body in flight at full speed.
RECEIVE_BUFFER = 256 * 1024


def _listen(host: str, port: int) -> Any:
    """The listening socket, shared by every server process.

    It is made here rather than by uvicorn, which creates it without naming TCP as its
    protocol: asyncio then does not set TCP_NODELAY on the connections, and every answer on a
    kept-alive connection waits ~40 ms for the client's delayed ACK. Connections inherit its
    receive buffer (:data:`RECEIVE_BUFFER`).
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    try:
        sock.bind((host, port))
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc.strerror}")
        raise typer.Exit(2) from None
    sock.set_inheritable(True)
    return sock


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Key name: the actor in the audit log.")],
    purpose: Annotated[
        list[str] | None,
        typer.Option("--purpose", "-p", help="A purpose the key reads for (repeatable)."),
    ] = None,
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="read, write (collection from web pages and apps: its calls are claims), "
            "server (collection from your servers: its calls are verified) or admin.",
        ),
    ] = "read",
    user_id_field: Annotated[
        str | None,
        typer.Option(
            "--user-id-field",
            help="A collection key's source: what its calls' userId is. customer_id (default): "
            "the customer number, so a call meets the CRM record whose map names that number "
            "customer_id; none: an id of the app's own, kept with the call but never compared "
            "with customer numbers.",
        ),
    ] = None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    with open_custos() as custos:
        try:
            key = keys.create(custos, name, list(purpose or []), scope, user_id_field=user_id_field)
        except CustosError as exc:
            err.print(f"[red]error:[/red] {exc.message}")
            if exc.hint:
                err.print(f"  fix: {exc.hint}")
            raise typer.Exit(2) from None
    err.print(f"key {name} ({scope}) created; it is shown once, keep it safe:")
    print(key)


@keys_app.command("identity-secret")
def identity_secret(
    name: Annotated[str, typer.Argument(help="The write key's name.")],
) -> None:
    """Print the identity secret of a write key: your server signs a browser's identify with
    it (context.userHash = hex HMAC-SHA256(secret, userId)), so that the call is verified."""
    with open_custos() as custos:
        secret = guarded(lambda: keys.identity_secret(custos, name))
    err.print(f"identity secret of {name}: keep it on your servers, never in a page:")
    print(secret)


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
