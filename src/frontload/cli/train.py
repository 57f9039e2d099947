"""`fl train`: info (parameter counts of a preset), pretrain (FSDP2, one process or torchrun on one or
several machines), sft and rl (TRL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from frontload.cli.common import WorkspaceOption, refresh_catalog, workspace_from
from frontload.errors import ConfigError
from frontload.plan import resolve_plan
from frontload.train.launch import Nodes, launch_pretraining
from frontload.train.posttrain.recipe import load_rl_recipe, load_sft_recipe
from frontload.train.posttrain.rl import rl as run_rl
from frontload.train.posttrain.sft import sft as run_sft
from frontload.train.recipe import load_recipe
from frontload.workspace import Workspace

app = typer.Typer(
    help="Train models: info, pretrain (FSDP2), sft and rl (TRL).", no_args_is_help=True
)


@app.command("info")
def info(
    preset: Annotated[str, typer.Argument(help="Model preset: tiny, 125m, 350m, 1b, 8b.")],
    override: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a config field, FIELD=VALUE (JSON value); repeatable."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOption = None,  # accepted by every command (see cli/common.py)
) -> None:
    """Parameter counts per layer type and in total for a model preset."""
    # The model package is torch and transformers (seconds to import): loaded by this command
    # only, so `fl train --help` and the other commands start without it.
    from frontload.model.config import preset as make_preset
    from frontload.model.hybrid import parameter_counts

    config = make_preset(preset, **_parse_overrides(override or []))
    counts = parameter_counts(config)
    if as_json:
        typer.echo(json.dumps({"preset": preset, "pattern": config.layer_pattern, **counts}))
        return
    layers = {kind: config.layer_kinds.count(kind) for kind in ("mamba", "attention", "mlp")}
    table = Table(title=f"{preset}: {config.layer_pattern} (d_model {config.hidden_size})")
    for column in ("part", "layers", "parameters", "share"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for part, count in counts.items():
        share = "" if part == "total" else f"{count / counts['total']:.1%}"
        table.add_row(part, str(layers.get(part, "")), f"{count:,}", share)
    Console().print(table)
    total = counts["total"]
    typer.echo(
        f"total: {total / 1e9:.3f}B parameters"
        if total >= 1e8
        else f"total: {total / 1e6:.3f}M parameters"
    )


@app.command("pretrain")
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
    loaded = resolve_plan(plan, ws.plans_dir) if plan else None
    run_dir = launch_pretraining(parsed, ws, loaded, resume, nodes)
    if node_rank == 0:
        _report(ws, run_dir)


RecipeArgument = Annotated[Path, typer.Argument(help="Recipe YAML.", show_default=False)]
FreshOption = Annotated[
    bool, typer.Option("--fresh", help="Ignore existing checkpoints of the run and start over.")
]


@app.command("sft")
def sft(
    recipe: RecipeArgument,
    plan: Annotated[
        str | None,
        typer.Option(
            "--plan",
            help="Plan (a YAML/JSON file or a plan name in the workspace) whose sft phase gives "
            "the mixture: each corpus served within one example of the plan's tokens.",
        ),
    ] = None,
    fresh: FreshOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Supervised fine-tuning (TRL SFTTrainer): assistant-only loss, packing; resumes by default."""
    ws = workspace_from(workspace)
    loaded = resolve_plan(plan, ws.plans_dir) if plan else None
    result = run_sft(load_sft_recipe(recipe), ws, loaded, resume=not fresh)
    before = "-" if result.eval_loss_before is None else f"{result.eval_loss_before:.3f}"
    after = "-" if result.eval_loss_after is None else f"{result.eval_loss_after:.3f}"
    typer.echo(
        f"sft: {result.steps} steps on {result.train_records} conversations; held-out assistant "
        f"loss {before} -> {after}; model in {result.hf_dir}"
    )


@app.command("rl")
def rl(
    recipe: RecipeArgument, fresh: FreshOption = False, workspace: WorkspaceOption = None
) -> None:
    """GRPO (TRL GRPOTrainer) with verifiable rewards; resumes by default."""
    result = run_rl(load_rl_recipe(recipe), workspace_from(workspace), resume=not fresh)
    first = "-" if result.reward_first is None else f"{result.reward_first:.3f}"
    last = "-" if result.reward_last is None else f"{result.reward_last:.3f}"
    typer.echo(
        f"rl: {result.steps} steps on {result.prompts} prompts; mean reward {first} -> {last}; "
        f"{result.reward_errors} reward errors skipped; model in {result.hf_dir}"
    )


def _report(ws: Workspace, run_dir: Path) -> None:
    """Register the run's metrics.jsonl in the catalog (`train_metrics`) and say where it is."""
    refresh_catalog(ws)
    typer.echo(f"run folder: {run_dir}")
    typer.echo(
        f"loss curve: fl stats \"SELECT step, loss FROM train_metrics WHERE run = '{run_dir.name}'"
        " AND kind = 'train' ORDER BY step\""
    )


def _parse_overrides(items: list[str]) -> dict[str, object]:
    parsed: dict[str, object] = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r} is not FIELD=VALUE", "e.g. --set vocab_size=50000")
        try:
            parsed[field] = json.loads(value)
        except json.JSONDecodeError:
            parsed[field] = value
    return parsed
