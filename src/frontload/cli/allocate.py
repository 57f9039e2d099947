"""`fl allocate`: not built yet (issue 5)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="allocate (not built yet: issue 5).", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def placeholder() -> None:
    not_built("allocate", "issue 5")
