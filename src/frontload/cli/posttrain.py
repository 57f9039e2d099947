"""`fl train sft` and `fl train rl`: parse options, call frontload.train.posttrain.sft / frontload.train.posttrain.rl."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from

RecipeArgument = Annotated[Path, typer.Argument(help="Recipe YAML.", show_default=False)]
FreshOption = Annotated[
    bool, typer.Option("--fresh", help="Ignore existing checkpoints of the run and start over.")
]


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
    from frontload.train.posttrain.recipe import load_sft_recipe
    from frontload.train.posttrain.sft import sft as run_sft

    result = run_sft(load_sft_recipe(recipe), workspace_from(workspace), plan, resume=not fresh)
    before = "-" if result.eval_loss_before is None else f"{result.eval_loss_before:.3f}"
    after = "-" if result.eval_loss_after is None else f"{result.eval_loss_after:.3f}"
    typer.echo(
        f"sft: {result.steps} steps on {result.train_records} conversations; held-out assistant "
        f"loss {before} -> {after}; model in {result.hf_dir}"
    )


def rl(
    recipe: RecipeArgument, fresh: FreshOption = False, workspace: WorkspaceOption = None
) -> None:
    """GRPO (TRL GRPOTrainer) with verifiable rewards; resumes by default."""
    from frontload.train.posttrain.recipe import load_rl_recipe
    from frontload.train.posttrain.rl import rl as run_rl

    result = run_rl(load_rl_recipe(recipe), workspace_from(workspace), resume=not fresh)
    first = "-" if result.reward_first is None else f"{result.reward_first:.3f}"
    last = "-" if result.reward_last is None else f"{result.reward_last:.3f}"
    typer.echo(
        f"rl: {result.steps} steps on {result.prompts} prompts; mean reward {first} -> {last}; "
        f"{result.reward_errors} reward errors skipped; model in {result.hf_dir}"
    )
