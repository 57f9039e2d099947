"""`fl report`: not built yet (issues 3/5/8/9)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="report (not built yet: issues 3/5/8/9).", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def placeholder() -> None:
    not_built("report", "issues 3/5/8/9")
