"""LP mode: concave terms as tangent planes (an outer approximation), solved by HiGHS.

Exact shadow prices come straight from HiGHS's dual values, with no cvxpy involved. The tangent
points follow each term's curvature (24 per term by default), then a few cutting-plane rounds add
tangents where the solution lies, so the LP optimum matches the conic one to ~1e-5 (tests and
benchmark check it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from frontload.allocate.problem import (
    Affine,
    Problem,
    affine_matrix,
    affine_value,
    bounds,
    evaluate,
    interval,
)
from frontload.errors import SolverError

REFINE_ROUNDS = 4  # cutting-plane rounds: tangents added where the LP's solution lies


@dataclass
class Solution:
    """Decision values, objective, shadow price per named row, and which rows bind."""

    x: np.ndarray
    objective: float
    duals: dict[str, float] = field(default_factory=dict)
    binding: list[str] = field(default_factory=list)
    solver: str = ""
    bound_duals: np.ndarray | None = None  # objective per unit of each x's epoch cap


@dataclass
class LPArrays:
    """The LP in scipy's terms: minimise c.z subject to rows, with named rows for duals."""

    c: np.ndarray
    ub_rows: list[tuple[Affine, float]]
    eq_rows: list[tuple[Affine, float]]
    names_ub: dict[int, str]
    names_eq: dict[int, str]
    var_bounds: list[tuple[float | None, float | None]]
    n: int

    def matrices(self):
        from scipy import sparse

        def stack(rows):
            if not rows:
                return sparse.csr_matrix((0, self.n)), np.zeros(0)
            matrix, const = affine_matrix([r[0] for r in rows], self.n)
            return matrix, np.array([r[1] for r in rows]) - const

        return stack(self.ub_rows), stack(self.eq_rows)


def _points(lo: float, hi: float, k: float, n: int) -> list[float]:
    """Tangent points of 1-exp(-z/k) on [lo, hi], evenly spaced in the function's value."""
    lo, hi = max(lo, 0.0), max(hi, 0.0)
    if hi <= lo:
        return [lo]
    f_lo, f_hi = 1 - math.exp(-lo / k), min(1 - math.exp(-hi / k), 1 - 1e-9)
    return [-k * math.log(1 - (f_lo + (f_hi - f_lo) * j / (n - 1))) for j in range(n)]


def _tangent(t: int, arg: Affine, slope: float, intercept: float) -> tuple[Affine, float]:
    """Row `t - slope * arg <= intercept`."""
    row: Affine = {t: 1.0}
    for i, c in arg.items():
        if i == -1:
            intercept += slope * c
        else:
            row[i] = row.get(i, 0.0) - slope * c
    return row, intercept


def _cuts(h, points: list[float]) -> list[tuple[Affine, float]]:
    """Tangent rows of a sat/eff term at argument values, or of a geo term at ratios lambda."""
    rows = []
    if h.kind == "sat":
        k = h.params["k"]
        for z in points:
            e = math.exp(-z / k)
            rows.append(_tangent(h.var, h.args[0], e / k, 1 - e - e / k * z))
    elif h.kind == "eff":
        u, r = h.params["u"], h.params["rstar"]
        for z in points:
            w = max(z - u, 0.0)
            e = math.exp(-w / (u * r))
            rows.append(_tangent(h.var, h.args[0], e, u + u * r * (1 - e) - e * (u + w)))
    elif h.kind == "geo":
        for lam in points:
            row: Affine = {h.var: 1.0}
            const = 0.0
            for arg, w in ((h.args[0], -lam / 2), (h.args[1], -1 / (2 * lam))):
                for i, c in arg.items():
                    if i == -1:
                        const -= w * c
                    else:
                        row[i] = row.get(i, 0.0) + w * c
            rows.append((row, const))
    return rows


