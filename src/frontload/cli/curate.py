"""CLI for curate (placeholder until issue 2 lands)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="Not built yet (issue 2).")


@app.callback(invoke_without_command=True)
def _app_placeholder() -> None:
    not_built("curate", "issue 2")


def stats_summary() -> None:
    """Not built yet (issue 2)."""
    not_built("stats_summary", "issue 2")
