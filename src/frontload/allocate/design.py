"""`fl allocate design`: N two-phase allocations to train, chosen to teach the response model most.

Every point is a feasible plan of the allocate config (budgets, epoch caps, fractions, groups, SFT
quality floor, trust region). The design always holds the anchors a user wants to compare against:
the study's canonical arms (no reasoning / LDQ / SHQ / LMQ in pretraining, each with SFT on SHQ and
on LDQ), the proportional and UniMax splits, and the plan the current model solves for. The other
points are picked from random feasible allocations either space-filling (greedy maximin distance in
the decision space, scaled by each variable's cap) or D-optimal around the current model (greedy
log-det of the model's term values, so the fit can tell the terms apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from frontload.allocate.baselines import (
    _fill,
    _fit_sft_budget,
    baseline_allocations,
    random_allocations,
)
from frontload.allocate.build import Built, build_problem
from frontload.allocate.config import AllocateConfig
from frontload.allocate.experiments import design_kind_note
from frontload.allocate.model import TERMS, load_model
from frontload.allocate.problem import affine_value, evaluate, violations
from frontload.allocate.solve import _phases, _predictions, resolve_pools, run_solver
from frontload.config import StrictModel, dump_yaml, load_yaml
from frontload.errors import ConfigError, InputError
from frontload.plan import Plan, save_plan
from frontload.workspace import Workspace

# intercept + one coefficient per term + the settings chosen by cross-validation (k_pt, k_sft,
# rstar_sft): a sweep with fewer distinct points cannot pin them down
FREE_PARAMETERS = 1 + len(TERMS) + 3
CANDIDATES = 600
STUDY_ARMS = (("base", None), ("LDQ", "ldq"), ("SHQ", "shq"), ("LMQ", "lmq"))
STUDY_SFT = (("SHQ", "shq"), ("LDQ", "ldq"))


class DesignPoint(StrictModel):
    """One allocation of the sweep."""

    name: str = Field(description="Point name (its plan is plans/<name>.yaml beside the sweep).")
    kind: Literal["anchor", "design"] = Field(description="anchor (always included) or design.")
    description: str = Field(default="", description="What the point is.")
    plan: str = Field(description="Plan file, relative to the sweep file.")
    predicted: float | None = Field(default=None, description="Current model's avg prediction.")
    pt_reasoning: str | None = Field(
        default=None, description="Study arms: reasoning data in pretraining (none, LDQ, SHQ, LMQ)."
    )
    sft_data: str | None = Field(default=None, description="Study arms: SFT data (SHQ, LDQ).")


class Sweep(StrictModel):
    """sweep.yaml: the points of a design and where they came from."""

    name: str = Field(description="Sweep name.")
    config: str = Field(description="Allocate config the design was drawn from.")
    criterion: str = Field(description="space-filling or d-optimal.")
    seed: int = Field(default=0, description="Sampling seed.")
    points: list[DesignPoint] = Field(description="Anchors first, then the designed points.")
    notes: list[str] = Field(default_factory=list, description="Anchors left out and why.")


@dataclass
class _Candidate:
    name: str
    kind: str
    description: str
    x: np.ndarray
    study: tuple[str, str] | None = None  # (pt_reasoning, sft_data) of a study arm


def _match(corpora: list[str], key: str | None) -> str | None:
    """The config's corpus the study calls `key` (dldq for ldq, ...), if any."""
    if key is None:
        return None
    hits = [c for c in corpora if c.lower().endswith(key)]
    return hits[0] if hits else None


def study_arms(built: Built) -> list[_Candidate]:
    """The study's pretraining arms (20% reasoning, capped by epochs) x its SFT datasets."""
    corpora = list(built.pools.corpora)
    out = []
    sft_total = built.budget_tokens.get("sft", 0.0) / built.scale
    for pt_label, pt_key in STUDY_ARMS:
        pt = _match(corpora, pt_key)
        if pt_key is not None and pt is None:
            continue
        sft_arms = STUDY_SFT if "sft" in built.phases else (("none", None),)
        for sft_label, sft_key in sft_arms:
            sft = _match(corpora, sft_key)
            if sft_key is not None and sft is None:
                continue
            x = np.zeros(built.problem.n_x)
            if pt:
                _fill(built, x, "pretrain", 0.2, {pt: 1.0})
            if sft:
                _fill(built, x, "sft", sft_total, {sft: 1.0})
                _fit_sft_budget(built, x)
            name = f"M_{pt_label}" + (f"+SFT_{sft_label}" if sft else "")
            what = f"{pt or 'no reasoning'} at 20% of pretraining" if pt else "no reasoning"
            description = f"study arm: {what}, SFT on {sft}"
            study = (pt_label if pt_key else "none", sft_label) if sft else None
            out.append(_Candidate(name, "anchor", description, x, study))
    return out


def term_values(built: Built, x: np.ndarray) -> np.ndarray:
    """[1, term values] of one allocation under the current model's settings."""
    _, values = evaluate(built.problem, x)
    return np.array([1.0] + [affine_value(built.features[t], values) for t in TERMS])


def _scaled(built: Built, x: np.ndarray) -> np.ndarray:
    upper = np.asarray(built.problem.upper, float)
    return np.divide(x, upper, out=np.zeros_like(x), where=upper > 0)


