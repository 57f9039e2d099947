"""`fl train sft` / `fl train rl` turn bad recipes into one-line errors, not tracebacks."""

from __future__ import annotations

import subprocess
import sys


def run_fl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "frontload.cli", *args], capture_output=True, text=True
    )


def test_sft_recipe_typo_names_the_key(tmp_path, workspace):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text("name: x\nmodel: runs/base/hf\nlearning_rate: 1e-5\n")
    done = run_fl("train", "sft", str(recipe))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "learning_rate: unknown key" in done.stderr


def test_rl_recipe_with_missing_model_says_which_stage(tmp_path, workspace):
    recipe = tmp_path / "rl.yaml"
    recipe.write_text("name: x\nmodel: runs/nothing/hf\nprompts: [dshq]\nmicro_batch_size: 8\n")
    done = run_fl("train", "rl", str(recipe))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "has no config.json" in done.stderr
