"""The `fl` command: the one wiring file.

Each command group lives in its own module (`fl curate` in cli/curate.py, `fl train` in
cli/train.py, ...) that imports its stage at module level. The tree below mounts a group's module
only when that group runs, so `fl --help` imports no stage (nor torch, datatrove, DuckDB); library
errors are mapped to one-line advice in `main()`.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

from frontload.errors import FrontloadError
from frontload.progress import configure_logging


class Mount(NamedTuple):
    """Where `fl NAME` lives: its module (which exposes a Typer `app`), the one-line summary that
    `fl --help` shows, and whether it is a group of commands or one command (`fl run`)."""

    module: str
    summary: str
    group: bool = True


# Every `fl NAME`, in the order `fl --help` lists them.
COMMANDS: dict[str, Mount] = {
    "run": Mount(
        "frontload.cli.run",
        "Run a whole pipeline (curate -> ... -> report), resumable.",
        group=False,
    ),
    "quickstart": Mount("frontload.cli.quickstart", "Sample data to try the pipeline on."),
    "curate": Mount("frontload.cli.curate", "Raw dumps -> pool -> corpora."),
    "data": Mount("frontload.cli.data", "Token shards and blends."),
    "tokenizer": Mount("frontload.cli.tokenizer", "Train and inspect tokenizers."),
    "allocate": Mount("frontload.cli.allocate", "Fit the response model, solve the allocation."),
    "model": Mount("frontload.cli.model", "Hybrid model: export/import (NemotronH)."),
    "train": Mount(
        "frontload.cli.train", "Train models: info, pretrain (FSDP2), sft and rl (TRL)."
    ),
    "evaluate": Mount("frontload.cli.evaluate", "Benchmarks, grading, avg@k and pass@k."),
    "stats": Mount("frontload.cli.stats", "SQL over the workspace catalog."),
    "report": Mount(
        "frontload.cli.report",
        "Tables and PNG charts of corpora, plans, evaluations and the study; the HTML page.",
    ),
}


class CommandTree(TyperGroup):
    """The top-level group: lists every command from COMMANDS, imports a module on first use.

    Help listings read the summary in COMMANDS; running (or completing) `fl NAME ...` goes through
    `resolve_command`, which mounts the module's Typer app first.
    """

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            return TyperCommand(
                cmd_name, help=COMMANDS[cmd_name].summary
            )  # what a help listing shows
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
        if args and args[0] in COMMANDS:
            self.mount(args[0])
        return super().resolve_command(ctx, args)

    def mount(self, name: str) -> Any:
        """The command `fl NAME`, its module imported and its Typer app built once."""
        if name not in self.commands:
            mount = COMMANDS[name]
            app = importlib.import_module(mount.module).app
            command = typer.main.get_group(app) if mount.group else typer.main.get_command(app)
            command.name = name
            command.help = command.help or mount.summary
            self.add_command(command, name)
        return self.commands[name]


app = typer.Typer(
    name="fl",
    cls=CommandTree,
    help="frontload: curate reasoning data, allocate it between pretraining and SFT, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False, "--verbose", help="Full log lines (timestamps, module) and every library warning."
    ),
) -> None:
    """frontload: curate reasoning data, allocate it between pretraining and SFT, train, evaluate."""
    configure_logging(verbose)


def command_tree() -> CommandTree:
    """The whole `fl` tree with every group mounted (for tests and docs that walk all commands)."""
    tree = typer.main.get_command(app)
    assert isinstance(tree, CommandTree)
    for name in COMMANDS:
        tree.mount(name)
    return tree


STATS_COMMANDS = {"query", "summary", "compare", "views", "rebuild", "--help"}


def route_bare_sql(argv: list[str]) -> list[str]:
    """`fl stats "SELECT ..."` is shorthand for `fl stats query "SELECT ..."`."""
    if (
        len(argv) > 2
        and argv[1] == "stats"
        and argv[2] not in STATS_COMMANDS
        and not argv[2].startswith("-")
    ):
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
    except OSError as error:  # a user path that cannot be read or written: permissions, disk full
        if os.environ.get("FL_DEBUG"):
            raise
        where = f"{error.filename}: " if error.filename else ""
        typer.secho(f"error: {where}{error.strerror or error}", fg="red", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun the same command to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