def pick(
    built: Built,
    chosen: list[np.ndarray],
    pool: list[np.ndarray],
    count: int,
    criterion: str,
) -> list[np.ndarray]:
    """Greedy: add the candidate farthest from the chosen set (maximin) or adding most log-det."""
    picked: list[np.ndarray] = []
    pool = list(pool)
    if criterion == "d-optimal":
        feats = [term_values(built, x) for x in pool]
        scale = np.maximum(np.abs(np.array(feats)).max(0), 1e-9)
        rows = [term_values(built, x) / scale for x in chosen]
        for _ in range(min(count, len(pool))):
            base = np.array(rows).T @ np.array(rows) if rows else 0
            ridge = 1e-6 * np.eye(len(scale))
            gains = [
                np.linalg.slogdet(base + np.outer(f / scale, f / scale) + ridge)[1] for f in feats
            ]
            best = int(np.argmax(gains))
            picked.append(pool.pop(best))
            rows.append(feats.pop(best) / scale)
        return picked
    points = [_scaled(built, x) for x in chosen]
    cands = [_scaled(built, x) for x in pool]
    for _ in range(min(count, len(pool))):
        if points:
            dist = [min(np.linalg.norm(c - p) for p in points) for c in cands]
        else:
            dist = [np.linalg.norm(c) for c in cands]
        best = int(np.argmax(dist))
        picked.append(pool.pop(best))
        points.append(cands.pop(best))
    return picked


def design(
    config: AllocateConfig,
    runs: int,
    workspace: Workspace | None = None,
    criterion: str = "space-filling",
    seed: int = 0,
) -> tuple[list[_Candidate], Built, list[str]]:
    """The anchors plus `runs - anchors` designed points, all feasible; notes say what was left out."""
    if runs < FREE_PARAMETERS:
        raise ConfigError(
            f"--runs {runs}: too few points; the response model has {FREE_PARAMETERS} free "
            f"parameters (intercept, {len(TERMS)} terms, 3 settings)",
            f"design at least {FREE_PARAMETERS} points (seeds do not count: they repeat a point)",
        )
    if criterion not in ("space-filling", "d-optimal"):
        raise ConfigError(f"--criterion {criterion}: unknown", "use space-filling or d-optimal")
    model = load_model(config.model)
    notes: list[str] = []
    pools = resolve_pools(config, workspace, notes)
    built = build_problem(config, pools, model)
    solution = run_solver(built, config)
    anchors = [_Candidate("plan", "anchor", "the current model's optimum", solution.x)]
    for name, (description, xb) in baseline_allocations(built, solution.x).items():
        if name in ("proportional", "unimax"):
            anchors.append(_Candidate(name, "anchor", description, xb))
    anchors += study_arms(built)
    kept = []
    for cand in anchors:
        broken = violations(built.problem, cand.x, tol=1e-6)
        if broken:
            notes.append(f"anchor {cand.name} left out: breaks {', '.join(broken[:3])}")
        elif any(np.allclose(cand.x, k.x, atol=1e-9) for k in kept):
            notes.append(f"anchor {cand.name} left out: same allocation as another anchor")
        else:
            kept.append(cand)
    if runs < len(kept):
        raise ConfigError(
            f"--runs {runs}: the design needs at least {len(kept)} points to hold its anchors",
            f"use --runs {max(len(kept), FREE_PARAMETERS)} or more",
        )
    rng = np.random.default_rng(seed)
    pool = random_allocations(built, CANDIDATES, rng)
    extra = pick(built, [c.x for c in kept], pool, runs - len(kept), criterion)
    if len(extra) < runs - len(kept):
        raise ConfigError(
            f"only {len(kept) + len(extra)} distinct feasible points found for --runs {runs}",
            "loosen the config's bounds (groups, fractions, epoch caps) or ask for fewer runs",
        )
    designed = [
        _Candidate(f"d{i:02d}", "design", f"{criterion} point", x) for i, x in enumerate(extra)
    ]
    return kept + designed, built, notes


def write_sweep(
    config_path: str | Path,
    runs: int,
    out: str | Path,
    workspace: Workspace | None = None,
    criterion: str = "space-filling",
    seed: int = 0,
) -> tuple[Sweep, Path]:
    """Design and write OUT/sweep.yaml plus one plan per point under OUT/plans/."""
    from frontload.allocate.solve import load_config

    config = load_config(config_path)
    ws = workspace if config.workspace_corpora else None
    points, built, notes = design(config, runs, ws, criterion, seed)
    model = load_model(config.model)
    out = Path(out)
    (out / "plans").mkdir(parents=True, exist_ok=True)
    entries = []
    for number, point in enumerate(points):
        name = f"{config.name}-{number:02d}-{point.name}".lower().replace("+", "-")
        predicted = _predictions(built, model, point.x)
        plan = Plan(
            name=name,
            phases=_phases(built, point.x, config.general_corpus, marginal=False),
            predicted=predicted,
            objective=evaluate(built.problem, point.x)[0],
            solver="design",
            model=config.model,
            notes=[design_kind_note(point.kind), point.description],
        )
        save_plan(plan, out / "plans" / f"{name}.yaml")
        avg = predicted.get("avg")
        entries.append(
            DesignPoint(
                name=name,
                kind=point.kind,
                description=point.description,
                plan=f"plans/{name}.yaml",
                predicted=avg.score if avg else None,
                pt_reasoning=point.study[0] if point.study else None,
                sft_data=point.study[1] if point.study else None,
            )
        )
    sweep = Sweep(
        name=config.name,
        config=str(Path(config_path).resolve()),
        criterion=criterion,
        seed=seed,
        points=entries,
        notes=notes,
    )
    path = out / "sweep.yaml"
    dump_yaml(sweep, path)
    return sweep, path


def load_sweep(path: str | Path) -> tuple[Sweep, Path]:
    """sweep.yaml (or the folder holding it) and the folder its plan paths are relative to."""
    path = Path(path)
    if path.is_dir():
        path = path / "sweep.yaml"
    if not path.is_file():
        raise InputError(f"{path}: sweep not found", "write one with `fl allocate design`")
    return load_yaml(path, Sweep), path.parent
