"""`fl run PIPELINE.yaml`: a whole study or loop, resumable (`make demo` is `fl run` on the tiny study)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from
from frontload.study.pipeline import run_pipeline
from frontload.study.report import print_stage_tables, print_tables
from frontload.study.sweep import is_loop, run_loop

app = typer.Typer()


@app.command("run")
def run(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML (e.g. recipes/tiny/study.yaml).")],
    workspace: WorkspaceOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace results another pipeline left in the workspace."),
    ] = False,
    stage_tables: Annotated[
        bool,
        typer.Option(
            "--stage-tables",
            help="Before the study tables, print what the data stages made: curation counts, "
            "the corpora and the plan (as `make demo` does).",
        ),
    ] = False,
) -> None:
    """Run curate -> tokenizer -> allocate -> pretrain -> SFT -> RL -> evaluate -> report, skipping
    stages that are up to date; rerun the same command to resume."""
    ws = workspace_from(workspace)
    if is_loop(pipeline):  # design -> sweep -> fit -> solve -> verify
        loop = run_loop(pipeline, ws, force=force)
        typer.echo(loop.summary())
        return typer.echo(f"page: {loop.html}")
    study = run_pipeline(pipeline, ws, force=force)
    md_path, png_path, tables = study.report
    if stage_tables:
        print_stage_tables(ws, study.folder / "plan.yaml")
    print_tables(tables)
    typer.echo(
        f"ran {len(study.state.ran)} stages, skipped {len(study.state.skipped)} up to date; "
        f"report: {md_path} and {png_path}; page: {study.html}"
    )
