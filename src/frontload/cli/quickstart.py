"""CLI for quickstart (placeholder until issue 2 lands)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="Not built yet (issue 2).")


@app.callback(invoke_without_command=True)
def _app_placeholder() -> None:
    not_built("quickstart", "issue 2")
