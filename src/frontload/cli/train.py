"""`fl train`: not built yet (issue 7/9)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="train (not built yet: issue 7/9).", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def placeholder() -> None:
    not_built("train", "issue 7/9")
