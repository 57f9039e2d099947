"""`fl run PIPELINE.yaml`: a whole study or loop, resumable (`make demo` is `fl run` on the tiny study)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from
from frontload.study.pipeline import run_pipeline
from frontload.study.report import print_stage_tables, print_tables
from frontload.study.sweep import is_loop, run_loop
from frontload.study.transfer import is_transfer, run_transfer
from frontload.study.transfer_report import format_transfer

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
    source: Annotated[
        Path | None,
        typer.Option("--source", help="A transfer file's source: the workspace its loop ran in."),
    ] = None,
) -> None:
    """Run curate -> tokenizer -> allocate -> pretrain -> SFT -> RL -> evaluate -> report, skipping
    stages that are up to date; rerun the same command to resume. A loop file (`sweep:`) runs
    design -> sweep -> findings -> fit -> solve -> verify; a transfer file (`source:`) trains a
    loop's arms at another scale (`--source` names the loop's workspace) and prints the transfer."""
    ws = workspace_from(workspace)
    if is_loop(pipeline):  # design -> sweep -> fit -> solve -> verify
        loop = run_loop(pipeline, ws, force=force)
        typer.echo(loop.summary())
        return typer.echo(f"page: {loop.html}")
    if is_transfer(pipeline):
        origin = workspace_from(source) if source is not None else None
        done = run_transfer(pipeline, ws, origin, force=force)
        typer.echo(format_transfer(done.report))
        return typer.echo(f"page: {done.html}")
    study = run_pipeline(pipeline, ws, force=force)
    md_path, png_path, tables = study.report
    if stage_tables:
        print_stage_tables(ws, study.folder / "plan.yaml")
    print_tables(tables)
    typer.echo(
        f"ran {len(study.state.ran)} stages, skipped {len(study.state.skipped)} up to date; "
        f"report: {md_path} and {png_path}; page: {study.html}"
    )
