"""MILP mode (scipy.optimize.milp / HiGHS) on the LP's tangent planes, plus discrete choices.

Adds whole SFT epochs, "at least X% of the phase if used", "at most k corpora per phase", and the
second stage that breaks ties between equally good plans (closest to a reference split, or fewest
corpora) while keeping the objective within 1e-6 of the optimum. Shadow prices come from the LP
with the discrete choices fixed.
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np
from scipy import sparse

from frontload.allocate.build import Built
from frontload.allocate.config import AllocateConfig
from frontload.allocate.lp import Solution, lp_arrays, refine
from frontload.errors import SolverError

TIE_TOLERANCE = 1e-6


@contextlib.contextmanager
def _quiet_native_stdout():
    """HiGHS's MIP code prints debug lines straight to fd 1 even with disp off; keep them out of the
    plan the user reads."""
    sys.stdout.flush()
    try:
        saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no fd 1 to silence (closed stdout): nothing can leak into it either
        yield
        return
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved), os.close(devnull)


def _milp(c, a, lo, hi, bounds, integrality):
    from scipy.optimize import Bounds, LinearConstraint, milp

    with _quiet_native_stdout():
        res = milp(
            c,
            constraints=LinearConstraint(a, lo, hi) if a.shape[0] else None,
            bounds=Bounds(*np.array(bounds, dtype=float).T),
            integrality=integrality,
        )
    if res.status == 2 or res.x is None:
        raise SolverError("infeasible (MILP)", "relax at_least_if_used, max_corpora or epochs")
    if res.status != 0:
        raise SolverError(f"HiGHS MILP failed: {res.message}")
    return res.x


def solve_milp(built: Built, config: AllocateConfig) -> Solution:
    """Solve with discrete extras; then the tie-breaking stage if asked."""
    problem, pools = built.problem, built.pools
    _, _, extra = refine(problem, config.lp_breakpoints)  # tangents where the relaxation lies
    arrays = lp_arrays(problem, config.lp_breakpoints, extra)
    (a_ub, b_ub), (a_eq, b_eq) = arrays.matrices()
    n = problem.n_vars
    bounds = [
        (lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
        for lo, hi in arrays.var_bounds
    ]
    integrality = [0] * n
    extra_rows: list[tuple[dict[int, float], float, float]] = []  # (coefs, lo, hi)

    def new(lo: float, hi: float, kind: int) -> int:
        bounds.append((lo, hi))
        integrality.append(kind)
        return len(bounds) - 1

    binaries: dict[tuple[str, str], int] = {}
    for (corpus, phase), i in built.xindex.items():
        size = pools.corpus_tokens[corpus] / built.scale
        if phase == "sft" and config.integer_sft_epochs and problem.upper[i] > 0:
            k = new(0, np.floor(problem.upper[i] / size + 1e-9), 1)
            extra_rows.append(({i: 1.0, k: -size}, 0.0, 0.0))
        limit = config.limits.get(corpus)
        share = limit.at_least_if_used.get(phase) if limit else None
        if share or phase in config.max_corpora or config.tie_break == "fewest":
            y = new(0, 1, 1)
            binaries[(corpus, phase)] = y
            extra_rows.append(({i: 1.0, y: -problem.upper[i]}, -np.inf, 0.0))
            if share:
                need = share * built.budget_tokens[phase] / built.scale
                extra_rows.append(({i: 1.0, y: -need}, 0.0, np.inf))
    for phase, k in config.max_corpora.items():
        ys = {y: 1.0 for (c, p), y in binaries.items() if p == phase}
        extra_rows.append((ys, -np.inf, float(k)))
    m = len(bounds)
    blocks, lo, hi = [], [], []
    if a_ub.shape[0]:
        blocks.append(sparse.hstack([a_ub, sparse.csr_matrix((a_ub.shape[0], m - n))]))
        lo += [-np.inf] * a_ub.shape[0]
        hi += list(b_ub)
    if a_eq.shape[0]:
        blocks.append(sparse.hstack([a_eq, sparse.csr_matrix((a_eq.shape[0], m - n))]))
        lo += list(b_eq)
        hi += list(b_eq)
    if extra_rows:
        rows, cols, data = [], [], []
        for r, (coefs, _, _) in enumerate(extra_rows):
            for j, v in coefs.items():
                rows.append(r), cols.append(j), data.append(v)
        blocks.append(sparse.csr_matrix((data, (rows, cols)), shape=(len(extra_rows), m)))
        lo += [e[1] for e in extra_rows]
        hi += [e[2] for e in extra_rows]
    a = sparse.vstack(blocks).tocsr() if blocks else sparse.csr_matrix((0, m))
    c = np.concatenate([arrays.c, np.zeros(m - n)])
    z = _milp(c, a, np.array(lo), np.array(hi), bounds, np.array(integrality))
    if config.tie_break != "none":
        z = _second_stage(built, config, c, a, lo, hi, bounds, integrality, z, binaries)
    return _with_duals(built, config, z, n, extra)


def _second_stage(built, config, c, a, lo, hi, bounds, integrality, z, binaries):
    """Among plans within TIE_TOLERANCE of the optimum: fewest corpora or closest to a reference."""
    best = float(c @ z)
    keep = best + TIE_TOLERANCE * max(1.0, abs(best))
    m = len(bounds)
    if config.tie_break == "fewest":
        c2 = np.zeros(m)
        for y in binaries.values():
            c2[y] = 1.0
        a2 = sparse.vstack([a, sparse.csr_matrix(c.reshape(1, -1))]).tocsr()
        return _milp(
            c2, a2, np.array(lo + [-np.inf]), np.array(hi + [keep]), bounds, np.array(integrality)
        )
    # reference: minimise sum |x - ref| with d >= x - ref, d >= ref - x
    ref = np.zeros(built.problem.n_x)
    for phase, split in config.reference.items():
        for corpus, share in split.items():
            if (corpus, phase) in built.xindex:
                ref[built.xindex[(corpus, phase)]] = (
                    share * built.budget_tokens[phase] / built.scale
                )
    nx = built.problem.n_x
    bounds2 = bounds + [(0.0, np.inf)] * nx
    a_wide = sparse.hstack([a, sparse.csr_matrix((a.shape[0], nx))])
    eye_x = sparse.hstack([sparse.eye(nx), sparse.csr_matrix((nx, m - nx))])
    d_rows_1 = sparse.hstack([eye_x, -sparse.eye(nx)])  # x - d <= ref
    d_rows_2 = sparse.hstack([-eye_x, -sparse.eye(nx)])  # -x - d <= -ref
    obj_row = sparse.hstack([sparse.csr_matrix(c.reshape(1, -1)), sparse.csr_matrix((1, nx))])
    a2 = sparse.vstack([a_wide, d_rows_1, d_rows_2, obj_row]).tocsr()
    lo2 = np.array(lo + [-np.inf] * (2 * nx + 1))
    hi2 = np.concatenate([hi, ref, -ref, [keep]])
    c2 = np.concatenate([np.zeros(m), np.ones(nx)])
    z2 = _milp(c2, a2, lo2, hi2, bounds2, np.array(integrality + [0] * nx))
    return z2[:m]


def _with_duals(built, config, z, n, extra) -> Solution:
    """Shadow prices and binding rows from the LP with the discrete choices fixed: whole SFT epochs
    fix their corpus, unused corpora stay at zero, the used ones stay free (so budgets still have
    a price; fixing every x would make every dual zero)."""
    from scipy.optimize import linprog

    problem = built.problem
    arrays = lp_arrays(problem, config.lp_breakpoints, extra)
    (a_ub, b_ub), _ = arrays.matrices()
    fixed_bounds = list(arrays.var_bounds)
    for i in range(problem.n_x):
        fixed_bounds[i] = _fixed(i, z[i], fixed_bounds[i], config, built)
    res = linprog(arrays.c, A_ub=a_ub, b_ub=b_ub, bounds=fixed_bounds, method="highs")
    duals, binding = {}, []
    if res.status == 0:
        slack = b_ub - a_ub @ z[:n]
        for r, name in arrays.names_ub.items():
            duals[name] = float(-res.ineqlin.marginals[r])
            if abs(slack[r]) <= 1e-7 * max(1.0, abs(b_ub[r])):
                binding.append(name)
    objective = -float(arrays.c @ z[:n]) + problem.objective.get(-1, 0.0)
    caps = -np.asarray(res.upper.marginals[: problem.n_x]) if res.status == 0 else None
    return Solution(
        np.clip(z[: problem.n_x], 0, None), objective, duals, binding, "milp-highs", caps
    )


def _fixed(i: int, value: float, bounds: tuple, config: AllocateConfig, built: Built) -> tuple:
    """Bounds of x[i] in the pricing LP, given the discrete choice the MILP made for it."""
    corpus, phase = next(k for k, v in built.xindex.items() if v == i)
    limit = config.limits.get(corpus)
    share = limit.at_least_if_used.get(phase) if limit else None
    if phase == "sft" and config.integer_sft_epochs:
        return (value, value)
    discrete = bool(share) or phase in config.max_corpora or config.tie_break != "none"
    if not discrete:
        return bounds
    if value <= 1e-9 * max(1.0, abs(bounds[1] or 0.0)):
        return (0.0, 0.0)
    if share:
        need = share * built.budget_tokens[phase] / built.scale
        return (max(bounds[0] or 0.0, need), bounds[1])
    return bounds
