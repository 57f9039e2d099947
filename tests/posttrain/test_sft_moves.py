"""SFT changes the model: a 1-step and a 3-step run (the default 5% warmup) move the weights, and a
run whose weights stay at its parent's is an error naming the cause."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from frontload.errors import TrainingError
from frontload.train.moves import check_moved, fingerprint
from frontload.train.posttrain.common import load_model_and_tokenizer
from frontload.train.posttrain.recipe import SFTRecipe
from frontload.train.posttrain.sft import sft


def short_recipe(name: str, steps: int) -> SFTRecipe:
    return SFTRecipe.model_validate(
        {
            "name": name,
            "model": "runs/base/hf",
            "corpora": [{"name": "dshq", "max_records": 24}],
            "eval_fraction": 0.0,
            "lr": 1e-3,
            "global_batch_size": 4,
            "micro_batch_size": 4,
            "max_length": 256,
            "max_steps": steps,
            "logging_steps": 1,
        }
    )


@pytest.mark.parametrize("steps", [1, 3])
def test_short_sft_moves_every_run(toy_workspace, steps):
    parent = load_file(toy_workspace.runs_dir / "base" / "hf" / "model.safetensors")
    result = sft(short_recipe(f"sft_{steps}", steps), toy_workspace)
    assert result.steps == steps
    child = load_file(result.hf_dir / "model.safetensors")
    moved = [name for name in parent if not parent[name].equal(child[name])]
    assert len(moved) > len(parent) // 2, f"only {moved} moved"
    rates = [
        row["learning_rate"]
        for row in map(json.loads, (result.run_dir / "metrics.jsonl").read_text().splitlines())
        if "learning_rate" in row
    ]
    assert len(rates) == steps and all(rate > 0 for rate in rates)  # no step at 0


def test_weights_equal_to_the_parent_are_an_error(toy_workspace):
    model, _ = load_model_and_tokenizer(toy_workspace, "runs/base/hf", None)
    before = fingerprint(model)
    with pytest.raises(TrainingError, match="weights equal runs/base/hf's"):
        check_moved(before, fingerprint(model), "sft_still", "runs/base/hf")
    with __import__("torch").no_grad():
        next(model.parameters()).add_(1e-6)
    check_moved(before, fingerprint(model), "sft_moved", "runs/base/hf")
