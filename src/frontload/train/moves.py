"""Every training stage changes the model: checks shared by pretraining, SFT and GRPO.

A run that trains nothing looks like a run that trained: it writes a checkpoint, a served.jsonl and
metrics, and every comparison built on it silently compares a model with itself. Two causes are
common enough to name: a schedule whose every step ran at learning rate 0 (a warmup that takes the
whole of a short run starts at 0), and an update that left the weights where they were. Both are
errors here, named with their cause, never a result to evaluate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from frontload.errors import TrainingError


def warmup_steps(ratio: float, total_steps: int) -> int:
    """Linear-warmup steps for `ratio` of `total_steps`: rounded down, and never every step, since a
    warmup starts at learning rate 0 and a 1-step run warmed up over its one step trains nothing."""
    if total_steps <= 1:
        return 0
    return min(math.floor(ratio * total_steps), total_steps - 1)


def check_learning_rates(rates: Sequence[float], run: str, cause: str = "") -> None:
    """At least one step must run at a learning rate above 0; `cause` says where the rates came
    from (e.g. the schedule's settings), for the error."""
    if not rates:
        raise TrainingError(f"run {run} ran no optimizer step", "give it data or more max_steps")
    if all(rate <= 0 for rate in rates):
        steps = f"{len(rates)} step" + ("s" if len(rates) > 1 else "")
        raise TrainingError(
            f"run {run}: all {steps} ran at learning rate 0"
            + (f" ({cause})" if cause else "")
            + ", so its weights cannot move",
            "train more steps, shorten the warmup, or raise the schedule's minimum learning rate",
        )


def fingerprint(model: Any) -> list[float]:
    """Per parameter, the float64 sum and sum of squares of its values (of this process's shard
    under FSDP: add the lists over processes). Any optimizer update changes them."""
    import torch

    out: list[float] = []
    with torch.no_grad():
        for param in model.parameters():
            local = param.to_local() if hasattr(param, "to_local") else param
            values = local.detach().double()
            out += [float(values.sum()), float(values.square().sum())]
    return out


def check_moved(before: Sequence[float], after: Sequence[float], run: str, parent: str) -> None:
    """The weights after training must differ from `parent`'s (fingerprints of `fingerprint`)."""
    if len(before) != len(after):
        return  # a different shape is a different model: it moved
    if all(a == b for a, b in zip(before, after, strict=True)):
        raise TrainingError(
            f"run {run}: its weights equal {parent}'s after training: no update changed them "
            "(zero gradients, e.g. every reward equal, or every step at learning rate 0)",
            "check the run's data, learning rate and schedule; this run is not a result",
        )


def learning_rate_recorder(rates: list[float]):
    """A transformers TrainerCallback appending the optimizer's learning rate at each step,
    read just before the step is taken (what the update really used)."""
    from transformers import TrainerCallback

    class _Rates(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
            if optimizer is not None:
                rates.append(float(optimizer.param_groups[0]["lr"]))

    return _Rates()


def capped_warmup(trainer_class: type, ratio: float) -> type:
    """`trainer_class` (a transformers Trainer) whose warmup is `warmup_steps(ratio, steps)` of
    the steps it is about to run: only the trainer knows that count (packing decides it)."""

    class CappedWarmup(trainer_class):
        def create_scheduler(self, num_training_steps: int, optimizer=None):
            self.args.warmup_steps = warmup_steps(ratio, num_training_steps)
            return super().create_scheduler(num_training_steps, optimizer)

    return CappedWarmup