def lp_arrays(
    problem: Problem, breakpoints: int = 48, extra: dict[int, list[float]] | None = None
) -> LPArrays:
    """Objective, constraint rows (named problem rows first) and tangent rows; `extra` adds
    tangents at given points per hypo index (used to refine around a solution)."""
    lo, hi = bounds(problem)
    ub, eq, names_ub, names_eq = [], [], {}, {}
    for row in problem.rows:
        target, names = (eq, names_eq) if row.eq else (ub, names_ub)
        names[len(target)] = row.name
        target.append((row.affine, row.rhs))

    def span(affine: Affine) -> tuple[float, float]:
        return interval(affine, lo, hi)

    for index, h in enumerate(problem.hypos):
        if h.kind == "min":
            for arg in h.args:
                ub.append(_tangent(h.var, arg, 1.0, 0.0))
            continue
        if h.kind == "sat":
            points = _points(*span(h.args[0]), h.params["k"], breakpoints)
        elif h.kind == "eff":
            u, r = h.params["u"], h.params["rstar"]
            ub.append(_tangent(h.var, h.args[0], 1.0, 0.0))
            z_lo, z_hi = span(h.args[0])
            points = []
            if z_hi > u:
                points = [u + w for w in _points(max(z_lo - u, 0.0), z_hi - u, u * r, breakpoints)]
        elif h.kind == "geo":
            (a_lo, a_hi), (b_lo, b_hi) = span(h.args[0]), span(h.args[1])
            lam_lo = math.sqrt(max(b_lo, 1e-6) / max(a_hi, 1e-6))
            lam_hi = math.sqrt(max(b_hi, 1e-6) / max(a_lo, 1e-6))
            n = 4 * breakpoints
            points = [lam_lo * (lam_hi / lam_lo) ** (j / max(n - 1, 1)) for j in range(n)]
        else:
            raise SolverError(f"LP mode cannot represent a '{h.kind}' term")
        ub += _cuts(h, points + (extra or {}).get(index, []))
    c = np.zeros(problem.n_vars)
    for i, v in problem.objective.items():
        if i != -1:
            c[i] = -v
    var_bounds = [(0.0, problem.upper[i]) for i in range(problem.n_x)]
    var_bounds += [(None, None)] * (problem.n_vars - problem.n_x)
    return LPArrays(c, ub, eq, names_ub, names_eq, var_bounds, problem.n_vars)


def refine_points(problem: Problem, x: np.ndarray, extra: dict[int, list[float]]) -> None:
    """Add each term's argument value at x (true values) as a new tangent point."""
    _, values = evaluate(problem, x)
    for index, h in enumerate(problem.hypos):
        args = [affine_value(a, values) for a in h.args]
        if h.kind in ("sat", "eff"):
            extra.setdefault(index, []).append(max(args[0], 0.0))
        elif h.kind == "geo" and args[0] > 1e-9 and args[1] > 1e-9:
            extra.setdefault(index, []).append(math.sqrt(args[1] / args[0]))


def refine(problem: Problem, breakpoints: int = 48):
    """Solve the LP, adding tangents at each solution until the approximation is tight there
    (cutting planes). Returns HiGHS's result, the final arrays and the added tangent points."""
    from scipy.optimize import linprog

    extra: dict[int, list[float]] = {}
    for _ in range(REFINE_ROUNDS + 1):
        arrays = lp_arrays(problem, breakpoints, extra)
        (a_ub, b_ub), (a_eq, b_eq) = arrays.matrices()
        res = linprog(
            arrays.c,
            A_ub=a_ub if a_ub.shape[0] else None,
            b_ub=b_ub if a_ub.shape[0] else None,
            A_eq=a_eq if a_eq.shape[0] else None,
            b_eq=b_eq if a_eq.shape[0] else None,
            bounds=arrays.var_bounds,
            method="highs",
        )
        if res.status == 2:
            raise SolverError("infeasible", "see the conflicting constraints reported above")
        if res.status != 0:
            raise SolverError(f"HiGHS failed: {res.message}")
        x = res.x[: problem.n_x]
        true_value = evaluate(problem, x)[0] - problem.objective.get(-1, 0.0)
        if -res.fun - true_value <= 1e-9 * max(1.0, abs(true_value)):
            break
        refine_points(problem, x, extra)
    return res, arrays, extra


def solve_lp(problem: Problem, breakpoints: int = 48) -> Solution:
    """Maximise the refined tangent-plane LP; shadow prices are HiGHS's duals (per row unit)."""
    res, arrays, _ = refine(problem, breakpoints)
    (a_ub, b_ub), _ = arrays.matrices()
    duals, binding = {}, []
    slack_ub = b_ub - a_ub @ res.x
    for r, name in arrays.names_ub.items():
        duals[name] = float(-res.ineqlin.marginals[r])
        if abs(slack_ub[r]) <= 1e-7 * max(1.0, abs(b_ub[r])):
            binding.append(name)
    for r, name in arrays.names_eq.items():
        duals[name] = float(-res.eqlin.marginals[r])
        binding.append(name)
    objective = -float(res.fun) + problem.objective.get(-1, 0.0)
    caps = -np.asarray(res.upper.marginals[: problem.n_x])
    return Solution(res.x[: problem.n_x].copy(), objective, duals, binding, "lp-highs", caps)
