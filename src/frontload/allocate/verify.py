"""`fl allocate verify PLAN`: train the plan and the baselines it claims to beat, then compare.

The baselines are the plan's own (proportional, UniMax, the study's recipe), at the same budgets;
every arm is trained with the same recipes and seeds by the loop's runner. The table shows, per
arm, the fitted model's prediction with its bootstrap interval (each draw with the settings it
re-selected) next to the realized metric (mean over seeds, with its standard error), and the rank
of the plan among the arms by the realized metric.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from frontload.allocate.model import TERMS, ResponseModel
from frontload.errors import InputError
from frontload.plan import Plan, load_plan, save_plan
from frontload.workspace import Workspace

BASELINES = ("proportional", "unimax", "study")


def check_corpora(plan: Plan, ws: Workspace, source: str | Path) -> None:
    """Every corpus the plan reads must exist in the workspace (corpora/ or tokens/)."""
    have = {p.name for d in (ws.corpora_dir, ws.tokens_dir) if d.is_dir() for p in d.iterdir()}
    for phase in plan.phases:
        names = [e.corpus for e in phase.entries if e.tokens > 0]
        if phase.general_corpus and phase.general_tokens > 0:
            names.append(phase.general_corpus)
        for name in names:
            if name not in have:
                raise InputError(
                    f"{source}: phase {phase.name} reads corpus '{name}', which is not in "
                    f"workspace {ws.root}",
                    f"corpora there: {', '.join(sorted(have)) or 'none'}; curate and tokenize it, "
                    "or solve the plan for this workspace",
                )


def arms(plan: Plan) -> list[Plan]:
    """The plan and its baselines as plans of their own (same budgets)."""
    out = [plan]
    for baseline in plan.baselines:
        if baseline.name in BASELINES:
            out.append(
                Plan(
                    name=f"{plan.name}-{baseline.name}",
                    phases=baseline.phases,
                    solver="baseline",
                    model=plan.model,
                    notes=[baseline.description],
                )
            )
    return out


def _row(plan: Plan) -> dict:
    def text(phase: str) -> str:
        found = plan.phase(phase)
        parts = [f"{e.corpus}:{e.tokens}" for e in (found.entries if found else []) if e.tokens]
        return "+".join(parts)

    return {
        "run": plan.name,
        "pretrain": text("pretrain"),
        "sft": text("sft"),
        "pretrain_budget": plan.require_phase("pretrain").budget_tokens,
        "category": "avg",
    }


def predictions(plans: list[Plan], model: ResponseModel, pools) -> list[tuple[float, float, float]]:
    """(point, low, high) per plan in the oriented units of the model (higher is better)."""
    from frontload.allocate.fit import features

    rows = [_row(p) for p in plans]
    target = next(iter(model.objective))
    fit = model.categories[target]
    x = features(rows, pools, model.settings)
    point = fit.intercept + x @ np.array([fit.coefs[t] for t in TERMS])
    draws = []
    by_settings: dict[tuple, np.ndarray] = {}
    for i, coef in enumerate(fit.bootstrap):
        settings = fit.bootstrap_settings[i] if fit.bootstrap_settings else model.settings
        key = tuple(settings.model_dump().values())
        if key not in by_settings:
            by_settings[key] = features(rows, pools, settings)
        draws.append(coef[0] + by_settings[key] @ np.array(coef[1:]))
    if not draws:
        return [(float(p), float(p), float(p)) for p in point]
    low, high = np.quantile(np.array(draws), [0.05, 0.95], axis=0)
    return [(float(p), float(lo), float(hi)) for p, lo, hi in zip(point, low, high, strict=True)]


def verify_plan(plan_path: Path, model_path: Path, loop, upstream: str, metric: str) -> list[dict]:
    """Train every arm x seed with the loop's runner; return the verify table's rows."""
    from frontload.allocate.experiments import build_table, higher_is_better
    from frontload.allocate.model import load_model
    from frontload.allocate.solve import load_config, resolve_pools

    plan = load_plan(plan_path)
    check_corpora(plan, loop.ws, plan_path)
    model = load_model(model_path)
    folder = loop.folder / "verify"
    trained: dict[str, list[str]] = {}
    plans = arms(plan)
    for arm in plans:
        path = save_plan(arm, folder / f"{arm.name}.yaml")
        trained[arm.name] = [
            loop.train_point("verify", path, seed, upstream) for seed in loop.config.sweep.seeds
        ]
    pools = resolve_pools(load_config(loop.base / loop.config.sweep.allocate), loop.ws)
    predicted = predictions(plans, model, pools)
    realized = {
        r["run"]: float(r["score"])
        for r in build_table(loop.ws, metric)
        if r["category"] == next(iter(model.objective))
    }
    sign = 1.0 if higher_is_better(metric) else -1.0
    rows = []
    for arm, (point, low, high) in zip(plans, predicted, strict=True):
        values = np.array([realized[r] for r in trained[arm.name] if r in realized])
        mean = float(values.mean()) if len(values) else float("nan")
        sem = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
        lo, hi = sorted((sign * low, sign * high))
        rows.append(
            {
                "arm": "plan" if arm is plan else arm.name.removeprefix(f"{plan.name}-"),
                "predicted": sign * point,
                "low": lo,
                "high": hi,
                "realized": mean,
                "sem": sem,
                "seeds": len(values),
            }
        )
    order = sorted(rows, key=lambda r: -sign * r["realized"])
    for rank, row in enumerate(order, start=1):
        row["rank"] = rank
    return rows


def format_table(rows: list[dict], metric: str) -> str:
    """Predicted (interval) next to realized (+- standard error), and the plan's rank."""
    lines = [
        f"{'arm':<14}{'predicted ' + metric:>22}{'90% interval':>22}{'realized':>18}{'rank':>6}"
    ]
    for r in rows:
        interval = "[{:.4f}, {:.4f}]".format(r["low"], r["high"])
        realized = "{:.4f} +- {:.4f}".format(r["realized"], r["sem"])
        lines.append(
            f"{r['arm']:<14}{r['predicted']:>22.4f}{interval:>22}{realized:>18}{r['rank']:>6}"
        )
    plan = next(r for r in rows if r["arm"] == "plan")
    lines.append(f"plan ranks {plan['rank']} of {len(rows)} by realized {metric}")
    return "\n".join(lines)
