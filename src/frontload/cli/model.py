"""`fl model`: not built yet (issue 6)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="model (not built yet: issue 6).", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def placeholder() -> None:
    not_built("model", "issue 6")
