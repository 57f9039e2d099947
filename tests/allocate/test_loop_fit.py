"""Nested CV on runs generated from a known model recovers its ranking; baselines on the same folds."""

from __future__ import annotations

import numpy as np
import pytest

from frontload.allocate.config import AllocateConfig
from frontload.allocate.design import design
from frontload.allocate.fit import features
from frontload.allocate.ladder import fit_runs
from frontload.allocate.model import TERMS, Settings, load_model
from frontload.allocate.paper import study_corpora
from frontload.allocate.pools import pools_from_specs
from frontload.errors import InputError

GRID = {"k_pt": (0.02, 0.05), "k_sft": (0.01, 0.02), "rstar_sft": (5.0,)}
BUDGET = 1e9


def _alloc(built, x, phase):
    parts = [
        f"{c}:{int(round(x[built.xindex[(c, phase)]] * built.scale))}"
        for c in built.pools.corpora
        if x[built.xindex[(c, phase)]] * built.scale >= 1
    ]
    return "+".join(parts)


def known_config() -> AllocateConfig:
    """The study's corpora (by hand) at a 1B-token pretraining budget and 50M SFT tokens."""
    return AllocateConfig.model_validate(
        {
            "name": "known",
            "corpora": {k: v.model_dump(exclude_none=True) for k, v in study_corpora().items()},
            "budgets": {"pretrain": {"tokens": BUDGET}, "sft": {"tokens": 5e7}},
            "max_epochs": {"pretrain": 4, "sft": 4},
            "trust_region": None,
        }
    )


def known_runs(noise: float = 0.2, seeds: int = 2, points: int = 16, rng_seed: int = 0):
    """Rows scored by the shipped model (default settings) plus seed noise, and the true scores."""
    cands, built, _ = design(known_config(), points, seed=rng_seed)
    model = load_model(None)
    rows = [
        {
            "run": f"p{i}",
            "point": f"p{i}",
            "pretrain": _alloc(built, c.x, "pretrain"),
            "sft": _alloc(built, c.x, "sft"),
            "pretrain_budget": BUDGET,
            "category": "avg",
        }
        for i, c in enumerate(cands)
    ]
    specs = study_corpora()
    x = features(rows, specs, Settings(k_pt=0.05, k_sft=0.02, rstar_sft=5.0))
    coef = model.categories["avg"]
    truth = coef.intercept + x @ np.array([coef.coefs[t] for t in TERMS])
    rng = np.random.default_rng(rng_seed)
    out = []
    for row, score in zip(rows, truth, strict=True):
        for s in range(seeds):
            out.append(
                {
                    **row,
                    "run": f"{row['run']}-s{s}",
                    "seed": s,
                    "score": score + rng.normal(0, noise),
                }
            )
    return out, truth, pools_from_specs(specs)


def test_nested_cv_recovers_the_known_ranking():
    rows, truth, pools = known_runs()
    result = fit_runs(rows, pools, "score", bootstrap_draws=4, grid=GRID, repeats=3)
    cv = result.model.fit.cross_validation
    assert set(cv) >= {"prior", "null_share", "structured", "ridge_structured", "gp", "loglinear"}
    structured = cv["structured"]
    assert structured["decision_accuracy"] >= 0.85
    assert structured["spearman"] >= 0.85
    assert structured["regret_at_1"] <= 0.05 * np.ptp(truth)
    for family in ("linear", "loglinear", "gp"):  # fitted on the same folds, scored the same way
        assert 0 <= cv[family]["decision_accuracy"] <= 1 and cv[family]["rmse"] > 0
    assert result.model.settings.k_pt == 0.05  # the data's own settings, chosen by CV
    assert len(result.model.categories["avg"].bootstrap) >= 3
    assert 0.1 < result.noise < 0.4  # seed spread measured, not assumed


def test_lower_is_better_metrics_are_oriented():
    rows, truth, pools = known_runs(points=12)
    bpb = [{**r, "score": 3.0 - r["score"] / 100} for r in rows]  # better models: fewer bits
    result = fit_runs(bpb, pools, "bpb", bootstrap_draws=0, grid=GRID, repeats=2)
    assert result.model.metric == "-bpb"
    assert result.model.fit.cross_validation["structured"]["decision_accuracy"] >= 0.8


def test_constant_metric_and_too_few_points_stop():
    rows, _, pools = known_runs(points=12)
    flat = [{**r, "score": 0.0} for r in rows]
    with pytest.raises(InputError, match="constant across the 12 arms.*no signal"):
        fit_runs(flat, pools, "score", bootstrap_draws=0, grid=GRID, repeats=2)
    few = [r for r in rows if int(r["point"][1:]) < 6]
    with pytest.raises(InputError, match="6 design points.*11 free parameters"):
        fit_runs(few, pools, "score", bootstrap_draws=0, grid=GRID, repeats=2)
