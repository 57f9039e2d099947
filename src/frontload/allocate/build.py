"""Turn a config, the pools and a response model into a `Problem` (variables, rows, objective)."""

from __future__ import annotations

from dataclasses import dataclass

from frontload.allocate.config import AllocateConfig
from frontload.allocate.model import ResponseModel, add_terms, set_objective
from frontload.allocate.pools import Pools
from frontload.allocate.problem import Affine, Problem, Row
from frontload.errors import ConfigError

PHASE_ORDER = ("pretrain", "midtrain", "sft")


@dataclass
class Built:
    """The problem plus what is needed to read a solution back as tokens."""

    problem: Problem
    pools: Pools
    xindex: dict[tuple[str, str], int]
    features: dict[str, Affine]
    scale: float  # tokens per unit (the pretraining budget)
    phases: list[str]
    budget_tokens: dict[str, float]  # token budget per phase (sft: capacity when given in samples)


def phase_budgets(config: AllocateConfig, pools: Pools) -> dict[str, float]:
    """Token budget per phase; an SFT budget in samples becomes the most tokens it could hold."""
    out = {}
    for phase in PHASE_ORDER:
        budget = config.budgets.get(phase)
        if budget is None:
            continue
        tokens = budget.token_budget()
        if tokens is None:
            tokens = budget.samples * max(pools.tokens_per_record(c) for c in pools.corpora)
        out[phase] = float(tokens)
    return out


def _limit(config: AllocateConfig, corpus: str):
    return config.limits.get(corpus)


def build_problem(config: AllocateConfig, pools: Pools, model: ResponseModel) -> Built:
    """Decision variables, constraints (budgets, epochs, fractions, groups, floor, trust) and terms."""
    named = [(f"limits.{c}", c) for c in config.limits]
    named += [
        (f"groups.{g.name}", c) for g in config.groups if g.corpora != "all" for c in g.corpora
    ]
    named += [(f"reference.{p}", c) for p, split in config.reference.items() for c in split]
    for where, name in named:
        if name not in pools.corpora:
            raise ConfigError(
                f"{where}: unknown corpus '{name}'",
                f"known corpora: {', '.join(pools.corpora)}",
            )
    budgets = phase_budgets(config, pools)
    scale = budgets["pretrain"]
    pools.rescale(scale)
    phases = [p for p in PHASE_ORDER if p in budgets]
    xindex: dict[tuple[str, str], int] = {}
    names, upper = [], []
    for phase in phases:
        for corpus in pools.corpora:
            limit = _limit(config, corpus)
            allowed = limit is None or limit.phases is None or phase in limit.phases
            epochs = config.max_epochs.get(phase, 1.0)
            if limit and phase in limit.max_epochs:
                epochs = limit.max_epochs[phase]
            cap = min(epochs * pools.corpus_tokens[corpus], budgets[phase]) / scale
            xindex[(corpus, phase)] = len(names)
            names.append(f"{corpus}:{phase}")
            upper.append(cap if allowed else 0.0)
    problem = Problem(names, upper)
    per_b = 1e9 / scale
    for phase in phases:
        idx = {c: xindex[(c, phase)] for c in pools.corpora}
        budget = config.budgets[phase]
        if phase == "sft" and budget.samples is not None:
            affine = {i: scale / pools.tokens_per_record(c) for c, i in idx.items()}
            problem.rows.append(
                Row("budget:sft", affine, budget.samples, scale=1e6, unit="1M samples")
            )
        else:
            problem.rows.append(
                Row(
                    f"budget:{phase}",
                    dict.fromkeys(idx.values(), 1.0),
                    budgets[phase] / scale,
                    scale=per_b,
                )
            )
        share = budgets[phase] / scale
        for corpus, i in idx.items():
            limit = _limit(config, corpus)
            if limit and phase in limit.min_fraction:
                problem.rows.append(
                    Row(
                        f"min_fraction:{corpus}:{phase}",
                        {i: -1.0},
                        -limit.min_fraction[phase] * share,
                        scale=per_b,
                    )
                )
            if limit and phase in limit.max_fraction:
                problem.rows.append(
                    Row(
                        f"max_fraction:{corpus}:{phase}",
                        {i: 1.0},
                        limit.max_fraction[phase] * share,
                        scale=per_b,
                    )
                )
    for group in config.groups:
        if group.phase not in budgets:
            raise ConfigError(f"groups.{group.name}: phase {group.phase} has no budget")
        members = pools.corpora if group.corpora == "all" else group.corpora
        share = budgets[group.phase] / scale
        affine = {xindex[(c, group.phase)]: 1.0 for c in members}
        problem.rows.append(Row(f"group_max:{group.name}", affine, group.max * share, scale=per_b))
        if group.min > 0:
            neg = {i: -1.0 for i in affine}
            problem.rows.append(
                Row(f"group_min:{group.name}", neg, -group.min * share, scale=per_b)
            )
    if config.sft_quality_floor is not None and "sft" in budgets:
        floor = config.sft_quality_floor
        affine = {
            xindex[(c, "sft")]: floor - pools.corpus_index(c, "sft_index") for c in pools.corpora
        }
        problem.rows.append(Row("sft_quality_floor", affine, 0.0, scale=per_b))
    if config.trust_region is not None:
        factor = config.trust_region
        fitted = model.fitted_range
        pt = {xindex[(c, "pretrain")]: 1.0 for c in pools.corpora}
        problem.rows.append(
            Row("trust:pt_reasoning_share", pt, factor * fitted["pt_reasoning_share"], scale=per_b)
        )
        if "sft" in budgets:
            sft = {xindex[(c, "sft")]: 1.0 for c in pools.corpora}
            problem.rows.append(
                Row("trust:sft_tokens", sft, factor * fitted["sft_tokens"], scale=per_b)
            )
    features = add_terms(problem, pools, xindex, model.settings)
    if config.objective:
        unknown = set(config.objective) - set(model.categories)
        if unknown:
            raise ConfigError(
                f"objective: unknown categories {sorted(unknown)}",
                f"the model has: {', '.join(model.categories)}",
            )
        model = model.model_copy(update={"objective": dict(config.objective)})
    set_objective(problem, features, model)
    return Built(problem, pools, xindex, features, scale, phases, budgets)
