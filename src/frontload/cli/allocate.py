"""CLI for allocate (placeholder until issue 5 lands)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="Not built yet (issue 5).")


@app.callback(invoke_without_command=True)
def _app_placeholder() -> None:
    not_built("allocate", "issue 5")


def report_plan() -> None:
    """Not built yet (issue 5)."""
    not_built("report_plan", "issue 5")
