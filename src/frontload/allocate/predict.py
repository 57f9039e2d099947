"""What a fitted model file predicts for given allocations, in the metric's own units.

`predict_allocations` is the one entry point for comparing allocations with their predictions
(`fl allocate verify` calls it): it takes the model file `fl allocate fit` wrote and a list of
allocations (plans, or rows of the experiments table) and returns, per allocation, the predicted
mean and a 90% interval of the rung the model file solves with. Bits per byte stay bits per byte
(lower is better); the model file stores such metrics negated, this module turns them back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frontload.allocate.crossval import Inputs
from frontload.allocate.fit import features
from frontload.allocate.model import TERMS, ResponseModel, RungFit, load_model
from frontload.allocate.rungs import load
from frontload.plan import Plan

QUANTILES = (0.05, 0.95)  # the 90% interval


@dataclass(frozen=True)
class AllocationPrediction:
    """One allocation's predicted metric (mean over seeds) with its 90% interval."""

    mean: float
    low: float  # low <= mean <= high, in the metric's own units
    high: float
    rung: str  # the ladder rung that made the prediction (structured, gp, ...)
    metric: str  # the metric's name as evaluated (bpb, score, ...)


def plan_row(plan: Plan) -> dict[str, Any]:
    """A plan as an experiments-table row: `corpus:tokens` cells and the pretraining budget."""

    def cell(phase: str) -> str:
        found = plan.phase(phase)
        entries = found.entries if found else []
        return "+".join(f"{e.corpus}:{e.tokens}" for e in entries if e.tokens)

    return {
        "run": plan.name,
        "pretrain": cell("pretrain"),
        "sft": cell("sft"),
        "pretrain_budget": plan.require_phase("pretrain").budget_tokens,
    }


def _rows(allocations: Sequence[Plan | Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for i, allocation in enumerate(allocations):
        if isinstance(allocation, Plan):
            rows.append(plan_row(allocation))
        else:
            row = dict(allocation)
            row.setdefault("run", f"allocation {i}")
            rows.append(row)
    return rows


def metric_sign(model: ResponseModel) -> tuple[str, float]:
    """The metric's own name and the sign that turns the model's oriented units back into it."""
    if model.metric.startswith("-"):
        return model.metric[1:], -1.0
    return model.metric, 1.0


def predict_allocations(
    model: ResponseModel | str | Path,
    allocations: Sequence[Plan | Mapping[str, Any]],
    pools,
) -> list[AllocationPrediction]:
    """Predicted mean and 90% interval per allocation, in the metric's own units.

    `model`: a model file from `fl allocate fit` (or the loaded model). `allocations`: plans, or
    experiments-table rows with `pretrain`, `sft` (`corpus:tokens+...`) and `pretrain_budget`.
    `pools`: the corpora the allocations read (`resolve_pools(config, workspace)`, or corpus specs
    given by hand), whose metadata the structured features need.
    """
    if not isinstance(model, ResponseModel):
        model = load_model(model)
    rows = _rows(allocations)
    if not rows:
        return []
    metric, sign = metric_sign(model)
    mean, low, high = predict_oriented(model, rows, pools)
    out = []
    for m, lo, hi in zip(mean, low, high, strict=True):
        a, b = sorted((sign * lo, sign * hi))
        out.append(AllocationPrediction(float(sign * m), float(a), float(b), model.rung, metric))
    return out


def predict_oriented(model: ResponseModel, rows: list[dict], pools) -> tuple[np.ndarray, ...]:
    """(mean, low, high) arrays in the model's oriented units (higher is better), by its rung."""
    if model.rung_fit is not None:
        return _rung(model.rung_fit, rows, pools)
    return _structured(model, rows, pools)


def _rung(fit: RungFit, rows: list[dict], pools) -> tuple[np.ndarray, ...]:
    """A ladder rung's prediction and the 90% interval of its bootstrap refits (oriented)."""
    inputs = Inputs.of(rows, pools, fit.corpora)
    point = load(fit.state).predict(inputs)
    if not fit.draws:
        return point, point, point
    draws = np.array([load(state).predict(inputs) for state in fit.draws])
    low, high = np.quantile(draws, QUANTILES, axis=0)
    return point, np.minimum(low, point), np.maximum(high, point)


def _structured(model: ResponseModel, rows: list[dict], pools) -> tuple[np.ndarray, ...]:
    """The structured model's point prediction and the bootstrap draws' 90% interval (each draw
    with the settings it re-selected), in the model's oriented units."""
    target = next(iter(model.objective))
    fit = model.categories[target]
    x = features(rows, pools, model.settings)
    point = fit.intercept + x @ np.array([fit.coefs.get(t, 0.0) for t in TERMS])
    if not fit.bootstrap:
        return point, point, point
    by_settings: dict[tuple, np.ndarray] = {}
    draws = []
    for i, coef in enumerate(fit.bootstrap):
        settings = fit.bootstrap_settings[i] if fit.bootstrap_settings else model.settings
        key = tuple(settings.model_dump().values())
        if key not in by_settings:
            by_settings[key] = features(rows, pools, settings)
        draws.append(coef[0] + by_settings[key] @ np.array(coef[1:]))
    low, high = np.quantile(np.array(draws), QUANTILES, axis=0)
    return point, np.minimum(low, point), np.maximum(high, point)
