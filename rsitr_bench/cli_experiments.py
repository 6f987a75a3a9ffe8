"""CLI commands over many runs: sweep, report, check. Registered on the app in cli.py."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the sweep, report and check commands to ``app``."""
