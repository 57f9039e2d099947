"""Allocation benchmarks: solve time (4/20/100 corpora x 3 phases, conic vs LP), fit time on the
study's table, optimality against a brute-force grid, and LP vs conic agreement. Prints JSON.

    .venv/bin/python benchmarks/allocate.py [--sizes 4,20,100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np

from frontload.allocate.build import build_problem
from frontload.allocate.config import AllocateConfig
from frontload.allocate.fit import fit_model
from frontload.allocate.model import load_model
from frontload.allocate.paper import paper_experiments, study_corpora
from frontload.allocate.pools import CorpusSpec, pools_from_specs
from frontload.allocate.problem import evaluate, violations
from frontload.allocate.solve import solve_plan


def synthetic(n: int, seed: int = 0) -> dict[str, CorpusSpec]:
    """n corpora: independent ones, plus every fifth the union of the two before it."""
    rng = np.random.default_rng(seed)
    specs = {}
    for i in range(n):
        if i % 5 == 4:
            specs[f"c{i}"] = CorpusSpec(union=[f"c{i - 2}", f"c{i - 1}"])
            continue
        long = rng.random() < 0.3
        specs[f"c{i}"] = CorpusSpec(
            tokens=float(rng.uniform(1e9, 5e10)),
            records=float(rng.uniform(1e5, 5e7)),
            quality=float(rng.uniform(0.3, 0.95)),
            answer_tokens=float(rng.uniform(4000, 12000) if long else rng.uniform(200, 900)),
            domains=dict(
                zip(("math", "code", "science"), rng.dirichlet([1, 1, 1]).tolist(), strict=True)
            ),
        )
    return specs


def config_for(specs, solver: str) -> AllocateConfig:
    return AllocateConfig(
        corpora=specs,
        budgets={
            "pretrain": {"tokens": 1e12},
            "midtrain": {"tokens": 5e10},
            "sft": {"tokens": 5e10},
        },
        groups=[{"name": "share", "phase": "pretrain", "min": 0.05, "max": 0.4}],
        solver=solver,
    )


def time_solve(n: int, repeats: int) -> dict:
    specs = synthetic(n)
    out = {"corpora": n, "phases": 3}
    for solver in ("conic", "lp"):
        times, objective = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            objective = solve_plan(config_for(specs, solver)).objective
            times.append(time.perf_counter() - start)
        out[f"{solver}_s"] = round(min(times), 3)
        out[f"{solver}_objective"] = objective
    out["lp_vs_conic_rel_gap"] = abs(out["lp_objective"] - out["conic_objective"]) / abs(
        out["conic_objective"]
    )
    out["conic_over_lp_time"] = round(out["conic_s"] / out["lp_s"], 2)
    return out


def brute_force(points: int = 17, rounds: int = 4) -> dict:
    """Two corpora, pretraining share fixed at 20%: zooming grid over (a_pt, a_sft, b_sft)."""
    specs = {
        "a": CorpusSpec(tokens=2e9, records=2e6, quality=0.5, answer_tokens=600),
        "b": CorpusSpec(tokens=3e8, records=3e4, quality=0.9, answer_tokens=9000),
    }
    config = AllocateConfig(
        corpora=specs,
        budgets={"pretrain": {"tokens": 1e10}, "sft": {"tokens": 6e8}},
        groups=[{"name": "share", "phase": "pretrain", "min": 0.2, "max": 0.2}],
        trust_region=None,
    )
    start = time.perf_counter()
    solved = solve_plan(config).objective
    solve_s = time.perf_counter() - start
    built = build_problem(config, pools_from_specs(specs), load_model(None))
    p = built.problem
    ia, ib = built.xindex[("a", "pretrain")], built.xindex[("b", "pretrain")]
    sa, sb = built.xindex[("a", "sft")], built.xindex[("b", "sft")]
    center, width, best, evals = (0.1, 0.03, 0.03), (0.1, 0.03, 0.03), (-np.inf, None), 0
    start = time.perf_counter()
    for _ in range(rounds):
        axes = [
            np.clip(np.linspace(c - w, c + w, points), 0, p.upper[i])
            for c, w, i in zip(center, width, (ia, sa, sb), strict=True)
        ]
        for a_pt, a_sft, b_sft in itertools.product(*axes):
            x = np.zeros(p.n_x)
            x[ia], x[ib], x[sa], x[sb] = a_pt, 0.2 - a_pt, a_sft, b_sft
            evals += 1
            if not violations(p, x):
                value = evaluate(p, x)[0]
                best = max(best, (value, (a_pt, a_sft, b_sft)), key=lambda t: t[0])
        center, width = best[1], tuple(w / 8 for w in width)
    return {
        "solver_objective": solved,
        "brute_force_objective": best[0],
        "rel_gap": (solved - best[0]) / abs(best[0]),
        "solver_s": round(solve_s, 3),
        "brute_force_s": round(time.perf_counter() - start, 2),
        "brute_force_evaluations": evals,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="4,20,100")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fit", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    result = {"solve": [time_solve(int(n), args.repeats) for n in args.sizes.split(",")]}
    result["study_scale"] = time_solve_study()
    result["brute_force"] = brute_force()
    if args.fit:
        start = time.perf_counter()
        model = fit_model(paper_experiments(), study_corpora(), bootstrap=50)
        result["fit"] = {
            "seconds": round(time.perf_counter() - start, 2),
            "rows": len(paper_experiments()),
            "loro_rmse_avg": model.fit.loro_rmse["avg"],
            "ranking_accuracy_avg": model.fit.ranking_accuracy["avg"],
        }
    print(json.dumps(result, indent=1))


def time_solve_study() -> dict:
    from frontload.config import load_yaml

    out = {}
    for solver in ("conic", "lp"):
        config = load_yaml("recipes/paper/allocate.yaml", AllocateConfig).model_copy(
            update={"solver": solver, "tie_break": "none"}
        )
        start = time.perf_counter()
        out[f"{solver}_objective"] = solve_plan(config).objective
        out[f"{solver}_s"] = round(time.perf_counter() - start, 3)
    return out


if __name__ == "__main__":
    main()
