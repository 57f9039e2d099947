"""`fl allocate solve` follows the ladder: each rung's plan is feasible and at least as good, by
that rung, as any of a fresh set of random feasible plans; the plan says which rung solved it."""

from __future__ import annotations

import numpy as np
import pytest
from tests.allocate.test_ladder import _mark_anchors, _null_rule_rows
from tests.allocate.test_loop_fit import GRID, known_config, known_runs

from frontload.allocate.baselines import random_allocations
from frontload.allocate.build import build_problem
from frontload.allocate.crossval import Inputs, prepare
from frontload.allocate.ladder import fit_rung
from frontload.allocate.model import load_model
from frontload.allocate.predict import plan_row, predict_oriented
from frontload.allocate.problem import violations
from frontload.allocate.rung_solve import allocation_rows
from frontload.allocate.rungs import ladder
from frontload.allocate.solve import resolve_pools, solve_plan


@pytest.fixture(scope="module")
def fitted():
    rows, _, pools = known_runs(points=14)
    data = prepare(_mark_anchors(rows), pools, 1.0)
    return data, load_model(None)


@pytest.mark.parametrize("name", [r.name for r in ladder(GRID)])
def test_each_rung_solves_to_its_own_best_plan(fitted, name):
    data, base = fitted
    rung = next(r for r in ladder(GRID) if r.name == name)
    model = base.model_copy(
        update={"rung": name, "rung_fit": None if name == "structured" else fit_rung(rung, data, 3)}
    )
    config = known_config()
    plan = solve_plan(config, model=model)
    pools = resolve_pools(config, None)
    built = build_problem(config, pools, load_model(None))
    x = np.array(
        [
            (plan.phase(p).entry(c).tokens if plan.phase(p) else 0) / built.scale
            for (c, p) in built.xindex
        ]
    )
    assert not violations(built.problem, x, tol=1e-5)
    others = random_allocations(built, 300, np.random.default_rng(123))
    rows = allocation_rows(built, [x, *others])
    predicted = predict_oriented(model, rows, pools)[0]
    assert predicted[0] >= predicted[1:].max() - 1e-6 * max(1.0, abs(predicted[0])), name
    if name != "structured":
        assert any(f"solved with rung {name}" in note for note in plan.notes)
    assert plan.predicted[next(iter(model.objective))].score == pytest.approx(
        predicted[0], rel=1e-4
    )


def test_a_null_share_rule_fills_pretraining_with_reasoning():
    rows, pools = _null_rule_rows()
    data = prepare(rows, pools, 1.0)
    rung = next(r for r in ladder(GRID) if r.name == "null_share")
    model = load_model(None).model_copy(
        update={"rung": "null_share", "rung_fit": fit_rung(rung, data, 2)}
    )
    config = known_config()
    plan = solve_plan(config, model=model)
    share = Inputs.of([plan_row(plan)], pools).pt_share()[0]
    built = build_problem(config, resolve_pools(config, None), load_model(None))
    samples = random_allocations(built, 300, np.random.default_rng(5))
    most = Inputs.of(allocation_rows(built, samples), pools).pt_share().max()
    assert share >= most - 1e-6  # as much reasoning in pretraining as any feasible sample
