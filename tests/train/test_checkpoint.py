"""Checkpoint manager: round trip, atomic saves, retention, and a changed model."""

from __future__ import annotations

import pytest
import torch
import torch.distributed.checkpoint as dcp

from frontload.errors import TrainingError
from frontload.train.checkpoint import CheckpointManager


def _model_and_optimizer(width: int = 8):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Linear(width, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, width)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_round_trip_restores_weights_optimizer_and_state(tmp_path) -> None:
    model, optimizer = _model_and_optimizer()
    manager = CheckpointManager(tmp_path / "ckpt")
    path = manager.save(5, model, optimizer, {"data": {"pos": 7}}, {"tokens_seen": 40})
    assert manager.latest() == path and path.name == "step_00000005"

    fresh, fresh_opt = _model_and_optimizer()
    with torch.no_grad():
        for param in fresh.parameters():
            param.add_(1.0)
    meta, state = manager.load(path, fresh, fresh_opt)
    assert meta["step"] == 5 and meta["tokens_seen"] == 40 and state == {"data": {"pos": 7}}
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    first = next(iter(optimizer.state.values()))
    restored = next(iter(fresh_opt.state.values()))
    assert torch.equal(first["exp_avg"], restored["exp_avg"])


def test_a_save_killed_midway_leaves_the_last_good_one(tmp_path, monkeypatch) -> None:
    model, optimizer = _model_and_optimizer()
    manager = CheckpointManager(tmp_path / "ckpt")
    good = manager.save(1, model, optimizer, {}, {})

    real_save = dcp.save

    def killed(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt  # the process dies after writing shards, before the rename

    monkeypatch.setattr(dcp, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        manager.save(2, model, optimizer, {}, {})
    monkeypatch.undo()
    assert any(p.name.endswith(".tmp") for p in (tmp_path / "ckpt").iterdir())
    assert manager.latest() == good
    manager.load(good, *_model_and_optimizer())
    third = manager.save(3, model, optimizer, {}, {})
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "ckpt").iterdir())
    assert manager.latest() == third


def test_retention_keeps_last_and_multiples(tmp_path) -> None:
    model, optimizer = _model_and_optimizer()
    manager = CheckpointManager(tmp_path / "ckpt", keep_last=2, keep_every=4)
    for step in range(1, 10):
        manager.save(step, model, optimizer, {}, {})
    assert [p.name for p in manager.complete()] == [
        "step_00000004",
        "step_00000008",
        "step_00000009",
    ]


def test_resuming_a_changed_model_is_a_clear_error(tmp_path) -> None:
    model, optimizer = _model_and_optimizer(8)
    manager = CheckpointManager(tmp_path / "ckpt")
    path = manager.save(1, model, optimizer, {}, {})
    wider, wider_opt = _model_and_optimizer(16)
    with pytest.raises(TrainingError, match=r"3 resized \(e.g. 0.bias: \[8\] -> \[16\]"):
        manager.load(path, wider, wider_opt)
