"""Why the optimum is where it is: binding constraints and their prices from the solver's duals and
slacks, and a note when a budget ceiling is left partly unused.

A constraint binds when it is tight (no slack) AND its dual is nonzero: relaxing it would move the
optimum. A tight row with a zero dual is only touched, not binding. An epoch cap binds when the
variable sits at a cap that comes from `max_epochs`; a cap that is only the phase budget (the corpus
could fill the whole budget within its epochs) is the budget row seen from one variable, so its
dual is the budget's, never a `max_epochs` reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from frontload.allocate.build import Built
from frontload.allocate.explain import step_for
from frontload.allocate.lp import Solution
from frontload.allocate.problem import affine_value, evaluate, gradient

TIGHT = 1e-6  # relative slack under which a row or cap counts as tight
UNDER_FILLED = 1e-3  # a ceiling used below (1 - this) of its value is reported


@dataclass
class Sensitivity:
    """Binding constraint names, objective gain per reported unit of each, and notes."""

    binding: list[str]
    shadow: dict[str, float]
    notes: list[str]


def _dual_tolerance(objective: float) -> float:
    """Duals are objective points per unit of the pretraining budget; smaller ones are noise."""
    return 1e-7 * max(1.0, abs(objective))


def _epoch_cap(built: Built, i: int) -> bool:
    """Whether x[i]'s upper bound comes from max_epochs (else from the phase budget, or 0)."""
    corpus, phase = built.problem.x_names[i].split(":")
    upper = built.problem.upper[i]
    return 0 < upper < built.budget_tokens[phase] / built.scale * (1 - TIGHT)


def sensitivity(built: Built, solution: Solution, objective: float) -> Sensitivity:
    """Binding rows and epoch caps with their shadow prices (per the row's unit, e.g. 1B tokens;
    epoch caps per extra epoch), plus a note for each under-filled budget ceiling."""
    problem, x = built.problem, solution.x
    tol = _dual_tolerance(objective)
    _, values = evaluate(problem, x)
    binding, shadow = [], {}
    budget_extra: dict[str, float] = {}
    for row in problem.rows:
        dual = solution.duals.get(row.name, 0.0)
        lhs = affine_value(row.affine, values)
        tight = row.eq or abs(row.rhs - lhs) <= TIGHT * max(1.0, abs(row.rhs))
        shadow[row.name] = dual * row.scale
        # in objective per unit of a decision variable, comparable across rows' units
        per_x = abs(dual) * max((abs(c) for i, c in row.affine.items() if i != -1), default=0.0)
        if tight and per_x > tol:
            binding.append(row.name)
    duals = solution.bound_duals
    for i, name in enumerate(problem.x_names):
        upper = problem.upper[i]
        if duals is None or upper <= 0 or x[i] < upper * (1 - TIGHT) or duals[i] <= tol:
            continue
        corpus, phase = name.split(":")
        if _epoch_cap(built, i):
            epoch = built.pools.corpus_tokens[corpus] / built.scale
            binding.append(f"max_epochs:{name}")
            shadow[f"max_epochs:{name}"] = float(duals[i]) * epoch
        else:  # capped at the whole phase budget: that is the budget binding
            budget_extra[phase] = budget_extra.get(phase, 0.0) + float(duals[i])
    rows = {r.name: r for r in problem.rows}
    for phase, dual in budget_extra.items():
        name = f"budget:{phase}"
        if name in rows:
            shadow[name] = shadow.get(name, 0.0) + dual * rows[name].scale
            if name not in binding:
                binding.append(name)
    notes = _under_filled(built, x, values, binding, shadow, tol)
    return Sensitivity(binding, shadow, notes)


def _under_filled(
    built: Built,
    x: np.ndarray,
    values: np.ndarray,
    binding: list[str],
    shadow: dict[str, float],
    tol: float,
) -> list[str]:
    """For the SFT budget (a ceiling the solver may leave unused): how much is used, why no more,
    and what relaxing the reason is worth."""
    row = next((r for r in built.problem.rows if r.name == "budget:sft"), None)
    if row is None or row.rhs <= 0:
        return []
    used = affine_value(row.affine, values)
    if used >= row.rhs * (1 - UNDER_FILLED):
        return []
    unit = "samples" if row.unit.endswith("samples") else "tokens"
    if unit == "tokens":
        asked, got = row.rhs * built.scale, used * built.scale
    else:
        asked, got = row.rhs, used
    head = f"sft budget under-filled: {_amount(got)} of {_amount(asked)} {unit} used"
    sft_vars = {i for (c, p), i in built.xindex.items() if p == "sft"}
    limits = [
        name
        for name in binding
        if name != "budget:sft"
        and name in shadow
        and not name.startswith("max_epochs:")
        and sft_vars & set(next(r for r in built.problem.rows if r.name == name).affine)
    ]
    if limits:
        prices = ", ".join(f"{name} {_price(built, name, shadow[name])}" for name in limits)
        return [f"{head}: {', '.join(limits)} binds first (relaxing it: {prices})"]
    grad = gradient(built.problem, x)
    capped, useless = [], []
    for (corpus, phase), i in built.xindex.items():
        if phase != "sft" or built.problem.upper[i] <= 0:
            continue
        if f"max_epochs:{corpus}:sft" in binding:
            capped.append(corpus)
        elif grad[i] <= tol:
            useless.append(corpus)
    if capped:
        parts = []
        for corpus in capped:
            name = f"max_epochs:{corpus}:sft"
            cap = built.problem.upper[built.xindex[(corpus, "sft")]]
            epochs = cap * built.scale / built.pools.corpus_tokens[corpus]
            parts.append(
                f"{corpus} at {epochs:.3g} epochs ({shadow[name]:+.3g} points per extra epoch)"
            )
        reason = "data exhausted at max epochs: " + "; ".join(parts)
        if useless:
            reason += f"; more of {', '.join(useless)} would not raise the score"
        return [f"{head}: {reason}"]
    return [
        f"{head}: more SFT tokens would not raise the predicted score (the marginal value of "
        f"{', '.join(useless) or 'every corpus'} is <= 0), so relaxing the budget is worth 0"
    ]


def _price(built: Built, name: str, value: float) -> str:
    """A row's shadow price per a step that fits the budgets (1B tokens means nothing at 200k)."""
    row = next(r for r in built.problem.rows if r.name == name)
    if row.unit != "1B tokens":
        return f"{value:+.3g} points per {row.unit}"
    label, size = step_for(list(built.budget_tokens.values()))
    return f"{value * size / 1e9:+.3g} points per {label} tokens"


def _amount(value: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"
