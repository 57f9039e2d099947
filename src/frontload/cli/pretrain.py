"""`fl train pretrain RECIPE.yaml`: one process here, or torchrun with --nproc N."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, refresh_catalog, workspace_from
from frontload.errors import TrainingError
from frontload.workspace import Workspace


def pretrain(
    recipe: Annotated[Path, typer.Argument(help="Pretraining recipe (recipes/*/pretrain_*.yaml).")],
    plan: Annotated[
        str | None,
        typer.Option(
            help="Plan (a YAML/JSON file or a plan name in the workspace) whose pretraining "
            "phases give the blend, the phases and the budget."
        ),
    ] = None,
    nproc: Annotated[
        int, typer.Option(min=1, help="Processes on this machine (>1 launches torchrun + FSDP2).")
    ] = 1,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the run's latest checkpoint.")
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Pretrain the hybrid model from a recipe (FSDP2 with --nproc > 1), resumable."""
    from frontload.train.recipe import load_recipe

    parsed = load_recipe(recipe)  # errors before any process starts
    ws = workspace_from(workspace)
    loaded_plan = None
    if plan is not None:
        from frontload.allocate.plan import resolve_plan
        from frontload.train.phases import plan_tokens

        loaded_plan = resolve_plan(ws, plan)
        plan_tokens(parsed, loaded_plan)  # a recipe that contradicts the plan fails here
    if nproc > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            "-m",
            "frontload.train.pretrain",
            str(recipe),
            f"--workspace={ws.root}",
        ]
        command += [f"--plan={plan}"] if plan else []
        command += ["--resume"] if resume else []
        code = subprocess.run(command, check=False).returncode
        if code:
            raise TrainingError(
                f"torchrun exited with status {code}", "see the first error printed above"
            )
        _report(ws, ws.runs_dir / parsed.name)
        return
    from frontload.train.pretrain import pretrain as run_pretrain

    _report(ws, run_pretrain(parsed, ws, loaded_plan, resume))


def _report(ws: Workspace, run_dir: Path) -> None:
    """Register the run's metrics.jsonl in the catalog (`train_metrics`) and say where it is."""
    refresh_catalog(ws)
    typer.echo(f"run folder: {run_dir}")
    typer.echo(
        f"loss curve: fl stats \"SELECT step, loss FROM train_metrics WHERE run = '{run_dir.name}'"
        " AND kind = 'train' ORDER BY step\""
    )
