"""A real SIGKILL in the middle of a run (possibly during a save), then --resume: the loss curve
equals an uninterrupted run's, step by step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from frontload.config import dump_yaml
from frontload.train.checkpoint import CheckpointManager
from frontload.train.pretrain import pretrain
from frontload.train.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.timeout(600)
def test_sigkill_then_resume_reproduces_the_curve(token_workspace, read_rows, tmp_path):
    recipe = load_recipe(RECIPES / "tiny" / "pretrain_ldq.yaml").model_copy(
        update={"seq_len": 64, "global_batch_tokens": 512, "total_tokens": 512 * 40}
    )
    recipe.log.interval_steps = 1
    recipe.checkpoint.interval_steps = 2
    recipe.data.validation_tokens = 0
    whole = pretrain(recipe.model_copy(update={"name": "whole"}), token_workspace)

    killed = recipe.model_copy(update={"name": "killed"})
    path = tmp_path / "killed.yaml"
    dump_yaml(killed, path)
    command = [sys.executable, "-m", "frontload.train.pretrain", str(path)]
    command += ["--workspace", str(token_workspace.root)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = CheckpointManager(token_workspace.runs_dir / "killed" / "checkpoints")
    deadline = time.monotonic() + 300
    while checkpoints.latest() is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = checkpoints.latest()
    assert killed_at is not None

    resumed = pretrain(killed, token_workspace, resume=True)
    expected = {row["step"]: row["loss"] for row in read_rows(whole) if row["kind"] == "train"}
    got = {row["step"]: row["loss"] for row in read_rows(resumed) if row["kind"] == "train"}
    assert list(got) == list(range(1, 41))
    assert got == expected
