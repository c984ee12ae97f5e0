"""The README stays true: every CLI command and every setting is documented."""

from __future__ import annotations

from pathlib import Path

import typer.main

from custos import Custos
from custos.cli import app
from custos.core.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group: typer.Typer, prefix: str = "custos") -> list[str]:
    click_group = typer.main.get_command(group)
    names: list[str] = []

    def walk(command: object, path: str) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, f"{path} {name}")
        else:
            names.append(path)

    walk(click_group, prefix)
    return names


def test_every_cli_command_is_in_the_readme() -> None:
    commands = _commands(app)
    assert "custos export xref" in commands and "custos profile show" in commands
    missing = [c for c in commands if f"`{c}" not in README]
    assert missing == []


def test_every_setting_is_in_the_readme() -> None:
    missing = [
        f"CUSTOS_{name.upper()}"
        for name in Settings.model_fields
        if f"`CUSTOS_{name.upper()}`" not in README
    ]
    assert missing == []


def test_quick_start_has_exactly_two_commands_and_they_exist() -> None:
    block = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert lines == ["./scripts/demo", "./scripts/test"]
    root = Path(__file__).parents[1]
    assert (root / "scripts" / "demo").exists() and (root / "scripts" / "test").exists()
    assert "scripts/test" in (root / ".ci" / "run").read_text()


def test_public_api_is_exported() -> None:
    assert Custos.open.__doc__


def _reference(chapter: str) -> str:
    """One chapter of the README (up to the next ``## `` heading)."""
    return README.split(f"\n## {chapter}\n", 1)[1].split("\n## ", 1)[0]


def test_every_rest_route_is_in_the_readme_and_every_listed_route_exists(tmp_path: Path) -> None:
    """Issue 17 item 11: the REST reference lists the app's routes, as the CLI reference lists
    the commands (a new route needs only its row)."""
    import re

    from custos.api.app import create_app

    schema = create_app(Settings(db=str(tmp_path / "c.db"))).openapi()
    routes = {f"{method.upper()} {path}" for path, ops in schema["paths"].items() for method in ops}
    assert "GET /v1/profiles" in routes and "POST /v1/batch" in routes
    listed = set(re.findall(r"^\| `([A-Z]+ /[^`]*)` \|", _reference("REST reference"), re.M))
    assert sorted(routes - listed) == []  # undocumented routes
    assert sorted(listed - routes) == []  # documented routes the app does not have


def _help(*args: str) -> str:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_readme_and_help_agree_on_the_shipped_model_threshold_and_the_file_types() -> None:
    """Issue 17 item 11: the README and --help named different file types and no threshold."""
    from custos.identity.matcher import MIN_TRAINING_RECORDS
    from custos.ingest.readers import READERS

    threshold = f"fewer than {MIN_TRAINING_RECORDS:,} records"
    assert threshold in _help("resolve")
    assert threshold in " ".join(_reference("CLI reference").split())
    assert threshold in " ".join(README.split("**Probabilistic matching**", 1)[1].split())
    ingest_help, ingest_row = (
        _help("ingest"),
        _reference("CLI reference").split("`custos ingest ")[1],
    )
    for reader in READERS:
        for extension in reader.extensions:
            assert extension in ingest_help
            assert f"`{extension}`" in ingest_row.split("\n", 1)[0]


def test_no_flag_shows_a_type_in_help() -> None:
    """Issue 17 item 11: every flag showed `<bool>` as if it took a value."""
    shown = [c for c in _commands(app) if "<bool>" in _help(*c.split()[1:])]
    assert shown == []
    assert "--retrain" in _help("resolve") and "<str>" in _help("serve")  # values keep theirs
