"""Say which constraints conflict, and by how much, when a config has no feasible allocation."""

from __future__ import annotations

import numpy as np

from frontload.allocate.problem import Problem, affine_matrix
from frontload.errors import SolverError


def conflicts(problem: Problem) -> list[tuple[str, float, str]]:
    """Least total relaxation (in each row's reported unit) that makes the rows feasible."""
    from scipy.optimize import linprog
    from scipy.sparse import hstack, identity

    n, rows = problem.n_x, list(problem.rows)
    if not rows:
        return []
    matrix, const = affine_matrix([r.affine for r in rows], problem.n_vars)
    matrix = matrix[:, :n]
    rhs = np.array([r.rhs for r in rows]) - const
    scales = np.array([r.scale for r in rows])
    # relax each row by s >= 0 (equalities both ways); cost is the relaxation in reported units
    a_ub = hstack([matrix, -identity(len(rows))]).tocsr()
    cost = np.concatenate([np.zeros(n), 1.0 / scales])
    bounds = [(0.0, u) for u in problem.upper] + [(0.0, None)] * len(rows)
    res = linprog(cost, A_ub=a_ub, b_ub=rhs, bounds=bounds, method="highs")
    if res.status != 0:
        return []
    slack = res.x[n:]
    return [
        (r.name, float(s / r.scale), r.unit) for r, s in zip(rows, slack, strict=True) if s > 1e-9
    ]


def raise_infeasible(problem: Problem) -> None:
    """Raise a SolverError naming the conflicting constraints and the relaxation each needs."""
    found = conflicts(problem)
    if found:
        parts = "; ".join(f"{name} short by {amount:.4g} x {unit}" for name, amount, unit in found)
        raise SolverError(
            f"no allocation satisfies the constraints: {parts}",
            "relax those limits, or raise the budgets or epoch caps they conflict with",
        )
    raise SolverError("no allocation satisfies the constraints", "check budgets, limits and groups")
