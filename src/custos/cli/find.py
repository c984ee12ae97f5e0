"""Finding people and what custos holds: ``profile list``, ``profile search``, ``sources list``,
``consent purposes``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import orjson
import typer

from custos.cli.common import (
    AsJson,
    ReadPurpose,
    app,
    consent_app,
    guarded,
    open_custos,
    out,
    profile_app,
    table_of,
)
from custos.service import api_reads, search

sources_app = typer.Typer(help="The sources data came from.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")

Limit = Annotated[int, typer.Option("--limit", min=1, max=1000, help="Profiles per page.")]
Cursor = Annotated[
    str | None, typer.Option("--cursor", help="The next cursor a page printed: the page after.")
]


@profile_app.command("list")
def profile_list(
    purpose: ReadPurpose = None, limit: Limit = 50, cursor: Cursor = None, as_json: AsJson = False
) -> None:
    """List the profiles the purpose may see, in id order, a page at a time (audited)."""
    with open_custos() as custos:
        chosen = purpose or custos.settings.purpose
        items, next_cursor = guarded(
            lambda: api_reads.profile_page(custos, chosen, actor="cli", limit=limit, after=cursor)
        )
    rows = [
        {
            "profile_id": i["profile_id"],
            "name": " ".join(i[k] for k in ("first_name", "last_name") if i.get(k)) or None,
            "email": i.get("email"),
            "phone": i.get("phone"),
        }
        for i in items
    ]
    _print_page(f"profiles {chosen} may see", rows, next_cursor, as_json)


@profile_app.command("search")
def profile_search(
    query: Annotated[str, typer.Argument(help="A name (fuzzy), e-mail, phone or profile id.")],
    by: Annotated[
        str | None,
        typer.Option("--by", help="name, email, phone or id (default: from the query's form)."),
    ] = None,
    purpose: ReadPurpose = None,
    limit: Limit = 20,
    cursor: Cursor = None,
    as_json: AsJson = False,
) -> None:
    """Find profiles by name (fuzzy), e-mail (or its beginning), phone or id, best first, with
    only what the purpose may see; a search by a field it may not see is refused (audited)."""
    with open_custos() as custos:
        chosen = purpose or custos.settings.purpose
        items, next_cursor = guarded(
            lambda: search.search(
                custos, query, chosen, actor="cli", by=by, limit=limit, cursor=cursor
            )
        )
    _print_page(f"matches {chosen} may see", items, next_cursor, as_json)


def _print_page(
    title: str, items: list[dict[str, Any]], next_cursor: str | None, as_json: bool
) -> None:
    """A page of profiles as a table (or JSON), and how to get the next page."""
    if as_json:
        out.print_json(orjson.dumps({"items": items, "next_cursor": next_cursor}).decode())
        return
    columns = ["profile_id", "name", "email", "phone"] + (
        ["score"] if items and "score" in items[0] else []
    )
    table = table_of(f"{title} ({len(items)})", *columns)
    for item in items:
        table.add_row(*("" if item.get(c) is None else str(item[c]) for c in columns))
    out.print(table)
    if next_cursor:
        out.print(f"more: --cursor {next_cursor}")


@sources_app.command("list")
def sources_list(as_json: AsJson = False) -> None:
    """Each source: kind, rows stored, last ingestion, quarantined rows."""
    with open_custos() as custos:
        found = search.sources(custos)
    columns = ("source", "kind", "rows", "last ingested", "quarantined")
    _print_items(
        "sources",
        columns,
        found,
        as_json,
        lambda s: (
            s["name"],
            s["kind"],
            str(s["rows"]),
            (s["last_ingested_at"] or "")[:19],
            str(s["quarantine_open"]),
        ),
    )


@consent_app.command("purposes")
def consent_purposes(as_json: AsJson = False) -> None:
    """The purposes of the taxonomy: lawful basis, what each is for, the categories it may use."""
    with open_custos() as custos:
        found = search.purposes(custos)
    columns = ("purpose", "basis", "categories", "description")
    _print_items(
        "purposes",
        columns,
        found,
        as_json,
        lambda p: (p["name"], p["basis"], ", ".join(p["categories"]), p["description"]),
    )


def _print_items(
    noun: str,
    columns: Sequence[str],
    found: list[dict[str, Any]],
    as_json: bool,
    cells: Callable[[dict[str, Any]], Sequence[str]],
) -> None:
    """A list as JSON (``{"items": [...]}``) or as a table titled with its length."""
    if as_json:
        out.print_json(orjson.dumps({"items": found}).decode())
        return
    table = table_of(f"{noun} ({len(found)})", *columns)
    for item in found:
        table.add_row(*cells(item))
    out.print(table)
