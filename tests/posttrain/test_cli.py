"""`fl train sft` / `fl train rl` turn bad recipes into one-line errors, not tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


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


def test_rl_recipe_with_missing_model_says_which_stage(tmp_path, toy_workspace):
    recipe = tmp_path / "rl.yaml"
    recipe.write_text("name: x\nmodel: runs/nothing/hf\nprompts: [dshq]\nmicro_batch_size: 8\n")
    done = run_fl("train", "rl", str(recipe))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "has no config.json" in done.stderr


def test_sft_batch_that_does_not_divide_is_a_one_line_error(tmp_path, workspace):
    recipe = tmp_path / "sft.yaml"
    recipe.write_text("name: x\nmodel: runs/base/hf\nglobal_batch_size: 4\nmicro_batch_size: 3\n")
    done = run_fl("train", "sft", str(recipe))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "global_batch_size (4) must be a multiple of micro_batch_size (3)" in done.stderr


def test_rl_batch_check_also_guards_pipeline_overrides():
    """The pipeline builds recipes with `validate`, not the loader: the check must live there."""
    from frontload.config import validate
    from frontload.errors import ConfigError
    from frontload.train.posttrain.recipe import RLRecipe

    data = {"name": "x", "model": "m", "prompts": ["p"], "prompts_per_step": 1}
    data |= {"num_generations": 2, "micro_batch_size": 4}
    with pytest.raises(ConfigError, match=r"\(2\) must be a multiple of micro_batch_size \(4\)"):
        validate(RLRecipe, data, "pipeline.yaml")


def test_sft_reports_a_missing_corpus_before_loading_the_model(workspace):
    from frontload.errors import StageNotReady
    from frontload.train.posttrain.recipe import SFTRecipe
    from frontload.train.posttrain.sft import sft

    recipe = SFTRecipe(name="x", model="runs/nothing/hf", corpora=[{"name": "nosuch"}])
    with pytest.raises(StageNotReady, match="'nosuch' has no parquet files"):
        sft(recipe, workspace)


def test_pipeline_rejects_a_bad_sft_override_before_any_stage(tmp_path, workspace):
    from frontload.errors import ConfigError
    from frontload.study.pipeline import run_pipeline

    recipes = Path(__file__).resolve().parents[2] / "recipes" / "tiny"
    pipeline = tmp_path / "study.yaml"
    pipeline.write_text(
        f"name: check\ncurate: {recipes / 'curate.yaml'}\n"
        f"arms: [{{name: M_base, pt_reasoning: none, pretrain: {recipes / 'pretrain_base.yaml'}}}]\n"
        f"sft: [{{name: SHQ, recipe: {recipes / 'sft_shq.yaml'}, "
        "overrides: {micro_batch_size: 3}}]\n"
    )
    with pytest.raises(ConfigError, match="must be a multiple of micro_batch_size"):
        run_pipeline(pipeline, workspace)
    assert not (workspace.root / "pipeline" / "check").exists()  # no stage started
