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
