"""CLI for tokenizer (placeholder until issue 4 lands)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="Not built yet (issue 4).")


@app.callback(invoke_without_command=True)
def _app_placeholder() -> None:
    not_built("tokenizer", "issue 4")
