"""The `fl` command: the one wiring file. Each stage's CLI module owns its commands; they are mounted
here, and library errors are mapped to one-line advice in `main()`."""

from __future__ import annotations

import os
import sys

import typer

from frontload.cli import (
    allocate,
    corpora,
    curate,
    data,
    evaluate,
    model,
    pipeline,
    posttrain,
    pretrain,
    quickstart,
    stats,
    tokenizer,
)
from frontload.errors import FrontloadError

app = typer.Typer(
    name="fl",
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
    from frontload.progress import configure_logging

    configure_logging(verbose)


# Curation: `fl curate run`, plus quality scoring and corpus rules from the corpora module.
curate.app.add_typer(corpora.quality_app, name="quality")
curate.app.command("corpora")(corpora.corpora)

# Training: model info, pretraining, post-training.
train = typer.Typer(
    help="Train models: info, pretrain (FSDP2), sft and rl (TRL).", no_args_is_help=True
)
train.command("info")(model.train_info)
train.command("pretrain")(pretrain.pretrain)
train.command("sft")(posttrain.sft)
train.command("rl")(posttrain.rl)

# Queries and reports over the workspace.
stats.app.command("summary")(curate.stats_summary)
stats.app.command("compare")(corpora.stats_compare)
report = typer.Typer(help="Tables and PNG charts of corpora, plans, evaluations and the study.")
report.command("corpora")(corpora.report_corpora)
report.command("plan")(allocate.report_plan)
report.command("eval")(evaluate.report_eval)
report.command("study")(pipeline.report_study)

app.add_typer(quickstart.app, name="quickstart", help="Sample data and the end-to-end demo.")
app.add_typer(curate.app, name="curate", help="Raw dumps -> pool -> corpora.")
app.add_typer(data.app, name="data", help="Token shards and blends.")
app.add_typer(tokenizer.app, name="tokenizer", help="Train and inspect tokenizers.")
app.add_typer(allocate.app, name="allocate", help="Fit the response model, solve the allocation.")
app.add_typer(model.app, name="model", help="Hybrid model: export/import (NemotronH).")
app.add_typer(train, name="train")
app.add_typer(evaluate.app, name="evaluate", help="Benchmarks, grading, avg@k and pass@k.")
app.add_typer(stats.app, name="stats", help="SQL over the workspace catalog.")
app.add_typer(report, name="report")
app.command("run", help="Run a whole pipeline (curate -> ... -> report), resumable.")(pipeline.run)

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
