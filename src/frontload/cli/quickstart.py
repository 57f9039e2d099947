"""`fl quickstart`: not built yet (issue 2)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="quickstart (not built yet: issue 2).", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def placeholder() -> None:
    not_built("quickstart", "issue 2")
