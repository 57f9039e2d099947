"""How `fl train pretrain` hands its typed recipe and plan to torchrun workers.

The workers are new processes, so the objects reach them serialised: `runs/<name>/launch.json`,
one `Launch` model that each worker validates on reading (it also records what the last launch
trained, beside the run). An environment variable would avoid the file but caps a value at 128 KiB
on Linux, which a plan with many corpora and baselines can pass.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from frontload.config import StrictModel, validate
from frontload.errors import InputError
from frontload.plan import Plan
from frontload.train.recipe import PretrainRecipe
from frontload.workspace import Workspace

LAUNCH_FILE = "launch.json"


class Launch(StrictModel):
    """What every torchrun worker trains: the launcher's recipe and plan, and whether to resume."""

    recipe: PretrainRecipe = Field(description="the recipe, as the launcher validated it")
    plan: Plan | None = Field(None, description="the plan, resolved once by the launcher")
    resume: bool = Field(False, description="continue from the run's latest checkpoint")


def write_launch(workspace: Workspace, launch: Launch) -> Path:
    """`runs/<name>/launch.json`, written atomically for the workers to read."""
    path = workspace.runs_dir / launch.recipe.name / LAUNCH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # Only the keys that were set: the plan checks read which recipe keys the user set.
    tmp.write_text(launch.model_dump_json(indent=1, exclude_unset=True), encoding="utf-8")
    tmp.replace(path)
    return path


def read_launch(path: Path) -> Launch:
    """A worker's side: the launch file, validated (errors name the file and the key)."""
    if not path.is_file():
        raise InputError(f"{path}: launch file not found", "start the run with fl train pretrain")
    return validate(Launch, json.loads(path.read_text(encoding="utf-8")), str(path))
