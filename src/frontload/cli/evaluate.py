"""CLI for evaluate (placeholder until issue 8 lands)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="Not built yet (issue 8).")


@app.callback(invoke_without_command=True)
def _app_placeholder() -> None:
    not_built("evaluate", "issue 8")


def report_eval() -> None:
    """Not built yet (issue 8)."""
    not_built("report_eval", "issue 8")
