"""The response model: predicted post-SFT score as a sum of concave terms of the allocation.

Token amounts are in units of the pretraining budget, so one model serves a 1T-token study and a
20M-token demo alike. Terms (each feature is built in `add_terms`; coefficients are >= 0):

- pt_diversity: sum over domains of 1-exp(-D_d/k_pt), D_d = diversity-weighted *effective* reasoning
  tokens in pretraining. Encodes T1/T2: diverse reasoning data (LDQ) in pretraining lifts every
  category, narrow long-CoT data (SHQ, repeated ~16x) much less; repetition is discounted with
  Muennighoff et al.'s D' = U + U R* (1 - exp(-R/R*)), R* = 15.4.
- pt_quality: 1-exp(-Q_pt/k_pt) of effective pretraining tokens weighted by quality above the
  classifier midpoint (T4: the SHQ share of LMQ shows its value only after SFT, via synergy).
- sft_value: 1-exp(-Q_sft/k_sft) of long-CoT-quality-weighted effective SFT tokens (R* fitted).
  Encodes T5: SFT on SHQ beats SFT on LDQ/LMQ; quality dominates SFT.
- synergy: sqrt(pt_quality x sft_value), the latent effect (T4: LMQ > LDQ only after SFT).
- consolidation: min(1, long-CoT-weighted tokens in both phases / k_sft), a bounded bonus
  (T4: SHQ+SFT_SHQ beats base+SFT_SHQ at 2x; T6: LDQ in both phases does not help).
- sft_low_quality: -(low-quality SFT tokens)/k_sft, a penalty on tokens whose long-CoT index is
  under 0.5 (T6: twice the LDQ SFT data lowers math while long ALF answers from LDQ help).
- over_repetition: -(tokens read beyond rho_max epochs over all phases)/k_pt, a penalty.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from frontload.allocate.pools import Pools
from frontload.allocate.problem import Affine, Problem
from frontload.config import StrictModel, load_yaml, validate

TERMS: tuple[str, ...] = (
    "pt_diversity",
    "pt_quality",
    "sft_value",
    "synergy",
    "consolidation",
    "sft_low_quality",
    "over_repetition",
)
PRETRAIN_PHASES = ("pretrain", "midtrain")


class Settings(StrictModel):
    """The nonlinear settings (chosen by leave-one-run-out, or fixed by the literature)."""

    k_pt: float = Field(default=0.05, gt=0, description="Pretraining saturation scale (x budget).")
    k_sft: float = Field(default=0.02, gt=0, description="SFT saturation scale (x pt budget).")
    rstar_pt: float = Field(default=15.4, gt=0, description="Muennighoff R* for pretraining.")
    rstar_sft: float = Field(default=5.0, gt=0, description="R* for repeated SFT data.")
    rho_max: float = Field(default=16.0, gt=0, description="Epochs over all phases before penalty.")


class CategoryFit(StrictModel):
    """Coefficients of one score category."""

    intercept: float = Field(description="Score with no reasoning data at all.")
    coefs: dict[str, float] = Field(description="Coefficient per term (all >= 0).")
    bootstrap: list[list[float]] = Field(
        default_factory=list, description="Bootstrap samples of [intercept, *coefs]."
    )
    bootstrap_settings: list[Settings] = Field(
        default_factory=list,
        description="Settings each bootstrap sample re-selected (empty: the model's settings).",
    )


class FitReport(StrictModel):
    """How well the coefficients are supported by the experiments table."""

    runs: int = Field(default=0, description="Rows used per category.")
    loro_rmse: dict[str, float] = Field(
        default_factory=dict,
        description="Held-out RMSE with the settings chosen on all runs (optimistic: the "
        "held-out run took part in choosing them).",
    )
    nested_rmse: dict[str, float] = Field(
        default_factory=dict,
        description="Held-out RMSE with the settings re-chosen without the held-out run.",
    )
    ranking_accuracy: dict[str, float] = Field(
        default_factory=dict, description="Pairwise order accuracy of held-out predictions."
    )
    spread: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Bootstrap std of each coefficient."
    )
    unidentified: list[str] = Field(
        default_factory=list, description="Terms pinned to the prior (table cannot identify)."
    )
    warnings: list[str] = Field(default_factory=list, description="Fallbacks and caveats.")
    cross_validation: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Nested-CV out-of-fold scores per model family (structured, linear, loglinear).",
    )


class Interval(StrictModel):
    """An out-of-fold figure: the estimate (mean over fold seeds) and its 90% interval (bootstrap
    over points, each repetition cross-validated afresh); null where undefined."""

    estimate: float | None = Field(default=None, description="Mean over the fold seeds.")
    low: float | None = Field(default=None, description="5th percentile of the repetitions.")
    high: float | None = Field(default=None, description="95th percentile of the repetitions.")


class LadderRow(StrictModel):
    """One rung of the ladder on the shared grouped folds."""

    rung: str = Field(description="Rung name (prior, null_share, ..., structured, gp, loglinear).")
    title: str = Field(description="What the rung is.")
    solve: str = Field(description="How `fl allocate solve` uses it: convex or search.")
    scores: dict[str, Interval] = Field(
        description="rmse, spearman, decision_accuracy, decision_accuracy_clear, regret_at_1."
    )
    vs_best: dict[str, Interval] = Field(
        default_factory=dict,
        description="Paired difference (this rung minus the best rung) per score.",
    )
    chosen: list[Any] = Field(
        default_factory=list, description="Setting each outer fold chose (fold seed 0)."
    )


class LadderReport(StrictModel):
    """The ladder of models, the rung it ranks best and how it ranked them."""

    metric: str = Field(description="Metric as evaluated (bpb, score, ...).")
    higher_is_better: bool = Field(description="Direction of the metric.")
    runs: int = Field(description="Runs fitted.")
    points: int = Field(description="Design points (runs grouped by what was trained).")
    merged: list[list[str]] = Field(
        default_factory=list, description="Plans that trained one allocation (one point each)."
    )
    anchors: int = Field(default=0, description="Points that are design anchors.")
    noise: float | None = Field(default=None, description="Pooled seed standard deviation.")
    pairs: int = Field(default=0, description="Point pairs.")
    clear_pairs: int = Field(
        default=0, description="Pairs whose true gap exceeds two seed standard errors."
    )
    repeats: int = Field(description="Fold seeds: the estimates are their mean.")
    resamples: int = Field(
        default=0, description="Bootstrap resamples of the points per fold seed (intervals)."
    )
    outer: int = Field(description="Outer folds.")
    inner: int = Field(description="Inner folds choosing each rung's settings.")
    seed: int = Field(default=0, description="First fold seed and the bootstrap's seed.")
    criterion: str = Field(description="How rungs are ranked.")
    best: str = Field(description="The rung ranked first; `fl allocate solve` uses it.")
    rows: list[LadderRow] = Field(description="Every rung, simplest first.")
    notes: list[str] = Field(default_factory=list, description="Rungs left out, verdicts.")
    seconds: float = Field(default=0.0, description="Wall time of the ladder.")


class RungFit(StrictModel):
    """The chosen rung fitted on every run, and its bootstrap refits (the intervals)."""

    name: str = Field(description="Rung name.")
    state: dict[str, Any] = Field(description="Fitted parameters (rungs.load reads them).")
    draws: list[dict[str, Any]] = Field(
        default_factory=list, description="Refits on bootstrap resamples of the points."
    )
    corpora: list[str] = Field(default_factory=list, description="Share columns, in order.")


class ResponseModel(StrictModel):
    """Fitted coefficients, the settings, and the range they were fitted on."""

    settings: Settings = Field(default_factory=Settings, description="Nonlinear settings.")
    categories: dict[str, CategoryFit] = Field(description="Per-category coefficients.")
    objective: dict[str, float] = Field(
        default_factory=lambda: {"avg": 1.0}, description="Category weights of the objective."
    )
    fitted_range: dict[str, float] = Field(
        default_factory=lambda: {"pt_reasoning_share": 0.2, "sft_tokens": 0.06},
        description="Largest pretraining reasoning share and SFT tokens (x pt budget) fitted.",
    )
    fit: FitReport = Field(default_factory=FitReport, description="Fit diagnostics.")
    metric: str = Field(
        default="score",
        description="What is predicted: score (percent), or a metric oriented so higher is better "
        "(bits per byte enter negated).",
    )
    rung: str = Field(
        default="structured",
        description="The rung `fl allocate solve` and predictions use (the ladder's best).",
    )
    rung_fit: RungFit | None = Field(
        default=None, description="That rung's fit when it is not the structured model."
    )
    ladder: LadderReport | None = Field(default=None, description="The ladder behind the choice.")

    def weights(self) -> dict[str, float]:
        """Objective weight per term: category weights times coefficients."""
        out = dict.fromkeys(TERMS, 0.0)
        for cat, w in self.objective.items():
            for term, value in self.categories[cat].coefs.items():
                out[term] += w * value
        return out

    def intercept(self) -> float:
        return sum(w * self.categories[c].intercept for c, w in self.objective.items())


def load_model(path: str | Path | None) -> ResponseModel:
    """A model file, or the default fitted to the study's table when None or 'default'."""
    if path in (None, "", "default"):
        return _default_model().model_copy(deep=True)
    return load_yaml(path, ResponseModel)


