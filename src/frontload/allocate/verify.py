"""`fl allocate verify PLAN`: train the plan and the baselines it claims to beat on fresh seeds, and
judge every comparison with the study's paired rule.

The arms are the plan, the plan's proportional and UniMax baselines, the study's recipe at the
plan's own reasoning share (so a comparison is about where the data goes, not how much), and the
best design point the sweep observed. Each is trained with the loop's recipes at the same budgets on
seeds the sweep never used (`seed_offset`, recorded in verify.json), so no arm replays a run the
model was fitted on; an arm whose allocation equals a design point is flagged all the same (its
prediction is in-sample). Per arm: the fitted model's prediction with its 90% interval (from
`allocate.predict`, whichever rung the model file solves with) next to the realized metric (mean
over seeds, standard error). Per baseline: the plan minus the baseline, paired by seed, with a 95%
t interval and a verdict: better or worse only when the interval excludes 0, else inconclusive.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from frontload.allocate.design import load_sweep
from frontload.allocate.experiments import build_table, higher_is_better
from frontload.allocate.model import load_model
from frontload.allocate.predict import predict_allocations
from frontload.allocate.solve import load_config, resolve_pools
from frontload.errors import ConfigError, InputError
from frontload.plan import Plan, load_plan, save_plan
from frontload.workspace import Workspace

BASELINES = ("proportional", "unimax", "study_share")
BEST = "best_observed"
LEVEL = 0.95  # the study report's rule


def check_corpora(plan: Plan, ws: Workspace, source: str | Path) -> None:
    """Every corpus the plan reads must exist in the workspace (corpora/ or tokens/)."""
    have = {p.name for d in (ws.corpora_dir, ws.tokens_dir) if d.is_dir() for p in d.iterdir()}
    for phase in plan.phases:
        names = [e.corpus for e in phase.entries if e.tokens > 0]
        if phase.general_corpus and phase.general_tokens > 0:
            names.append(phase.general_corpus)
        for name in names:
            if name not in have:
                raise InputError(
                    f"{source}: phase {phase.name} reads corpus '{name}', which is not in "
                    f"workspace {ws.root}",
                    f"corpora there: {', '.join(sorted(have)) or 'none'}; curate and tokenize it, "
                    "or solve the plan for this workspace",
                )


def verify_seeds(count: int, offset: int, sweep_seeds: list[int]) -> list[int]:
    """`count` seeds from `offset` on; an overlap with the sweep's seeds is an error (a verify run
    on a sweep seed replays, with deterministic training, a run the model was fitted on)."""
    seeds = list(range(offset, offset + count))
    shared = sorted(set(seeds) & set(sweep_seeds))
    if shared:
        raise ConfigError(
            f"verify seeds {seeds} overlap the sweep's seeds {sorted(sweep_seeds)} at {shared}",
            f"set verify.seed_offset above {max(sweep_seeds)}",
        )
    return seeds


def allocation(plan: Plan) -> dict[tuple[str, str], int]:
    """(phase, corpus) -> tokens of what the plan trains (the general filler included)."""
    out: dict[tuple[str, str], int] = {}
    for phase in plan.phases:
        for entry in phase.entries:
            if entry.tokens > 0:
                out[(phase.name, entry.corpus)] = int(entry.tokens)
        if phase.general_corpus and phase.general_tokens > 0:
            out[(phase.name, phase.general_corpus)] = int(phase.general_tokens)
    return out


def same_allocation(a: Plan, b: Plan, tolerance: float = 1e-3) -> bool:
    """Same corpora in the same phases with the same tokens (within rounding)."""
    left, right = allocation(a), allocation(b)
    if set(left) != set(right):
        return False
    return all(abs(left[k] - right[k]) <= max(1.0, tolerance * left[k]) for k in left)


def best_observed(sweep_plans: dict[str, Plan], table: list[dict], category: str) -> str:
    """The design point with the best mean metric over the sweep's seeds (the sweep's own runs)."""
    scores: dict[str, list[float]] = {}
    for row in table:
        if row["category"] == category and row["point"] in sweep_plans:
            scores.setdefault(row["point"], []).append(float(row["score"]))
    if not scores:
        raise InputError("the sweep has no evaluated runs to pick the best observed point from")
    sign = 1.0 if higher_is_better(table[0]["metric"]) else -1.0
    return max(scores, key=lambda p: sign * sum(scores[p]) / len(scores[p]))


def arms(plan: Plan, best: Plan | None) -> list[tuple[str, Plan]]:
    """(arm, plan) for the plan, its baselines (same budgets) and the best observed design point."""
    out = [("plan", plan)]
    found = {b.name: b for b in plan.baselines}
    missing = [name for name in BASELINES if name not in found]
    if missing:
        raise InputError(
            f"plan {plan.name} has no {', '.join(missing)} baseline",
            "re-solve it with this version of `fl allocate solve`",
        )
    for name in BASELINES:
        baseline = found[name]
        out.append(
            (
                name,
                Plan(
                    name=f"{plan.name}-{name}",
                    phases=baseline.phases,
                    solver="baseline",
                    model=plan.model,
                    notes=[baseline.description],
                ),
            )
        )
    if best is not None:
        copy = best.model_copy(update={"name": f"{plan.name}-{BEST}"})
        out.append(
            (BEST, copy.model_copy(update={"notes": [*best.notes, f"design point {best.name}"]}))
        )
    return out


@dataclass
class ArmResult:
    """One arm: prediction (90% interval) and realized metric per verify seed."""

    arm: str
    plan: str
    predicted: float
    low: float
    high: float
    rung: str
    realized: dict[int, float]
    in_sweep: str | None  # the design point with the same allocation, if any
    plan_file: str = ""  # relative to the loop folder
    runs: dict[int, str] = field(default_factory=dict)  # seed -> SFT run (= its evaluation)

    @property
    def mean(self) -> float:
        values = list(self.realized.values())
        return sum(values) / len(values) if values else math.nan

    @property
    def sem(self) -> float:
        values = list(self.realized.values())
        if len(values) < 2:
            return math.nan
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))


@dataclass
class Comparison:
    """The plan minus one baseline, paired by seed, with a t interval and a verdict."""

    baseline: str
    diff: float
    low: float | None
    high: float | None
    seeds: int
    verdict: str  # better / worse / inconclusive (for the plan)


@dataclass
class VerifyResult:
    """Everything verify.json holds."""

    metric: str
    category: str
    seeds: list[int]
    seed_offset: int
    sweep_seeds: list[int]
    arms: list[ArmResult]
    comparisons: list[Comparison]
    level: float = LEVEL
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """verify.json: the arms and comparisons, and `rows` + `note` for `fl report html`."""
        data = asdict(self)
        for arm, raw in zip(self.arms, data["arms"], strict=True):
            raw["mean"], raw["sem"] = arm.mean, arm.sem
            raw["realized"] = {str(k): v for k, v in arm.realized.items()}
            raw["runs"] = {str(k): v for k, v in arm.runs.items()}
        data["rank"] = self.rank()
        data["rows"] = self.rows()
        data["note"] = (
            f"fresh seeds {self.seeds} (the sweep used {self.sweep_seeds}); plan minus arm "
            f"paired over seeds with a {self.level:.0%} t interval; the plan ranks {self.rank()} "
            f"of {len(self.arms)} (a rank is not a verdict)"
        )
        return data

    def rows(self) -> list[dict[str, Any]]:
        """One row per arm: prediction, realized, its sweep twin, and the plan's paired verdict."""
        versus = {c.baseline: c for c in self.comparisons}
        out = []
        for arm in self.arms:
            c = versus.get(arm.arm)
            out.append(
                {
                    "arm": arm.arm,
                    "predicted": arm.predicted,
                    "90% interval": f"[{arm.low:.4f}, {arm.high:.4f}]",
                    "realized": arm.mean,
                    "se": arm.sem,
                    "seeds": len(arm.realized),
                    "in sweep": arm.in_sweep or "no",
                    "plan minus arm": None if c is None else c.diff,
                    "95% interval": ""
                    if c is None or c.low is None
                    else f"[{c.low:+.4f}, {c.high:+.4f}]",
                    "plan is": "" if c is None else c.verdict,
                }
            )
        return out

    def rank(self) -> int:
        """The plan's rank by realized mean (1 = best); a rank is not a verdict."""
        sign = 1.0 if higher_is_better(self.metric) else -1.0
        order = sorted(self.arms, key=lambda a: -sign * a.mean)
        return 1 + next(i for i, a in enumerate(order) if a.arm == "plan")


