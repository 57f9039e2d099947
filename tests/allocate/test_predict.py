"""The prediction API verify calls: a model file and allocations in, metric-unit intervals out."""

from __future__ import annotations

import numpy as np
import pytest
from tests.allocate.test_loop_fit import GRID, known_runs

from frontload.allocate.ladder import fit_runs
from frontload.allocate.predict import plan_row, predict_allocations
from frontload.config import dump_yaml
from frontload.plan import PhasePlan, Plan, PlanEntry


@pytest.fixture(scope="module")
def bpb_fit():
    rows, truth, pools = known_runs(points=12)
    bpb = [{**r, "score": 3.0 - r["score"] / 100} for r in rows]  # better models: fewer bits
    return fit_runs(bpb, pools, "bpb", bootstrap_draws=6, grid=GRID, repeats=2), bpb, pools


def test_predictions_come_back_in_the_metrics_units_with_an_interval(bpb_fit, tmp_path):
    result, rows, pools = bpb_fit
    path = tmp_path / "model.yaml"
    dump_yaml(result.model, path)
    firsts = {r["point"]: r for r in rows}.values()
    predicted = predict_allocations(path, list(firsts), pools)
    assert len(predicted) == len(firsts)
    realized = np.array([r["score"] for r in firsts])
    means = np.array([p.mean for p in predicted])
    assert np.all(np.abs(means - realized) < 0.05)  # bits per byte near 3, not negated
    assert np.corrcoef(means, realized)[0, 1] > 0.9
    for p in predicted:
        assert p.low <= p.mean <= p.high and p.metric == "bpb" and p.rung
    assert any(p.high > p.low for p in predicted)  # the bootstrap draws spread


def test_plans_and_rows_predict_the_same(bpb_fit):
    result, rows, pools = bpb_fit
    row = rows[0]
    budget = int(row["pretrain_budget"])
    entries = {
        phase: [
            PlanEntry(corpus=c, tokens=int(t), epochs=0.0, weight=min(1.0, int(t) / budget))
            for c, t in (part.split(":") for part in filter(None, row[phase].split("+")))
        ]
        for phase in ("pretrain", "sft")
    }
    used = sum(e.tokens for e in entries["pretrain"])
    plan = Plan(
        name="p",
        phases=[
            PhasePlan(
                name="pretrain",
                budget_tokens=budget,
                general_tokens=budget - used,
                entries=entries["pretrain"],
            ),
            PhasePlan(name="sft", budget_tokens=10**8, general_corpus=None, entries=entries["sft"]),
        ],
    )
    assert plan_row(plan)["pretrain"] == row["pretrain"]
    from_plan, from_row = predict_allocations(result.model, [plan, row], pools)
    assert from_plan.mean == pytest.approx(from_row.mean)
    assert from_plan.low == pytest.approx(from_row.low)
    assert predict_allocations(result.model, [], pools) == []
