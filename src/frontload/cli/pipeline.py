"""`fl run PIPELINE.yaml` and `fl report study RUN_DIR`: call frontload.study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from


def run(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML (e.g. recipes/tiny/study.yaml).")],
    workspace: WorkspaceOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace results another pipeline left in the workspace."),
    ] = False,
) -> None:
    """Run curate -> tokenizer -> allocate -> pretrain -> SFT -> RL -> evaluate -> report, skipping
    stages that are up to date; rerun the same command to resume."""
    from frontload.study.pipeline import run_pipeline
    from frontload.study.report import print_tables
    from frontload.study.sweep import is_loop, run_loop

    if is_loop(pipeline):  # design -> sweep -> fit -> solve -> verify
        return typer.echo(run_loop(pipeline, workspace_from(workspace), force=force).summary())
    study = run_pipeline(pipeline, workspace_from(workspace), force=force)
    md_path, png_path, tables = study.report
    print_tables(tables)
    typer.echo(
        f"ran {len(study.state.ran)} stages, skipped {len(study.state.skipped)} up to date; "
        f"report: {md_path} and {png_path}"
    )


def report_study(
    run_dir: Annotated[
        Path, typer.Argument(help="Pipeline folder: <workspace>/pipeline/<name> (or its name).")
    ],
    workspace: WorkspaceOption = None,
) -> None:
    """Study-style tables (base, after SFT, after RL) next to the study's published numbers."""
    from frontload.study.report import print_tables, write_report

    ws = workspace_from(workspace)
    folder = run_dir if run_dir.is_dir() else ws.root / "pipeline" / str(run_dir)
    md_path, png_path, tables = write_report(folder, ws)
    print_tables(tables)
    typer.echo(f"wrote {md_path} and {png_path}")
