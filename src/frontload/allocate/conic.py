"""Conic mode: the exact concave program in cvxpy (DCP-verified), solved by Clarabel.

Effective tokens use the exponential cone: reading z tokens of a pool of u unique tokens is split
as z = a + b with a <= u counted fully and b valued u R* (1 - exp(-b / (u R*))); the solver fills a
first because its slope is larger, which gives exactly Muennighoff's piecewise formula.
"""

from __future__ import annotations

import numpy as np

from frontload.allocate.lp import Solution
from frontload.allocate.problem import Problem, affine_matrix
from frontload.allocate.terms import build_term
from frontload.errors import ConfigError, SolverError


def _extra_term(text: str, x_named: dict):
    """A user term: a whitelisted expression over `x` (name -> variable); must be concave."""
    import cvxpy as cp

    expr = build_term(text, x_named)
    expr = cp.sum(expr) if hasattr(expr, "shape") and expr.shape else expr
    if not expr.is_concave():
        raise ConfigError(
            f"extra_terms: '{text}' is not concave under DCP rules (curvature "
            f"{expr.curvature}); maximising it would not be a convex program",
            "use a concave expression, e.g. cp.log(1 + x['dshq:sft']) or -cp.square(...)",
        )
    return expr


def solve_conic(problem: Problem, extra_terms: list[str] | None = None) -> Solution:
    """Maximise the exact objective; duals of named rows are the shadow prices."""
    import cvxpy as cp

    z = cp.Variable(problem.n_vars)
    caps = z[: problem.n_x] <= np.array(problem.upper)
    cons = [z[: problem.n_x] >= 0, caps]
    by_kind: dict[str, list] = {"eff": [], "sat": [], "geo": [], "min": []}
    for h in problem.hypos:
        by_kind[h.kind].append(h)
    if by_kind["eff"]:
        hs = by_kind["eff"]
        m, c0 = affine_matrix([h.args[0] for h in hs], problem.n_vars)
        u = np.array([h.params["u"] for h in hs])
        scale = u * np.array([h.params["rstar"] for h in hs])
        a, b = cp.Variable(len(hs)), cp.Variable(len(hs), nonneg=True)
        t = z[[h.var for h in hs]]
        cons += [
            a + b == m @ z + c0,
            a <= u,
            t <= a + scale - cp.multiply(scale, cp.exp(-b / scale)),
        ]
    if by_kind["sat"]:
        hs = by_kind["sat"]
        m, c0 = affine_matrix([h.args[0] for h in hs], problem.n_vars)
        k = np.array([h.params["k"] for h in hs])
        cons.append(z[[h.var for h in hs]] <= 1 - cp.exp(-(m @ z + c0) / k))
    for h in by_kind["geo"]:
        m, c0 = affine_matrix(h.args, problem.n_vars)
        cons.append(z[h.var] <= cp.geo_mean(m @ z + c0))
    pairs = [(h.var, arg) for h in by_kind["min"] for arg in h.args]
    if pairs:
        m, c0 = affine_matrix([a for _, a in pairs], problem.n_vars)
        cons.append(z[[v for v, _ in pairs]] <= m @ z + c0)
    named = []
    for row in problem.rows:
        m, c0 = affine_matrix([row.affine], problem.n_vars)
        expr = m @ z + c0
        con = (expr == row.rhs) if row.eq else (expr <= row.rhs)
        cons.append(con)
        named.append((row, con, expr))
    obj_m, obj_c = affine_matrix([problem.objective], problem.n_vars)
    objective = obj_m @ z + obj_c
    if extra_terms:
        x_named = {name: z[i] for i, name in enumerate(problem.x_names)}
        x_named.update({name.replace(":", "_"): z[i] for i, name in enumerate(problem.x_names)})
        for text in extra_terms:
            objective = objective + _extra_term(text, x_named)
    prob = cp.Problem(cp.Maximize(cp.sum(objective)), cons)
    if not prob.is_dcp():
        raise ConfigError("the allocation program is not DCP", "check extra_terms")
    try:
        prob.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as error:
        raise SolverError(f"Clarabel failed: {error}", "try `solver: lp`") from error
    if prob.status in ("infeasible", "infeasible_inaccurate"):
        raise SolverError("infeasible")
    if prob.status not in ("optimal", "optimal_inaccurate"):
        raise SolverError(f"Clarabel returned status {prob.status}", "try `solver: lp`")
    duals, binding = {}, []
    for row, con, expr in named:
        duals[row.name] = float(np.ravel(con.dual_value)[0]) if con.dual_value is not None else 0.0
        slack = row.rhs - float(np.ravel(expr.value)[0])
        if row.eq or abs(slack) <= 1e-6 * max(1.0, abs(row.rhs)):
            binding.append(row.name)
    x = np.clip(np.asarray(z.value[: problem.n_x]), 0.0, np.array(problem.upper))
    bound_duals = np.asarray(caps.dual_value) if caps.dual_value is not None else None
    return Solution(x, float(prob.value), duals, binding, "conic-clarabel", bound_duals)
