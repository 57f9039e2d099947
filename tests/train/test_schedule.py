"""LR schedules: shape, endpoints and recipe validation."""

from __future__ import annotations

import pytest

from frontload.errors import ConfigError
from frontload.train.schedule import ScheduleConfig, lr_at


def test_wsd_warms_up_holds_and_decays_to_min() -> None:
    config = ScheduleConfig(kind="wsd", warmup_fraction=0.1, decay_fraction=0.2)
    lrs = [lr_at(config, step, 100) for step in range(100)]
    assert lrs[0] == pytest.approx(3e-4 / 10)
    assert lrs[9] == pytest.approx(3e-4)
    assert all(lr == pytest.approx(3e-4) for lr in lrs[10:80])
    assert all(a > b for a, b in zip(lrs[80:], lrs[81:], strict=False))
    assert lrs[-1] == pytest.approx(3e-6)


@pytest.mark.parametrize("shape", ["linear", "cosine", "sqrt"])
def test_wsd_decay_shapes_end_at_min(shape: str) -> None:
    config = ScheduleConfig(decay_shape=shape, min_lr=1e-5)
    assert lr_at(config, 999, 1000) == pytest.approx(1e-5)
    assert lr_at(config, 799, 1000) == pytest.approx(3e-4)


def test_cosine_is_monotone_after_warmup() -> None:
    config = ScheduleConfig(kind="cosine", warmup_fraction=0.05)
    lrs = [lr_at(config, step, 200) for step in range(200)]
    assert max(lrs) == pytest.approx(3e-4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] == pytest.approx(3e-6)
    assert lrs[105] == pytest.approx((3e-4 + 3e-6) / 2, rel=0.05)


def test_bad_schedule_names_the_key() -> None:
    from frontload.config import validate

    with pytest.raises(ConfigError, match="min_lr"):
        validate(ScheduleConfig, {"peak_lr": 1e-4, "min_lr": 1e-3}, "recipe.yaml")
    with pytest.raises(ConfigError, match="kind"):
        validate(ScheduleConfig, {"kind": "linear"}, "recipe.yaml")
