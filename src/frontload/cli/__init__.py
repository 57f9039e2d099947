"""The `fl` command: one sub-app per stage, mounted here; errors mapped to one-line advice."""

from __future__ import annotations

import os
import sys

import typer

from frontload.cli import (
    allocate,
    curate,
    data,
    evaluate,
    model,
    pipeline,
    quickstart,
    report,
    stats,
    tokenizer,
    train,
)
from frontload.errors import FrontloadError

app = typer.Typer(
    name="fl",
    help="frontload: curate reasoning data, allocate it between pretraining and SFT, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(quickstart.app, name="quickstart")
app.add_typer(curate.app, name="curate")
app.add_typer(data.app, name="data")
app.add_typer(tokenizer.app, name="tokenizer")
app.add_typer(allocate.app, name="allocate")
app.add_typer(model.app, name="model")
app.add_typer(train.app, name="train")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(stats.app, name="stats")
app.add_typer(report.app, name="report")
app.command("run")(pipeline.run)


STATS_COMMANDS = {"query", "summary", "compare", "views", "rebuild", "--help"}


def route_bare_sql(argv: list[str]) -> list[str]:
    """`fl stats "SELECT ..."` is shorthand for `fl stats query "SELECT ..."`."""
    if len(argv) > 2 and argv[1] == "stats" and argv[2] not in STATS_COMMANDS:
        if not argv[2].startswith("-"):
            return [*argv[:2], "query", *argv[2:]]
    return argv


def main() -> None:
    """Entry point: library errors become `error: ...` plus a hint; FL_DEBUG=1 shows tracebacks."""
    try:
        app(args=route_bare_sql(sys.argv)[1:], prog_name="fl")
    except FrontloadError as error:
        if os.environ.get("FL_DEBUG"):
            raise
        typer.secho(f"error: {error.message}", fg="red", err=True)
        if error.hint:
            typer.echo(f"  hint: {error.hint}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun the same command to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