@lru_cache(maxsize=1)
def _default_model() -> ResponseModel:
    import yaml

    ref = resources.files("frontload.allocate") / "data" / "default_model.yaml"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the bootstrap lists are long
    data = yaml.load(ref.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    return validate(ResponseModel, data, "default_model.yaml")


def add_terms(
    problem: Problem, pools: Pools, xindex: dict[tuple[str, str], int], settings: Settings
) -> dict[str, Affine]:
    """Add the hypograph variables of every term; returns each term's feature as an affine."""
    s = settings
    reads: dict[str, list[Affine]] = {"pt": [], "sft": []}
    for a in range(len(pools.atoms)):
        for key, phases in (("pt", PRETRAIN_PHASES), ("sft", ("sft",))):
            read: Affine = {}
            for (corpus, phase), i in xindex.items():
                share = pools.composition[corpus].get(a, 0.0)
                if phase in phases and share > 0:
                    read[i] = read.get(i, 0.0) + share
            reads[key].append(read)
    eff_pt, eff_sft = [], []
    for a, atom in enumerate(pools.atoms):
        eff_pt.append(problem.hypo("eff", reads["pt"][a], u=atom.u, rstar=s.rstar_pt))
        eff_sft.append(problem.hypo("eff", reads["sft"][a], u=atom.u, rstar=s.rstar_sft))
    domains = sorted({d for atom in pools.atoms for d in atom.domains})
    diversity: Affine = {}
    for d in domains:
        arg = {
            eff_pt[a]: atom.diversity_index() * atom.domains.get(d, 0.0)
            for a, atom in enumerate(pools.atoms)
        }
        diversity[problem.hypo("sat", arg, k=s.k_pt)] = 1.0 / len(domains)
    q_pt = problem.hypo(
        "sat",
        {eff_pt[a]: atom.high_quality_share() for a, atom in enumerate(pools.atoms)},
        k=s.k_pt,
    )
    q_sft = problem.hypo(
        "sat", {eff_sft[a]: atom.sft_index() for a, atom in enumerate(pools.atoms)}, k=s.k_sft
    )
    synergy = problem.hypo("geo", {q_pt: 1.0}, {q_sft: 1.0})
    shared = [
        problem.hypo("min", reads["pt"][a], reads["sft"][a], {-1: atom.u})
        for a, atom in enumerate(pools.atoms)
    ]
    consolidation = problem.hypo(
        "min",
        {v: atom.sft_index() / s.k_sft for v, atom in zip(shared, pools.atoms, strict=True)},
        {-1: 1.0},
    )
    low: Affine = {}
    excess: Affine = {}
    for a, atom in enumerate(pools.atoms):
        for i, share in reads["sft"][a].items():
            low[i] = low.get(i, 0.0) - atom.low_quality_share() * share / s.k_sft
        over = {i: -c for i, c in reads["pt"][a].items()}
        for i, c in reads["sft"][a].items():
            over[i] = over.get(i, 0.0) - c
        over[-1] = s.rho_max * atom.u
        excess[problem.hypo("min", over, {-1: 0.0})] = 1.0 / s.k_pt
    return {
        "pt_diversity": diversity,
        "pt_quality": {q_pt: 1.0},
        "sft_value": {q_sft: 1.0},
        "synergy": {synergy: 1.0},
        "consolidation": {consolidation: 1.0},
        "sft_low_quality": low,
        "over_repetition": excess,
    }


def set_objective(problem: Problem, features: dict[str, Affine], model: ResponseModel) -> None:
    """Objective = intercept + sum of weight x feature over terms."""
    objective: Affine = {-1: model.intercept()}
    for term, weight in model.weights().items():
        for i, c in features[term].items():
            objective[i] = objective.get(i, 0.0) + weight * c
    problem.objective = objective


def predict(
    feature_values: dict[str, float], model: ResponseModel, quantiles=(0.05, 0.95)
) -> dict[str, tuple[float, float, float]]:
    """Score and bootstrap interval per category from the term values of one allocation."""
    vec = np.array([1.0] + [feature_values[t] for t in TERMS])
    out = {}
    for cat, fit in model.categories.items():
        point = float(vec @ np.array([fit.intercept] + [fit.coefs.get(t, 0.0) for t in TERMS]))
        if fit.bootstrap:
            draws = np.array(fit.bootstrap) @ vec
            low, high = np.quantile(draws, quantiles)
            out[cat] = (point, float(min(low, point)), float(max(high, point)))
        else:
            out[cat] = (point, point, point)
    if model.metric != "score":
        return out
    # scores are percentages: extrapolated intervals are cut at the scale's ends
    return {c: tuple(min(100.0, max(0.0, v)) for v in vals) for c, vals in out.items()}
