"""A small concave-program form shared by the conic, LP and MILP backends and by evaluation.

Variables are the decisions x (tokens per corpus per phase, in units of the pretraining budget)
followed by hypograph variables t. Each t is bounded by one concave function of affine arguments
(`t <= f(args)`); every t enters the objective and later arguments with nonnegative weight, so at the
optimum each t equals its function and the program is exact. `evaluate` computes the same values
directly, which is what baselines, brute force and the fit use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Affine = dict[int, float]  # variable index -> coefficient; key -1 is the constant


@dataclass
class Hypo:
    """`var <= kind(args; params)`; kinds: eff (repetition), sat (1-exp), geo (sqrt(ab)), min."""

    var: int
    kind: str
    args: list[Affine]
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class Row:
    """A linear constraint `affine <= rhs` (or `==` when eq) with a readable name."""

    name: str
    affine: Affine
    rhs: float
    eq: bool = False
    scale: float = 1.0  # rhs units per reported unit (e.g. 1B tokens in budget units)
    unit: str = "1B tokens"


@dataclass
class Problem:
    """Decision variables with upper bounds, hypograph terms, linear rows and a linear objective."""

    x_names: list[str]
    upper: list[float]
    n_vars: int = 0
    hypos: list[Hypo] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    objective: Affine = field(default_factory=dict)
    integer_x: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.n_vars = max(self.n_vars, len(self.x_names))

    @property
    def n_x(self) -> int:
        return len(self.x_names)

    def new_var(self) -> int:
        self.n_vars += 1
        return self.n_vars - 1

    def hypo(self, kind: str, *args: Affine, **params: float) -> int:
        var = self.new_var()
        self.hypos.append(Hypo(var, kind, list(args), dict(params)))
        return var


def affine_matrix(affines: list[Affine], n: int):
    """Stack affines into a sparse matrix and a constant vector."""
    from scipy import sparse

    rows, cols, data, const = [], [], [], np.zeros(len(affines))
    for r, affine in enumerate(affines):
        for i, c in affine.items():
            if i == -1:
                const[r] += c
            else:
                rows.append(r)
                cols.append(i)
                data.append(c)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(affines), n)), const


def interval(affine: Affine, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """The range of an affine expression over the box lo <= x <= hi (interval arithmetic)."""
    a = b = affine.get(-1, 0.0)
    for i, c in affine.items():
        if i != -1:
            a += c * (lo[i] if c > 0 else hi[i])
            b += c * (hi[i] if c > 0 else lo[i])
    return a, b


def bounds(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds of every variable (all concave kinds are increasing in their arguments)."""
    lo, hi = np.zeros(problem.n_vars), np.zeros(problem.n_vars)
    hi[: problem.n_x] = problem.upper
    for h in problem.hypos:
        spans = [interval(a, lo, hi) for a in h.args]
        lo[h.var] = concave_value(h.kind, [s[0] for s in spans], h.params)
        hi[h.var] = concave_value(h.kind, [s[1] for s in spans], h.params)
    return lo, hi


def eff(z: float, u: float, rstar: float) -> float:
    """Muennighoff et al. 2023 effective tokens of reading z tokens of a pool of u unique tokens."""
    if z <= u or u <= 0:
        return z if u > 0 else 0.0
    return u + u * rstar * (1.0 - math.exp(-(z - u) / (u * rstar)))


def eff_slope(z: float, u: float, rstar: float) -> float:
    return 1.0 if z <= u else math.exp(-(z - u) / (u * rstar))


def concave_value(kind: str, args: list[float], params: dict[str, float]) -> float:
    """Value of one concave kind at numeric arguments (the exact model, for every backend)."""
    if kind == "eff":
        return eff(max(args[0], 0.0), params["u"], params["rstar"])
    if kind == "sat":
        return 1.0 - math.exp(-args[0] / params["k"])
    if kind == "geo":
        return math.sqrt(max(args[0], 0.0) * max(args[1], 0.0))
    if kind == "min":
        return min(args)
    raise ValueError(f"unknown concave kind {kind}")


def affine_value(affine: Affine, values: np.ndarray) -> float:
    return sum(c * (1.0 if i == -1 else values[i]) for i, c in affine.items())


def evaluate(problem: Problem, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Objective and every variable's value at decision x (hypograph variables made tight)."""
    values = np.zeros(problem.n_vars)
    values[: problem.n_x] = x
    for h in problem.hypos:
        values[h.var] = concave_value(h.kind, [affine_value(a, values) for a in h.args], h.params)
    return affine_value(problem.objective, values), values


def _partials(kind: str, args: list[float], params: dict[str, float]) -> list[float]:
    """(Super)gradient of a concave kind with respect to each argument."""
    if kind == "eff":
        return [
            eff_slope(max(args[0], 0.0), params["u"], params["rstar"]) if params["u"] > 0 else 0.0
        ]
    if kind == "sat":
        return [math.exp(-args[0] / params["k"]) / params["k"]]
    if kind == "geo":
        a, b = max(args[0], 1e-12), max(args[1], 1e-12)
        return [0.5 * math.sqrt(b / a), 0.5 * math.sqrt(a / b)]
    active = int(np.argmin(args))
    return [1.0 if j == active else 0.0 for j in range(len(args))]


def gradient(problem: Problem, x: np.ndarray) -> np.ndarray:
    """d objective / d x by reverse accumulation through the hypograph variables."""
    _, values = evaluate(problem, x)
    adjoint = np.zeros(problem.n_vars)
    for i, c in problem.objective.items():
        if i != -1:
            adjoint[i] += c
    for h in reversed(problem.hypos):
        if adjoint[h.var] == 0.0:
            continue
        args = [affine_value(a, values) for a in h.args]
        for arg, partial in zip(h.args, _partials(h.kind, args, h.params), strict=True):
            for i, c in arg.items():
                if i != -1:
                    adjoint[i] += adjoint[h.var] * partial * c
    return adjoint[: problem.n_x]


def violations(problem: Problem, x: np.ndarray, tol: float = 1e-7) -> list[str]:
    """Names of constraints or bounds that x breaks (for tests and baselines)."""
    values = np.zeros(problem.n_vars)
    values[: problem.n_x] = x
    broken = [
        problem.x_names[i]
        for i in range(problem.n_x)
        if x[i] < -tol or x[i] > problem.upper[i] + tol
    ]
    for row in problem.rows:
        lhs = affine_value(row.affine, values)
        if (abs(lhs - row.rhs) if row.eq else lhs - row.rhs) > tol * max(1.0, abs(row.rhs)):
            broken.append(row.name)
    return broken
