"""Reference allocations shown beside the plan, evaluated with the same model.

no_pretrain_reasoning: the plan's SFT, no reasoning data in pretraining. all_sft: reasoning data only
in SFT, spread in proportion to size. proportional: the plan's phase totals split in proportion to
corpus sizes. unimax (Chung et al. 2023): equal shares, capped at the epoch limit, leftover spread
over the rest. study: the paper's recipe, the largest (most diverse) corpus at 20% of pretraining and
the best long-CoT corpus in SFT. study_share: the same recipe at the plan's own reasoning share of
pretraining, so that a comparison with the plan is about where the data goes, not how much of it.
`random_allocations` draws feasible plans at random (the design's candidates, and the search a
flexible rung solves by).
"""

from __future__ import annotations

import numpy as np

from frontload.allocate.build import Built
from frontload.allocate.problem import violations


def _fill(built: Built, x: np.ndarray, phase: str, total: float, weights: dict[str, float]) -> None:
    """Put `total` units into `phase` by weights, capped at each variable's upper bound."""
    remaining = {c: w for c, w in weights.items() if w > 0}
    left = total
    while left > 1e-12 and remaining:
        norm = sum(remaining.values())
        spill = 0.0
        for corpus, w in list(remaining.items()):
            i = built.xindex[(corpus, phase)]
            give = left * w / norm
            room = built.problem.upper[i] - x[i]
            if give >= room:
                spill += give - room
                x[i] += room
                del remaining[corpus]
            else:
                x[i] += give
        left = spill


def _fit_sft_budget(built: Built, x: np.ndarray) -> None:
    """Scale the SFT part down until the SFT budget row (tokens or samples) holds."""
    row = next((r for r in built.problem.rows if r.name == "budget:sft"), None)
    if row is None:
        return
    used = sum(c * x[i] for i, c in row.affine.items())
    if used > row.rhs > 0:
        for i in row.affine:
            x[i] *= row.rhs / used


def random_allocations(built: Built, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Feasible allocations: a random total per phase split by a sparse Dirichlet, capped."""
    corpora = list(built.pools.corpora)
    out = []
    for _ in range(count):
        x = np.zeros(built.problem.n_x)
        for phase in built.phases:
            cap = sum(built.problem.upper[built.xindex[(c, phase)]] for c in corpora)
            limit = min(cap, built.budget_tokens[phase] / built.scale)
            weights = rng.dirichlet(np.full(len(corpora), 0.5))
            _fill(built, x, phase, rng.uniform(0, limit), dict(zip(corpora, weights, strict=True)))
        _fit_sft_budget(built, x)
        if not violations(built.problem, x, tol=1e-6):
            out.append(x)
    return out


def _unimax(built: Built, x: np.ndarray, phase: str, total: float) -> None:
    _fill(built, x, phase, total, dict.fromkeys(built.pools.corpora, 1.0))


def baseline_allocations(built: Built, x_plan: np.ndarray) -> dict[str, tuple[str, np.ndarray]]:
    """name -> (description, decision vector)."""
    pools = built.pools
    totals = {p: sum(x_plan[built.xindex[(c, p)]] for c in pools.corpora) for p in built.phases}
    sizes = {c: pools.corpus_tokens[c] for c in pools.corpora}
    out = {}

    x = np.zeros_like(x_plan)
    for (_c, p), i in built.xindex.items():
        if p == "sft":
            x[i] = x_plan[i]
    out["no_pretrain_reasoning"] = ("no reasoning data in pretraining; the plan's SFT", x)

    if "sft" in built.phases:
        x = np.zeros_like(x_plan)
        sft_cap = built.budget_tokens["sft"] / built.scale
        _fill(built, x, "sft", sft_cap, sizes)
        _fit_sft_budget(built, x)
        out["all_sft"] = ("all reasoning data in SFT, in proportion to size", x)

    x = np.zeros_like(x_plan)
    for p in built.phases:
        _fill(built, x, p, totals[p], sizes)
    _fit_sft_budget(built, x)
    out["proportional"] = ("the plan's phase totals, split in proportion to corpus size", x)

    x = np.zeros_like(x_plan)
    for p in built.phases:
        _unimax(built, x, p, totals[p])
    _fit_sft_budget(built, x)
    out["unimax"] = ("equal shares capped at the epoch limits (UniMax)", x)

    widest = max(pools.corpora, key=lambda c: sizes[c])
    out["study"] = _study(built, widest, 0.2, x_plan)
    out["study_share"] = _study(built, widest, totals["pretrain"], x_plan)
    return out


def _study(built: Built, widest: str, share: float, like: np.ndarray) -> tuple[str, np.ndarray]:
    """The study's recipe with `widest` at `share` of pretraining (capped at its epoch limit)."""
    x = np.zeros_like(like)
    _fill(built, x, "pretrain", share, {widest: 1.0})
    what = f"the study's recipe: {widest} at {share:.0%} of pretraining"
    if "sft" not in built.phases:
        return what, x
    best = max(built.pools.corpora, key=lambda c: built.pools.corpus_index(c, "sft_index"))
    _fill(built, x, "sft", built.budget_tokens["sft"] / built.scale, {best: 1.0})
    _fit_sft_budget(built, x)
    return f"{what}, SFT on {best}", x
