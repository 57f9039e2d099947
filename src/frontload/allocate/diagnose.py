"""Say which constraints conflict, and by how much, when a config has no feasible allocation."""

from __future__ import annotations

import numpy as np

from frontload.allocate.problem import Problem, affine_matrix
from frontload.errors import SolverError


def conflicts(problem: Problem) -> list[tuple[str, float, str, list[str]]]:
    """Least total relaxation (in each row's reported unit) that makes the rows feasible, with the
    active rows and epoch caps each relaxed row runs into."""
    from scipy.optimize import linprog
    from scipy.sparse import hstack, identity

    n, rows = problem.n_x, list(problem.rows)
    if not rows:
        return []
    matrix, const = affine_matrix([r.affine for r in rows], problem.n_vars)
    matrix = matrix[:, :n].tocsr()
    rhs = np.array([r.rhs for r in rows]) - const
    scales = np.array([r.scale for r in rows])
    # relax each row by s >= 0; the cost is the relaxation in the row's reported unit
    a_ub = hstack([matrix, -identity(len(rows))]).tocsr()
    cost = np.concatenate([np.zeros(n), 1.0 / scales])
    bounds = [(0.0, u) for u in problem.upper] + [(0.0, None)] * len(rows)
    res = linprog(cost, A_ub=a_ub, b_ub=rhs, bounds=bounds, method="highs")
    if res.status != 0:
        return []
    x, slack = res.x[:n], res.x[n:]
    lhs = matrix @ x
    active = [
        r
        for r, row in enumerate(rows)
        if slack[r] <= 1e-9 and abs(lhs[r] - rhs[r]) <= 1e-9 * max(1, abs(rhs[r]))
    ]
    capped = [i for i in range(n) if problem.upper[i] > 0 and x[i] >= problem.upper[i] - 1e-12]
    found = []
    for r, row in enumerate(rows):
        if slack[r] <= 1e-9:
            continue
        cols = set(matrix[r].indices)
        others = [rows[a].name for a in active if cols & set(matrix[a].indices)]
        others += [f"max_epochs:{problem.x_names[i]}" for i in capped if i in cols]
        found.append((row.name, float(slack[r] / row.scale), row.unit, others))
    return found


def raise_infeasible(problem: Problem) -> None:
    """Raise a SolverError naming the conflicting constraints and the relaxation each needs."""
    found = conflicts(problem)
    if not found:
        raise SolverError(
            "no allocation satisfies the constraints", "check budgets, limits and groups"
        )
    parts = "; ".join(
        f"{name} short by {amount:.4g} x {unit}"
        + (f" (conflicts with {', '.join(others)})" if others else "")
        for name, amount, unit, others in found
    )
    raise SolverError(
        f"no allocation satisfies the constraints: {parts}",
        "relax those limits, or raise the budgets or epoch caps they conflict with",
    )
