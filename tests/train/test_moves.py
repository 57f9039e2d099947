"""Pretraining changes the model: warmup never takes every step, a schedule at learning rate 0 on
every step stops before training, and a 1-step run moves the weights away from initialisation."""

from __future__ import annotations

import pytest
from tests.train.test_pretrain import tiny_recipe

from frontload.errors import TrainingError
from frontload.train.moves import check_learning_rates, warmup_steps
from frontload.train.pretrain import pretrain


@pytest.mark.parametrize(
    ("ratio", "total", "expected"),
    [(0.05, 1, 0), (0.05, 3, 0), (0.05, 40, 2), (0.5, 2, 1), (0.99, 10, 9), (0.0, 5, 0)],
)
def test_warmup_never_takes_every_step(ratio, total, expected):
    assert warmup_steps(ratio, total) == expected


def test_all_zero_learning_rates_name_the_cause():
    with pytest.raises(TrainingError, match=r"all 2 steps ran at learning rate 0 \(my schedule\)"):
        check_learning_rates([0.0, 0.0], "run_x", "my schedule")
    with pytest.raises(TrainingError, match="ran no optimizer step"):
        check_learning_rates([], "run_x")
    check_learning_rates([0.0, 1e-4], "run_x")


def test_schedule_at_zero_on_every_step_stops_before_training(token_workspace):
    recipe = tiny_recipe("base", total_tokens=512)  # one step
    recipe.schedule.warmup_fraction = 0.0
    recipe.schedule.min_lr = 0.0  # the one step is the decay's last: min_lr
    with pytest.raises(TrainingError, match="all 1 step ran at learning rate 0"):
        pretrain(recipe, token_workspace)
    assert not (token_workspace.runs_dir / recipe.name / "hf").exists()


def test_one_step_pretraining_moves_the_weights(token_workspace):
    run = pretrain(tiny_recipe("base", total_tokens=512), token_workspace)
    assert (run / "hf" / "model.safetensors").is_file()
