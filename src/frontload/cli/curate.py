"""`fl curate run` (raw dumps -> pool) and `fl stats summary` (what curation kept and removed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from

if TYPE_CHECKING:
    from frontload.curate.pipeline import CurateResult

app = typer.Typer(help="Raw dumps -> pool -> corpora.", no_args_is_help=True)


@app.command("run")
def run(
    recipe: Annotated[Path, typer.Argument(help="curation recipe (YAML)")],
    workspace: WorkspaceOption = None,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Slurm: return once the jobs are submitted; `fl curate status` publishes later",
        ),
    ] = False,
) -> None:
    """Read, normalise, clean, dedup and decontaminate the recipe's sources into the pool.

    Resumable: rerun the same command after an interruption and it finishes the same run. On
    Slurm it waits for the jobs (or detaches with --no-wait); a rerun after a failed job submits
    only the unfinished tasks.
    """
    from frontload.curate.pipeline import run_curation
    from frontload.curate.recipe import load_recipe

    config = load_recipe(recipe)
    ws = workspace_from(workspace)
    try:
        result = run_curation(config, ws, wait=not no_wait)
    except KeyboardInterrupt:
        if config.executor.kind != "slurm":
            raise
        typer.echo("stopped waiting; the Slurm jobs keep running: `fl curate status` follows them")
        raise typer.Exit(130) from None
    if result.submitted:
        jobs = ", ".join(f"{stage} {job}" for stage, job in result.jobs.items() if job)
        typer.echo(
            f"submitted run {result.run_id} to Slurm (jobs: {jobs or 'none left to run'}); "
            "`fl curate status` reports on them and publishes the pool once they finish"
        )
        return
    print_result(result, ws.pool_dir)


@app.command("status")
def status(
    workspace: WorkspaceOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="follow the jobs until they finish, then publish")
    ] = False,
) -> None:
    """Where submitted Slurm runs stand; publishes the pool of a run whose jobs all finished.

    A failed job is an error naming the failed task's log; rerun `fl curate run` to submit the
    unfinished tasks again.
    """
    from frontload.curate.pipeline import curation_status
    from frontload.curate.publish import published_run

    ws = workspace_from(workspace)
    reports = curation_status(ws, wait=wait)
    if not reports:
        current = published_run(ws)
        typer.echo(
            "no curation run in flight; "
            + (f"the pool is from run {current}" if current else "nothing published yet")
        )
    for report in reports:
        if report.result is not None:
            print_result(report.result, ws.pool_dir)
            continue
        typer.echo(f"run {report.run_id} (submitted {report.submitted}): in flight")
        for state in report.states:
            typer.echo(f"  {state.name:<16} {state.done:>5}/{state.tasks:<5} {state.status}")


def print_result(result: CurateResult, pool_dir: Path) -> None:
    """The pool's size and the kept/removed counts and seconds of every step."""
    note = " (already complete)" if result.resumed and result.steps else ""
    typer.echo(f"run {result.run_id}{note}: {result.pool_records} records in {pool_dir}")
    width = max((len(row["step"]) for row in result.steps), default=0)
    for row in result.steps:
        seconds = f"{row['seconds']:>8.1f}s" if row.get("seconds") is not None else " " * 9
        if "kept" not in row:  # a step that only takes time (dedup signatures, buckets, ...)
            typer.echo(f"  {row['step']:<{width}} {seconds}")
            continue
        reasons = ", ".join(f"{r['reason']}={r['count']}" for r in row["reasons"])
        flagged = f" flagged {row['flagged']}" if row["flagged"] else ""
        typer.echo(
            f"  {row['step']:<{width}} {seconds} kept {row['kept']:>8} removed "
            f"{row['removed']:>7}{flagged}" + (f"  ({reasons})" if reasons else "")
        )
    if result.corpora:
        typer.echo(f"corpora: {', '.join(sorted(result.corpora))}")


def stats_summary(workspace: WorkspaceOption = None) -> None:
    """Per-step kept/removed counts and seconds, per-source and per-domain counts, token-length quantiles."""
    from frontload.cli.stats import print_table
    from frontload.curate.stats import summarize

    summary = summarize(workspace_from(workspace))
    print_table(summary.steps, title=f"curation steps (run {summary.run_id or '?'})")
    print_table(summary.sources, title="pool by source")
    print_table(summary.domains, title="pool by domain")
    print_table(summary.tokens, title="token lengths")