def paired(plan: dict[int, float], other: dict[int, float], level: float, higher_better: bool):
    """Mean of plan - other over shared seeds, its t interval, and the verdict for the plan."""
    from scipy.stats import t as student_t

    seeds = sorted(set(plan) & set(other))
    diffs = [plan[s] - other[s] for s in seeds]
    n = len(diffs)
    diff = sum(diffs) / n if n else math.nan
    if n < 2:
        return diff, None, None, n, "inconclusive"
    sd = math.sqrt(sum((d - diff) ** 2 for d in diffs) / (n - 1))
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)  # the study's rule
    low, high = diff - half, diff + half
    good_low, good_high = (low, high) if higher_better else (-high, -low)
    verdict = "better" if good_low > 0 else "worse" if good_high < 0 else "inconclusive"
    return diff, low, high, n, verdict


def verify_plan(
    plan_path: Path, model_path: Path, loop, upstream: str, metric: str
) -> VerifyResult:
    """Train every arm x fresh seed with the loop's runner; judge; write the loop's verify.json."""

    plan = load_plan(plan_path)
    check_corpora(plan, loop.ws, plan_path)
    settings = loop.config.verify
    seeds = verify_seeds(settings.seeds, settings.seed_offset, loop.config.sweep.seeds)
    category = next(iter(load_model(model_path).objective))
    sweep, base = load_sweep(loop.folder / "design")
    sweep_plans = {p.name: load_plan(base / p.plan) for p in sweep.points}
    table = build_table(loop.ws, metric)
    sweep_runs = [r for r in table if r["seed"] in loop.config.sweep.seeds]
    best = sweep_plans[best_observed(sweep_plans, sweep_runs, category)]
    folder = loop.folder / "verify"
    trained: dict[str, dict[int, str]] = {}
    chosen = arms(plan, best)
    for name, arm in chosen:
        path = save_plan(arm, folder / f"{arm.name}.yaml")
        trained[name] = {s: loop.train_point("verify", path, s, upstream) for s in seeds}
    realized = {
        r["run"]: float(r["score"])
        for r in build_table(loop.ws, metric)
        if r["category"] == category
    }
    pools = resolve_pools(load_config(loop.base / loop.config.sweep.allocate), loop.ws)
    predicted = predict_allocations(model_path, [arm for _, arm in chosen], pools)
    results = []
    for (name, arm), guess in zip(chosen, predicted, strict=True):
        twin = next((p for p, d in sweep_plans.items() if same_allocation(arm, d)), None)
        values = {s: realized[run] for s, run in trained[name].items() if run in realized}
        results.append(
            ArmResult(
                name,
                arm.name,
                guess.mean,
                guess.low,
                guess.high,
                guess.rung,
                values,
                twin,
                f"verify/{arm.name}.yaml",
                trained[name],
            )
        )
    higher = higher_is_better(metric)
    comparisons = [
        Comparison(other.arm, *paired(results[0].realized, other.realized, LEVEL, higher))
        for other in results[1:]
    ]
    notes = [f"best observed design point: {best.name}"]
    result = VerifyResult(
        metric,
        category,
        seeds,
        settings.seed_offset,
        list(loop.config.sweep.seeds),
        results,
        comparisons,
        LEVEL,
        notes,
    )
    (loop.folder / "verify.json").write_text(json.dumps(result.to_json(), indent=2))
    return result


