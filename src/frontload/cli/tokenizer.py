"""`fl tokenizer`: not built yet (issue 4)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

app = typer.Typer(help="tokenizer (not built yet: issue 4).", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def placeholder() -> None:
    not_built("tokenizer", "issue 4")
