"""`fl allocate design`: every point feasible and a plan the trainers accept; anchors included."""

from __future__ import annotations

import numpy as np
import pytest

from frontload.allocate.config import AllocateConfig
from frontload.allocate.design import FREE_PARAMETERS, design, load_sweep, write_sweep
from frontload.allocate.paper import study_corpora
from frontload.allocate.problem import violations
from frontload.config import dump_yaml
from frontload.errors import ConfigError
from frontload.plan import load_plan


def _config(**update) -> dict:
    data = {
        "name": "loop",
        "corpora": {k: v.model_dump(exclude_none=True) for k, v in study_corpora().items()},
        "budgets": {"pretrain": {"tokens": 1e9}, "sft": {"tokens": 5e7}},
        "max_epochs": {"pretrain": 4, "sft": 4},
        "groups": [{"name": "share", "phase": "pretrain", "max": 0.4}],
    }
    data.update(update)
    return data


@pytest.mark.parametrize("criterion", ["space-filling", "d-optimal"])
def test_every_point_feasible_and_anchors_included(criterion):
    config = AllocateConfig.model_validate(_config())
    points, built, notes = design(config, 16, criterion=criterion, seed=1)
    assert len(points) == 16
    for point in points:
        assert not violations(built.problem, point.x, tol=1e-6), point.name
        for (corpus, phase), i in built.xindex.items():  # epoch caps
            cap = config.max_epochs[phase] * built.pools.corpus_tokens[corpus] / built.scale
            assert point.x[i] <= cap * (1 + 1e-6)
    names = {p.name for p in points}
    study = {f"M_{a}+SFT_{s}" for a in ("base", "LDQ", "SHQ", "LMQ") for s in ("SHQ", "LDQ")}
    assert study <= names
    assert {"plan", "proportional", "unimax"} <= names
    designed = [p.x for p in points if p.kind == "design"]
    assert len(designed) == 16 - sum(p.kind == "anchor" for p in points)
    assert len({tuple(np.round(x, 9)) for x in designed}) == len(designed)  # distinct


def test_sweep_files_are_plans_the_trainers_read(tmp_path):
    cfg = tmp_path / "allocate.yaml"
    dump_yaml(_config(), cfg)
    sweep, path = write_sweep(cfg, 13, tmp_path / "sweep")
    loaded, base = load_sweep(path.parent)
    assert loaded.points == sweep.points and len(sweep.points) == 13
    for point in loaded.points:
        plan = load_plan(base / point.plan)
        pt, sft = plan.require_phase("pretrain"), plan.require_phase("sft")
        assert pt.total_tokens == pytest.approx(pt.budget_tokens, abs=len(pt.entries) + 1)
        assert sum(e.tokens for e in sft.entries) <= sft.budget_tokens + len(sft.entries)
        if any(e.tokens for e in sft.entries):
            assert sum(sft.epochs().values()) > 0


def test_too_few_points_says_how_many():
    config = AllocateConfig.model_validate(_config())
    with pytest.raises(ConfigError, match=f"at least {FREE_PARAMETERS} points"):
        design(config, FREE_PARAMETERS - 1)
    points, _, _ = design(config, FREE_PARAMETERS)  # the 11 anchors fill it exactly
    assert all(p.kind == "anchor" for p in points)
