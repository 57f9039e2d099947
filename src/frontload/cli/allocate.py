"""`fl allocate`: fit, solve, explain, and the loop (design, experiments, verify)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from frontload.allocate.design import write_sweep
from frontload.allocate.experiments import build_table, pools_path, workspace_pools, write_csv
from frontload.allocate.explain import explain
from frontload.allocate.fit import fit_model, read_corpora, read_table
from frontload.allocate.ladder import fit_runs, format_ladder, write_ladder
from frontload.allocate.paper import study_corpora
from frontload.allocate.solve import solve_file
from frontload.allocate.verify import check_corpora, format_table, verify_plan
from frontload.cli.common import WorkspaceOption, workspace_from
from frontload.config import dump_yaml, load_yaml
from frontload.errors import FrontloadError, InputError
from frontload.plan import load_plan, resolve_plan
from frontload.study.sweep import Loop, LoopConfig

app = typer.Typer(help="Fit the response model, solve the allocation.", no_args_is_help=True)


@app.command()
def fit(
    experiments: Annotated[
        Path | None,
        typer.Argument(
            help="Experiments CSV (fl allocate experiments --out) or the study's results.csv; "
            "omit with --workspace."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model YAML to write.")] = Path(
        "model.yaml"
    ),
    corpora: Annotated[
        Path | None,
        typer.Option(
            help="YAML whose `corpora` describe the table's corpora, or a pools file (default: "
            "the workspace's corpora; for an experiments CSV its RUNS.pools.yaml; for the "
            "study's table the study's corpora)."
        ),
    ] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the spread.")] = 50,
    workspace: WorkspaceOption = None,
    metric: Annotated[
        str | None,
        typer.Option(help="Fit the workspace's runs on this metric (bpb, score...)."),
    ] = None,
    repeats: Annotated[
        int,
        typer.Option(min=1, help="Fold seeds of the ladder's repeated nested CV (>= 20)."),
    ] = 20,
) -> None:
    """Fit the response model. Runs (the workspace's with --workspace, or an experiments CSV):
    the ladder of models on grouped folds, and a model file for the best rung. The study's table:
    sign-constrained least squares + prior, with its held-out error."""
    if experiments is None:  # the runs in the catalog
        ws = workspace_from(workspace)
        rows = build_table(ws, metric or "bpb")
        pools = read_corpora(corpora) if corpora else workspace_pools(ws, rows)
        return fit_ladder(rows, pools, metric or "bpb", out, bootstrap, repeats)
    kind, rows = read_table(experiments)
    if kind == "runs":  # the same runs, exported: the same ladder
        table_metric = rows[0]["metric"]
        if metric not in (None, table_metric):
            raise InputError(
                f"--metric {metric}: {experiments} holds {table_metric}",
                f"export the table on {metric}: fl allocate experiments --metric {metric}",
            )
        pools = read_corpora(corpora or _pools_beside(experiments))
        return fit_ladder(rows, pools, table_metric, out, bootstrap, repeats)
    fit_study(rows, read_corpora(corpora) if corpora else study_corpora(), out, bootstrap)


def _pools_beside(table: Path) -> Path:
    """The pools file `fl allocate experiments` wrote beside the table."""
    path = pools_path(table)
    if not path.is_file():
        raise InputError(
            f"{table}: no pools file {path} beside it (the corpora the ladder's features read)",
            "export the table with `fl allocate experiments --out` in the runs' workspace (it "
            "writes both), or describe the corpora with --corpora YAML",
        )
    return path


def fit_study(rows: list[dict], specs, out: Path, bootstrap: int) -> None:
    """The study-table fit: every category, settings by leave-one-run-out, the nested error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fallbacks are printed below from the fit report
        model = fit_model(rows, specs, bootstrap=bootstrap)
    dump_yaml(model, out)
    report = model.fit
    typer.echo(f"wrote {out}: {report.runs} runs per category, settings {model.settings}")
    typer.echo(
        "  held-out RMSE, leaving out one run: nested (settings re-chosen without it) and, "
        "optimistic, with the settings chosen on all runs"
    )
    for cat in model.categories:
        nested = report.nested_rmse.get(cat, float("nan"))
        rmse = report.loro_rmse.get(cat, float("nan"))
        rank = report.ranking_accuracy.get(cat, float("nan"))
        typer.echo(
            f"  {cat:<12} nested {nested:5.2f}  (settings on all runs {rmse:5.2f})  "
            f"pairwise ranking {rank:.2f}"
        )
    avg = "avg" if "avg" in model.categories else next(iter(model.categories))
    spread = report.spread.get(avg, {})
    typer.echo(f"  {avg} coefficients (bootstrap std):")
    for term, value in model.categories[avg].coefs.items():
        typer.echo(f"    {term:<16}{value:8.2f}  +- {spread.get(term, 0.0):.2f}")
    if report.unidentified:
        typer.echo(f"  pinned to the prior (not identified): {', '.join(report.unidentified)}")
    for warning in report.warnings:
        typer.secho(f"  warning: {warning}", fg="yellow")


@app.command()
def solve(
    config: Annotated[Path, typer.Argument(help="Allocate config YAML.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Plan YAML (default: plans/<name>.yaml).")
    ] = None,
    workspace: WorkspaceOption = None,
    solver: Annotated[
        str | None, typer.Option(help="conic, lp or milp (overrides the config).")
    ] = None,
) -> None:
    """Solve the allocation; write the plan (YAML + JSON twin) and print it."""

    plan, path = solve_file(config, workspace_from(workspace), out, solver)
    typer.echo(explain(plan))
    typer.echo(f"\nwrote {path} and {path.with_suffix('.json')}")


@app.command("explain")
def explain_cmd(
    plan: Annotated[str, typer.Argument(help="Plan: a YAML/JSON file or a plan name.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Print a plan as a table with a short explanation of why (`fl data blend-export --plan`
    exports a phase for other trainers)."""
    typer.echo(explain(resolve_plan(plan, workspace_from(workspace).plans_dir)))


# The loop: design -> run -> fit (above, --workspace) -> solve -> verify (issue 14)


@app.command()
def design(
    config: Annotated[Path, typer.Argument(help="Allocate config YAML (bounds, budgets, caps).")],
    runs: Annotated[int, typer.Option("--runs", min=1, help="Design points, anchors included.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Sweep folder to write.")],
    criterion: Annotated[str, typer.Option(help="space-filling or d-optimal.")] = "space-filling",
    seed: Annotated[int, typer.Option(help="Seed of the random candidates.")] = 0,
    workspace: WorkspaceOption = None,
) -> None:
    """N feasible two-phase plans: the study's arms, proportional, UniMax, the current optimum,
    then space-filling or D-optimal points."""

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # solver accuracy chatter
        sweep, path = write_sweep(config, runs, out, workspace_from(workspace), criterion, seed)
    for point in sweep.points:
        predicted = "-" if point.predicted is None else f"{point.predicted:.2f}"
        typer.echo(
            f"  {point.kind:<7}{point.name:<40}predicted {predicted:>8}  {point.description}"
        )
    for note in sweep.notes:
        typer.secho(f"  note: {note}", fg="yellow")
    typer.echo(f"wrote {path} and {len(sweep.points)} plans under {path.parent / 'plans'}")


@app.command("experiments")
def experiments_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write.")] = Path("runs.csv"),
    metric: Annotated[str, typer.Option(help="Summary metric (bpb, score, ...).")] = "bpb",
    stage: Annotated[str, typer.Option(help="sft (models after SFT) or pretrain.")] = "sft",
    workspace: WorkspaceOption = None,
) -> None:
    """Export the experiments table built from the catalog (realized allocations + metrics)."""

    ws = workspace_from(workspace)
    rows = build_table(ws, metric, stage)
    try:
        pools = workspace_pools(ws, rows)
    except FrontloadError as error:  # the table is still worth having; fit it with --corpora
        pools = None
        typer.secho(f"note: no pools file: {error.message}", fg="yellow")
    path = write_csv(rows, out, pools)
    runs = len({r["run"] for r in rows})
    typer.echo(f"wrote {path}: {runs} runs, {len(rows)} rows (run x category), metric {metric}")
    if pools is not None:
        typer.echo(
            f"wrote {pools_path(path)}: the pools of {', '.join(pools.corpora)} "
            f"(`fl allocate fit {path}` fits the ladder from these two files)"
        )


def fit_ladder(
    rows: list[dict], pools, metric: str, out: Path, bootstrap: int, repeats: int = 20
) -> None:
    """The ladder on the runs, then the model file (and ladder.json beside it) that solves with
    the best rung."""

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_runs(rows, pools, metric, bootstrap, repeats=repeats)
    dump_yaml(result.model, out)
    ladder_path = write_ladder(result.ladder, out.parent / "ladder.json")
    typer.echo(format_ladder(result.ladder))
    typer.echo(f"structured model's settings (chosen on all runs): {result.model.settings}")
    typer.echo(
        f"wrote {out} (solves and predicts with {result.model.rung}; {bootstrap} bootstrap "
        f"draws, settings re-chosen in each) and {ladder_path}"
    )


@app.command()
def verify(
    plan: Annotated[Path, typer.Argument(help="Solved plan YAML (fl allocate solve).")],
    loop: Annotated[
        Path, typer.Option("--loop", help="Loop file whose recipes, seeds and evaluation to use.")
    ],
    model: Annotated[Path, typer.Option("--model", help="Fitted model (fl allocate fit).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Train the plan and its baselines (proportional, UniMax, the study's recipe at the plan's
    reasoning share, the best design point observed) on fresh seeds; print predicted (interval)
    next to realized, and each comparison's paired 95% interval and verdict."""

    ws = workspace_from(workspace)
    check_corpora(load_plan(plan), ws, plan)
    config = load_yaml(loop, LoopConfig)
    runner = Loop(config, loop.resolve().parent, ws)
    key = runner.study.data_stages()
    result = verify_plan(plan, model, runner, key, config.fit.metric)
    typer.echo(format_table(result))
