"""`fl train pretrain RECIPE.yaml`: one process here, or torchrun on one or several machines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, refresh_catalog, workspace_from
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
        int | None,
        typer.Option(
            min=1,
            help="Processes on this machine (>1 launches torchrun + FSDP2); default: the "
            "recipe's parallel.nproc_per_node.",
        ),
    ] = None,
    nnodes: Annotated[
        int, typer.Option(min=1, help="Machines in the job (run this command on each).")
    ] = 1,
    node_rank: Annotated[int, typer.Option(min=0, help="This machine's number, 0..nnodes-1.")] = 0,
    rdzv_endpoint: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT all machines meet at (node 0's address); needed for nnodes>1."
        ),
    ] = None,
    rdzv_timeout: Annotated[
        int, typer.Option(min=1, help="Seconds to wait for every machine to join.")
    ] = 600,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the run's latest checkpoint.")
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Pretrain the hybrid model from a recipe (FSDP2/HSDP under torchrun), resumable.

    Several machines: run the same command on each with --nnodes, its own --node-rank and the
    same --rdzv-endpoint.
    """
    from frontload.train.launch import Nodes, launch_pretraining
    from frontload.train.recipe import load_recipe

    parsed = load_recipe(recipe)  # errors before any process starts
    ws = workspace_from(workspace)
    nodes = Nodes(
        nproc_per_node=nproc or parsed.parallel.nproc_per_node,
        nnodes=nnodes,
        node_rank=node_rank,
        rdzv_endpoint=rdzv_endpoint,
        rdzv_timeout=rdzv_timeout,
        rdzv_id=parsed.name,
    )
    run_dir = launch_pretraining(parsed, ws, plan, resume, nodes, recipe_path=recipe)
    if node_rank == 0:
        _report(ws, run_dir)


def _report(ws: Workspace, run_dir: Path) -> None:
    """Register the run's metrics.jsonl in the catalog (`train_metrics`) and say where it is."""
    refresh_catalog(ws)
    typer.echo(f"run folder: {run_dir}")
    typer.echo(
        f"loss curve: fl stats \"SELECT step, loss FROM train_metrics WHERE run = '{run_dir.name}'"
        " AND kind = 'train' ORDER BY step\""
    )
