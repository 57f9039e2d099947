"""A run folder from someone else is data: a hostile `rank_*.pt` is refused and never runs."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from frontload.errors import TrainingError
from frontload.train.checkpoint import CheckpointManager, rng_state, set_rng_state


class _Payload:
    """Unpickling this calls os.system: what a shared run folder could smuggle in."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _model_and_optimizer():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_hostile_rank_file_is_refused_and_never_runs(tmp_path):
    model, optimizer = _model_and_optimizer()
    manager = CheckpointManager(tmp_path / "ckpt")
    path = manager.save(1, model, optimizer, {"data": {"step": 1}, "rng": rng_state()}, {})
    marker = tmp_path / "pwned"
    with open(path / "rank_00000.pt", "wb") as handle:  # torch.save's zip format, hostile payload
        torch.save({"data": _Payload(marker)}, handle)
    with pytest.raises(TrainingError, match=r"rank_00000.pt: not plain trainer state"):
        manager.load(path, *_model_and_optimizer())
    (path / "rank_00000.pt").write_bytes(pickle.dumps(_Payload(marker)))  # legacy plain pickle
    with pytest.raises(TrainingError, match="refused"):
        manager.load(path, *_model_and_optimizer())
    assert not marker.exists(), "the payload ran"


def test_trainer_state_is_plain_and_restores_every_rng(tmp_path):
    model, optimizer = _model_and_optimizer()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's legacy state
    state = {"data": {"step": 4, "sources": [{"name": "a", "weight": 0.5}]}, "rng": rng_state()}
    expected = (random.random(), np.random.standard_normal(), torch.rand(1).item())
    manager = CheckpointManager(tmp_path / "ckpt")
    path = manager.save(4, model, optimizer, state, {})
    torch.load(path / "rank_00000.pt", weights_only=True)  # loads without any pickled code
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    _, loaded = manager.load(path, *_model_and_optimizer())
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.standard_normal(), torch.rand(1).item()) == expected
    assert loaded["data"] == state["data"]