def format_table(result: VerifyResult) -> str:
    """The arms (predicted, realized, sweep twin) and the plan's paired comparisons."""
    metric = result.metric
    lines = [
        f"verify on fresh seeds {result.seeds} (offset {result.seed_offset}; the sweep used "
        f"{result.sweep_seeds}), {metric} on {result.category}:",
        f"{'arm':<16}{'predicted':>11}{'90% interval':>22}{'realized':>20}  in sweep",
    ]
    for a in result.arms:
        interval = f"[{a.low:.4f}, {a.high:.4f}]"
        realized = f"{a.mean:.4f} +- {a.sem:.4f}"
        twin = f"yes ({a.in_sweep})" if a.in_sweep else "no"
        lines.append(f"{a.arm:<16}{a.predicted:>11.4f}{interval:>22}{realized:>20}  {twin}")
    pct = f"{result.level:.0%}"
    lines.append(f"plan minus baseline, paired over seeds, {pct} t interval:")
    for c in result.comparisons:
        interval = "-" if c.low is None else f"[{c.low:+.4f}, {c.high:+.4f}]"
        lines.append(
            f"  plan vs {c.baseline:<14}{c.diff:+.4f} {interval:>22}  n={c.seeds}  {c.verdict}"
        )
    decided = [c for c in result.comparisons if c.verdict != "inconclusive"]
    lines.append(
        f"plan ranks {result.rank()} of {len(result.arms)} by realized {metric}; "
        f"{len(decided)} of {len(result.comparisons)} comparisons exclude 0 "
        "(a rank is not a verdict)"
    )
    flagged = [a.arm for a in result.arms if a.in_sweep]
    if flagged:
        lines.append(
            f"in sweep: {', '.join(flagged)} share a design point's allocation "
            "(their predictions are in-sample; their verify runs are on fresh seeds)"
        )
    lines += result.notes
    return "\n".join(lines)
