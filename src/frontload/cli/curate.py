"""`fl curate run` (raw dumps -> pool) and `fl stats summary` (what curation kept and removed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from

app = typer.Typer(help="Raw dumps -> pool -> corpora.", no_args_is_help=True)


@app.command("run")
def run(
    recipe: Annotated[Path, typer.Argument(help="curation recipe (YAML)")],
    workspace: WorkspaceOption = None,
) -> None:
    """Read, normalise, clean, dedup and decontaminate the recipe's sources into the pool.

    Resumable: rerun the same command after an interruption and it finishes the same run.
    """
    from frontload.curate.pipeline import run_curation
    from frontload.curate.recipe import load_recipe

    config = load_recipe(recipe)
    ws = workspace_from(workspace)
    result = run_curation(config, ws)
    if result.submitted:
        typer.echo(
            f"submitted run {result.run_id} to {config.executor.kind}; when the jobs finish, "
            "rerun this command to publish the pool"
        )
        return
    note = " (already complete)" if result.resumed and result.steps else ""
    typer.echo(f"run {result.run_id}{note}: {result.pool_records} records in {ws.pool_dir}")
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
