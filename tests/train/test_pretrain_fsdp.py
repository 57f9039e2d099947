"""Two processes with FSDP2 (gloo, CPU) through `fl train pretrain --nproc 2` give the same losses
as one process on the same global batch."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from frontload.cli import app
from frontload.config import dump_yaml
from frontload.train.pretrain import pretrain
from frontload.train.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.timeout(600)
def test_two_process_fsdp_matches_one_process(token_workspace, read_rows, tmp_path):
    recipe = load_recipe(RECIPES / "tiny" / "pretrain_ldq.yaml").model_copy(
        update={"seq_len": 64, "global_batch_tokens": 512, "total_tokens": 512 * 6, "name": "two"}
    )
    recipe.log.interval_steps = 1
    recipe.data.validation_tokens = 512
    recipe.data.phases[0].until = 0.5
    path = tmp_path / "two.yaml"
    dump_yaml(recipe, path)
    result = CliRunner().invoke(
        app,
        ["train", "pretrain", str(path), "--nproc", "2", "--workspace", str(token_workspace.root)],
    )
    assert result.exit_code == 0, result.output
    one = pretrain(recipe.model_copy(update={"name": "one"}), token_workspace)

    rows_one, rows_two = read_rows(one), read_rows(token_workspace.runs_dir / "two")
    train_one = [row["loss"] for row in rows_one if row["kind"] == "train"]
    train_two = [row["loss"] for row in rows_two if row["kind"] == "train"]
    assert len(train_one) == len(train_two) == 6
    assert train_two == pytest.approx(train_one, rel=1e-5, abs=1e-6)
    assert train_one[-1] < train_one[0]
    val_one = [row for row in rows_one if row["kind"] == "eval"][-1]
    val_two = [row for row in rows_two if row["kind"] == "eval"][-1]
    assert val_two["val_loss_dldq"] == pytest.approx(val_one["val_loss_dldq"], rel=1e-5)
    # Both exports hold the same full (unsharded) weights.
    from safetensors.torch import load_file

    weights_one = load_file(one / "hf" / "model.safetensors")
    weights_two = load_file(token_workspace.runs_dir / "two" / "hf" / "model.safetensors")
    assert weights_one.keys() == weights_two.keys()
    for name, tensor in weights_one.items():
        assert weights_two[name].shape == tensor.shape
        assert (weights_two[name] - tensor).abs().max() < 1e-4, name
