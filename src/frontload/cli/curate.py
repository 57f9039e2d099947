"""`fl curate`: not built yet (issue 2/3)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="curate (not built yet: issue 2/3).", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def placeholder() -> None:
    not_built("curate", "issue 2/3")
