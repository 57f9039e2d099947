"""`fl allocate solve`: config + corpora + model -> an optimal plan with baselines and sensitivities."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from frontload.allocate.baselines import baseline_allocations
from frontload.allocate.build import Built, build_problem
from frontload.allocate.config import AllocateConfig
from frontload.allocate.conic import solve_conic
from frontload.allocate.diagnose import conflicts, raise_infeasible
from frontload.allocate.lp import Solution, solve_lp
from frontload.allocate.milp import solve_milp
from frontload.allocate.model import TERMS, ResponseModel, load_model, predict
from frontload.allocate.pools import Pools, pools_from_specs, pools_from_workspace, read_manifest
from frontload.allocate.predict import predict_oriented
from frontload.allocate.problem import affine_value, evaluate, gradient, violations
from frontload.allocate.rung_solve import (
    SAMPLES,
    allocation_rows,
    check_corpora,
    program_model,
    search,
    set_share_objective,
)
from frontload.allocate.sensitivity import sensitivity
from frontload.config import load_yaml, validate
from frontload.errors import ConfigError, StageNotReady
from frontload.plan import Baseline, PhasePlan, Plan, PlanEntry, Prediction, save_plan
from frontload.workspace import Workspace


def load_config(path: str | Path) -> AllocateConfig:
    """Read an allocate config; a relative `model:` path is taken relative to the config file."""
    path = Path(path)
    config = load_yaml(path, AllocateConfig)
    if config.model not in ("", "default") and not Path(config.model).is_absolute():
        config = config.model_copy(update={"model": str((path.parent / config.model).resolve())})
    if config.model not in ("", "default") and not Path(config.model).is_file():
        raise ConfigError(
            f"{path}: model: {config.model} not found",
            "give a model file from `fl allocate fit` (relative to the config) or `default`",
        )
    return config


def solve_file(
    config_path: str | Path,
    workspace: Workspace,
    out: str | Path | None = None,
    solver: str | None = None,
) -> tuple[Plan, Path]:
    """Solve a config file and write plans/<name>.yaml (+ .json) in the workspace (or `out`)."""
    config = load_config(config_path)
    if solver:
        config = validate(AllocateConfig, {**config.model_dump(), "solver": solver}, "--solver")
    plan = solve_plan(config, workspace if config.workspace_corpora else None)
    return plan, save_plan(plan, out or workspace.plans_dir / f"{config.name}.yaml")


NEGLIGIBLE = 1e-6  # entries below this share of the phase budget are reported as zero


def resolve_pools(
    config: AllocateConfig, workspace: Workspace | None, notes: list[str] | None = None
) -> Pools:
    """Corpora from workspace records (exact overlaps) or given by hand (declared relations).
    Empty workspace corpora (e.g. no answer long enough for DALF) are left out with a note."""
    if config.workspace_corpora and config.corpora:
        raise ConfigError(
            "give corpora either from the workspace (workspace_corpora) or by hand (corpora)",
            "mixing both is not supported: overlaps between them would be unknown",
        )
    if config.workspace_corpora:
        workspace = workspace or Workspace.resolve()
        dirs = {}
        for name in config.workspace_corpora:
            folder = workspace.corpus_dir(name)
            if not folder.is_dir():
                have = sorted(p.name for p in workspace.corpora_dir.glob("*") if p.is_dir())
                raise ConfigError(
                    f"workspace_corpora: unknown corpus '{name}' (no {folder})",
                    f"corpora in the workspace: {', '.join(have) or 'none (run fl curate corpora)'}",
                )
            manifest = read_manifest(folder)
            if not manifest.get("records") or not any(folder.glob("*.parquet")):
                if notes is not None:
                    notes.append(f"corpus {name} is empty in the workspace and was left out")
                continue
            dirs[name] = folder
        if not dirs:
            raise StageNotReady(
                "every workspace corpus is empty", "check `fl curate corpora` and its warnings"
            )
        return pools_from_workspace(dirs)
    if not config.corpora:
        raise ConfigError("no corpora", "list workspace_corpora or give corpora by hand")
    return pools_from_specs(config.corpora)


def run_solver(built: Built, config: AllocateConfig) -> Solution:
    """Dispatch to the chosen backend; infeasible problems get a diagnosis."""

    if conflicts(built.problem):
        raise_infeasible(built.problem)
    needs_milp = (
        config.integer_sft_epochs
        or config.max_corpora
        or any(lim.at_least_if_used for lim in config.limits.values())
    )
    discrete = config.solver == "milp" or needs_milp or config.tie_break != "none"
    if config.extra_terms and (discrete or config.solver == "lp"):
        raise ConfigError(
            "extra_terms are only solved in conic mode; this config would ignore them",
            "use solver: conic with tie_break: none and no integer/at-least/max-corpora limits, "
            "or drop extra_terms",
        )
    if discrete:
        return solve_milp(built, config)
    if config.solver == "lp":
        return solve_lp(built.problem, config.lp_breakpoints)

    return solve_conic(built.problem, config.extra_terms)


def _predictions(built: Built, model: ResponseModel, x: np.ndarray) -> dict[str, Prediction]:
    _, values = evaluate(built.problem, x)
    feats = {t: affine_value(built.features[t], values) for t in TERMS}
    return {
        c: Prediction(score=p, low=lo, high=hi) for c, (p, lo, hi) in predict(feats, model).items()
    }


def _phases(built: Built, x: np.ndarray, general: str, marginal: bool = True) -> list[PhasePlan]:
    """Tokens, epochs, weights, effective tokens and marginal value per corpus and phase."""
    _, values = evaluate(built.problem, x)
    pools, scale = built.pools, built.scale
    grad = gradient(built.problem, x) * 1e9 / scale if marginal else np.zeros(len(x))
    phases = []
    for phase in built.phases:
        entries = []
        budget = int(round(built.budget_tokens[phase]))
        total = sum(x[built.xindex[(c, phase)]] for c in pools.corpora)
        for corpus in pools.corpora:
            i = built.xindex[(corpus, phase)]
            tokens = int(round(x[i] * scale))
            if tokens < NEGLIGIBLE * budget:  # solver noise, not a choice
                tokens = 0
            eff = _effective(built, values, corpus, phase, x)
            weight = (
                tokens / budget
                if phase != "sft"
                else (tokens / (total * scale) if total > 0 else 0.0)
            )
            entries.append(
                PlanEntry(
                    corpus=corpus,
                    tokens=tokens,
                    epochs=tokens / pools.corpus_tokens[corpus],
                    weight=min(1.0, weight),
                    effective_tokens=eff * scale if tokens else 0.0,
                    marginal_value=float(grad[i]),
                )
            )
        if phase == "sft":
            phases.append(
                PhasePlan(name=phase, budget_tokens=budget, general_corpus=None, entries=entries)
            )
        else:
            used = sum(e.tokens for e in entries)
            phases.append(
                PhasePlan(
                    name=phase,
                    budget_tokens=budget,
                    general_corpus=general,
                    general_tokens=max(0, budget - used),
                    entries=entries,
                )
            )
    return phases


def _effective(built: Built, values: np.ndarray, corpus: str, phase: str, x: np.ndarray) -> float:
    """This corpus's share of each pool's effective tokens (by its share of the pool's reads)."""
    key = "sft" if phase == "sft" else "pt"
    hypos = [h for h in built.problem.hypos if h.kind == "eff"]
    out = 0.0
    for a, _atom in enumerate(built.pools.atoms):
        h = hypos[2 * a + (1 if key == "sft" else 0)]
        read = affine_value(h.args[0], values)
        if read <= 0:
            continue
        mine = built.pools.composition[corpus].get(a, 0.0) * x[built.xindex[(corpus, phase)]]
        out += values[h.var] * mine / read
    return out


def solve_plan(
    config: AllocateConfig,
    workspace: Workspace | None = None,
    model: ResponseModel | None = None,
    model_name: str | None = None,
) -> Plan:
    """Solve and assemble the plan: phases, predictions, baselines, binding rows, shadow prices.
    A fitted model solves with the rung its ladder ranked best (`rung_solve`)."""
    model = model or load_model(config.model)
    notes: list[str] = []
    pools = resolve_pools(config, workspace, notes)
    if config.general_corpus in pools.corpora:
        raise ConfigError(
            f"corpus '{config.general_corpus}' is the general corpus that fills pretraining",
            "leave it out of the reasoning corpora",
        )
    program = program_model(model)
    built = build_problem(config, pools, program or model)
    check_corpora(built, model)
    searched = program is None and not set_share_objective(built, model)
    solution = search(built, model, pools) if searched else run_solver(built, config)
    x = solution.x
    if model.ladder is not None or model.rung != "structured":
        how = f"a search over {SAMPLES} sampled feasible plans" if searched else "its program"
        notes.append(f"solved with rung {model.rung} (ranked best by the ladder) by {how}")

    def score(xb: np.ndarray) -> float:
        if searched:
            return float(predict_oriented(model, allocation_rows(built, [xb]), pools)[0][0])
        return evaluate(built.problem, xb)[0]

    def predicted(xb: np.ndarray) -> dict[str, Prediction]:
        if model.rung == "structured":
            return _predictions(built, model, xb)
        mean, low, high = predict_oriented(model, allocation_rows(built, [xb]), pools)
        target = next(iter(model.objective))
        return {target: Prediction(score=mean[0], low=low[0], high=high[0])}

    objective = score(x)
    if searched:
        binding, shadow = [], {}
        notes.append("a search has no duals: no binding constraints or shadow prices")
    else:
        why = sensitivity(built, solution, objective)
        binding, shadow = why.binding, why.shadow
        notes += why.notes
    baselines = []
    for name, (description, xb) in baseline_allocations(built, x).items():
        broken = violations(built.problem, xb)
        value = score(xb)
        if not broken and value > objective + 1e-3 * max(1.0, abs(objective)):
            notes.append(f"baseline {name} scores above the plan: the solver was inexact")
        baselines.append(
            Baseline(
                name=name,
                description=description,
                feasible=not broken,
                breaks=broken,
                # scored only where it is feasible: elsewhere the model extrapolates to nonsense
                objective=None if broken else value,
                predicted={} if broken else predicted(xb),
                phases=_phases(built, xb, config.general_corpus, marginal=False),
            )
        )
    notes += model.fit.warnings
    sft_budget = config.budgets.get("sft")
    if sft_budget is not None and sft_budget.samples is not None:
        notes.append("sft budget in samples: its shadow price is per 1M samples")
    return Plan(
        name=config.name,
        phases=_phases(built, x, config.general_corpus, marginal=not searched),
        predicted=predicted(x),
        objective=objective,
        baselines=baselines,
        binding_constraints=binding,
        shadow_prices=shadow,
        solver=solution.solver,
        model=model_name or config.model,
        notes=notes,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
