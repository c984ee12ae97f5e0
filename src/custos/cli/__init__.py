"""The ``custos`` command line: parse arguments, call :mod:`custos.service`, print.

The commands and their outputs are a contract other tools rely on; keep them stable. Each module
registers its commands on the Typer apps of :mod:`custos.cli.common`.
"""

from __future__ import annotations

from custos import process
from custos.cli import consent, data, find, insight, privacy, profiles, server
from custos.cli.common import app

__all__ = ["app", "consent", "data", "find", "insight", "main", "privacy", "profiles", "server"]


def main() -> None:
    """Entry point of the ``custos`` console script."""
    process.quiet_loggers()
    app()
