"""Learning-rate schedules as pure functions of the step, so a resumed run needs only the step."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from frontload.config import StrictModel


class ScheduleConfig(StrictModel):
    """Warmup-stable-decay (Nemotron-H style) or cosine, from `peak_lr` down to `min_lr`."""

    kind: Literal["wsd", "cosine"] = Field(
        "wsd", description="wsd: warmup, constant, then decay at the end; cosine: warmup, cosine"
    )
    peak_lr: float = Field(3e-4, gt=0, description="learning rate after warmup")
    min_lr: float = Field(3e-6, ge=0, description="learning rate at the last step")
    warmup_fraction: float = Field(
        0.01, ge=0, lt=1, description="share of all steps spent warming up linearly from 0"
    )
    decay_fraction: float = Field(
        0.2, gt=0, le=1, description="wsd only: share of all steps spent decaying at the end"
    )
    decay_shape: Literal["linear", "cosine", "sqrt"] = Field(
        "linear", description="wsd only: shape of the final decay (sqrt = 1 - sqrt, as in MiniCPM)"
    )

    @model_validator(mode="after")
    def _check(self) -> ScheduleConfig:
        if self.min_lr > self.peak_lr:
            raise ValueError(f"min_lr ({self.min_lr}) is above peak_lr ({self.peak_lr})")
        if self.kind == "wsd" and self.warmup_fraction + self.decay_fraction > 1:
            raise ValueError("warmup_fraction + decay_fraction must be at most 1")
        return self


def lr_at(config: ScheduleConfig, step: int, total_steps: int) -> float:
    """The learning rate for optimizer step `step` (0-based) of `total_steps`."""
    warmup = max(1, round(config.warmup_fraction * total_steps)) if config.warmup_fraction else 0
    if step < warmup:
        return config.peak_lr * (step + 1) / warmup
    last = max(total_steps - 1, 1)
    if config.kind == "cosine":
        progress = min(1.0, (step - warmup) / max(last - warmup, 1))
        return config.min_lr + 0.5 * (config.peak_lr - config.min_lr) * (
            1 + math.cos(math.pi * progress)
        )
    decay_steps = max(1, round(config.decay_fraction * total_steps))
    decay_start = total_steps - decay_steps
    if step < decay_start:
        return config.peak_lr
    # progress runs 0 -> 1 over the decay so that the last step lands exactly on min_lr.
    progress = min(1.0, (step - decay_start + 1) / decay_steps)
    if config.decay_shape == "cosine":
        fraction = 0.5 * (1 + math.cos(math.pi * progress))
    elif config.decay_shape == "sqrt":
        fraction = 1 - math.sqrt(progress)
    else:
        fraction = 1 - progress
    return config.min_lr + (config.peak_lr - config.min_lr) * fraction
