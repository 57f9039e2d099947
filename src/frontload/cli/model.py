"""CLI for model (placeholder until issue 6 lands)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="Not built yet (issue 6).")


@app.callback(invoke_without_command=True)
def _app_placeholder() -> None:
    not_built("model", "issue 6")


def train_info() -> None:
    """Not built yet (issue 6)."""
    not_built("train_info", "issue 6")
