"""`fl allocate solve` with the rung the ladder ranked best (the model file's `rung`).

- structured: the concave program of the shipped terms, as always.
- ridge_structured, structured_free: the same terms with the rung's coefficients and settings. Every
  term is concave, so the program stays convex while every coefficient is >= 0; a negative one
  makes the objective non-concave, and the rung is solved by the search instead.
- prior: the shipped model's program (the ladder only maps its scores onto the metric).
- linear, null_share: linear in the allocation (an LP in the same program). A null rule on the
  reasoning share of pretraining fills pretraining with reasoning data as far as the constraints let
  it (or leaves it out, if the fitted slope is negative).
- loglinear: -(E + exp(a + w . shares)) is concave: one hypograph `1 - exp(-u)` with
  u = -(a + w . shares) in the same program.
- gp, null_anchor: no concave form. The search draws SAMPLES feasible plans at random (the design's
  sampler, fixed seed), adds the anchors the rung knows, predicts each, and keeps the best (RegMix
  solves its regression model the same way). No duals: no binding constraints or shadow prices.
"""

from __future__ import annotations

import numpy as np

from frontload.allocate.baselines import random_allocations
from frontload.allocate.build import Built
from frontload.allocate.crossval import Inputs
from frontload.allocate.lp import Solution
from frontload.allocate.model import TERMS, CategoryFit, ResponseModel, Settings, load_model
from frontload.allocate.problem import Affine, violations
from frontload.allocate.rungs import load
from frontload.errors import InputError

SAMPLES = 4000
PRETRAIN_PHASES = ("pretrain", "midtrain")


def program_model(model: ResponseModel) -> ResponseModel | None:
    """The model whose concave terms the convex program maximises for this rung, or None when
    the rung's objective is not in that form (shares, log-linear, search)."""
    if model.rung_fit is None:
        return model
    state = model.rung_fit.state
    if state["kind"] != "linear":
        return None
    if state["basis"] == "prior":
        return load_model(None)
    if state["basis"] != "structured" or min(state["coef"][1:]) < 0:
        return None
    target = next(iter(model.objective))
    fit = CategoryFit(
        intercept=state["coef"][0], coefs=dict(zip(TERMS, state["coef"][1:], strict=True))
    )
    return model.model_copy(
        update={
            "settings": Settings(**state["settings"]),
            "categories": {target: fit},
            "objective": {target: 1.0},
        }
    )


def check_corpora(built: Built, model: ResponseModel) -> None:
    """A rung fitted on shares knows only the corpora it was fitted on."""
    if model.rung_fit is None:
        return
    unknown = sorted(set(built.pools.corpora) - set(model.rung_fit.corpora))
    if unknown:
        raise InputError(
            f"corpus '{unknown[0]}' is not among the corpora rung {model.rung} was fitted on",
            f"fitted on: {', '.join(model.rung_fit.corpora)}; run the sweep with it, or leave it out",
        )


def _columns(built: Built, corpora: list[str]) -> list[list[int]]:
    """x indices summed into each share column (pretraining then SFT, in the fitted order)."""
    out = []
    for phases in (PRETRAIN_PHASES, ("sft",)):
        for corpus in corpora:
            out.append([i for (c, p), i in built.xindex.items() if c == corpus and p in phases])
    return out


def set_share_objective(built: Built, model: ResponseModel) -> bool:
    """Set the objective of a linear or log-linear rung on the problem; False when the rung is
    solved by the search."""
    state = model.rung_fit.state
    columns = _columns(built, model.rung_fit.corpora)
    coef = state.get("coef", [])
    weights: Affine = {}
    if state["kind"] == "linear" and state["basis"] == "shares":
        for column, c in zip(columns, coef[1:], strict=True):
            for i in column:
                weights[i] = weights.get(i, 0.0) + c
        built.problem.objective = {-1: coef[0], **weights}
        return True
    if state["kind"] == "linear" and state["basis"] == "pt_share":
        pretrain = [i for column in columns[: len(columns) // 2] for i in column]
        built.problem.objective = {-1: coef[0], **dict.fromkeys(pretrain, coef[1])}
        return True
    if state["kind"] == "loglinear":
        arg: Affine = {-1: -coef[0]}
        for column, c in zip(columns, coef[1:], strict=True):
            for i in column:
                arg[i] = arg.get(i, 0.0) - c
        t = built.problem.hypo("sat", arg, k=1.0)
        built.problem.objective = {-1: -state["offset"] - 1.0, t: 1.0}
        return True
    return False


def allocation_rows(built: Built, xs: list[np.ndarray]) -> list[dict]:
    """Decision vectors as experiments-table rows (tokens per corpus, the pretraining budget)."""
    rows = []
    for n, x in enumerate(xs):
        cells = {}
        for key, phases in (("pretrain", PRETRAIN_PHASES), ("sft", ("sft",))):
            parts = []
            for corpus in built.pools.corpora:
                tokens = sum(
                    x[i] for (c, p), i in built.xindex.items() if c == corpus and p in phases
                )
                if round(tokens * built.scale) > 0:
                    parts.append(f"{corpus}:{int(round(tokens * built.scale))}")
            cells[key] = "+".join(parts)
        rows.append({"run": f"candidate {n}", "pretrain_budget": built.scale, **cells})
    return rows


def _anchor_allocations(built: Built, model: ResponseModel) -> list[np.ndarray]:
    """The anchors a nearest-anchor rung knows, as feasible decision vectors (pretraining shares
    into the pretraining phase)."""
    state = model.rung_fit.state
    if state["kind"] != "nearest":
        return []
    corpora = model.rung_fit.corpora
    out = []
    for shares in state["anchors"]:
        x = np.zeros(built.problem.n_x)
        for j, phase in enumerate(("pretrain", "sft")):
            for k, corpus in enumerate(corpora):
                if (corpus, phase) in built.xindex:
                    x[built.xindex[(corpus, phase)]] = shares[j * len(corpora) + k]
        if not violations(built.problem, x, tol=1e-6):
            out.append(x)
    return out


def search(built: Built, model: ResponseModel, pools) -> Solution:
    """The best of SAMPLES random feasible plans (and the rung's anchors) by the rung."""
    rng = np.random.default_rng(0)
    candidates = _anchor_allocations(built, model) + random_allocations(built, SAMPLES, rng)
    inputs = Inputs.of(allocation_rows(built, candidates), pools, model.rung_fit.corpora)
    predicted = load(model.rung_fit.state).predict(inputs)
    best = int(np.argmax(predicted))
    return Solution(candidates[best], float(predicted[best]), {}, [], "search")
