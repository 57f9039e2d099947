"""Explain a plan in words and draw the sweeps behind it (score vs SFT budget, vs reasoning share)."""

from __future__ import annotations

from pathlib import Path

from frontload.allocate.config import AllocateConfig, Budget, Group
from frontload.plan import Plan
from frontload.workspace import Workspace


def _fmt(tokens: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(tokens) >= size:
            return f"{tokens / size:.3g}{unit}"
    return f"{tokens:.0f}"


def display_unit(plan: Plan) -> tuple[str, float]:
    """Token step for marginal values: 1B at the study's scale, smaller for small budgets, so that
    "one more step" stays within ~10% of the smallest budget (a linear price means nothing beyond)."""
    return step_for([p.budget_tokens for p in plan.phases])


def step_for(budgets: list[float]) -> tuple[str, float]:
    """The token step of `display_unit` for these phase budgets."""
    smallest = min((b for b in budgets if b > 0), default=1e12)
    for label, size in (("1B", 1e9), ("1M", 1e6), ("1k", 1e3)):
        if size <= 0.1 * smallest:
            return label, size
    return "1", 1.0


def explain(plan: Plan) -> str:
    """The plan as a table per phase plus a few lines on why (values per a budget-sized step)."""
    label, size = display_unit(plan)
    per = size / 1e9  # plan values are stored per 1B tokens
    lines = [f"plan {plan.name} (solver {plan.solver}, model {plan.model})"]
    for phase in plan.phases:
        lines.append(f"\n{phase.name}: budget {_fmt(phase.budget_tokens)} tokens")
        value_head = f"value/{label}"
        lines.append(
            f"  {'corpus':<12}{'tokens':>10}{'epochs':>8}{'weight':>8}{'effective':>11}{value_head:>10}"
        )
        for e in sorted(phase.entries, key=lambda e: -e.tokens):
            if e.tokens == 0 and abs(e.marginal_value) < 1e-9:
                continue
            lines.append(
                f"  {e.corpus:<12}{_fmt(e.tokens):>10}{e.epochs:>8.2f}{e.weight:>8.3f}"
                f"{_fmt(e.effective_tokens):>11}{e.marginal_value * per:>10.3g}"
            )
        if phase.general_corpus and phase.general_tokens:
            share = phase.general_tokens / max(phase.budget_tokens, 1)
            lines.append(
                f"  {phase.general_corpus:<12}{_fmt(phase.general_tokens):>10}{'':>8}{share:>8.3f}"
            )
    lines.append("\npredicted (interval):")
    for cat, p in plan.predicted.items():
        lines.append(f"  {cat:<12}{p.score:6.1f}  [{p.low:.1f}, {p.high:.1f}]")
    lines.append("\nbaselines (objective; only feasible ones are scored):")
    for b in plan.baselines:
        lines.append(f"  {b.name:<22}{_score(b.objective, b.feasible)}  {b.description}")
        if not b.feasible:
            lines.append(f"  {'':<22}{'':>10}  breaks: {', '.join(b.breaks)}")
    lines.append(f"  {'this plan':<22}{_score(plan.objective, True)}")
    lines.append("\nwhy (from the solver's duals and slacks):")
    lines.append(
        f"  binding: {', '.join(plan.binding_constraints) or 'nothing (interior optimum)'}"
    )
    sft = plan.shadow_prices.get("budget:sft")
    if sft is not None and "budget:sft" not in plan.binding_constraints:
        lines.append("  the SFT budget does not bind: more of it is worth 0 points")
    elif sft is not None and _samples(plan):
        lines.append(f"  one more 1M SFT samples would be worth {sft:.3g} points")
    elif sft is not None:
        lines.append(f"  one more {label} SFT tokens would be worth {sft * per:.3g} points")
    for name in plan.binding_constraints:
        value = plan.shadow_prices.get(name)
        if name == "budget:sft" or value is None:
            continue
        if name.startswith("max_epochs:"):
            lines.append(f"  relaxing {name} by one epoch: {value:+.3g} points")
        else:
            lines.append(f"  relaxing {name} by {label} tokens: {value * per:+.3g} points")
    lines += [f"  note: {n}" for n in plan.notes]
    return "\n".join(lines)


def _score(objective: float | None, feasible: bool) -> str:
    """A baseline's objective; an infeasible one is not scored, a negative one is off the scale."""
    if not feasible or objective is None:
        return f"{'infeasible':>10}"
    if objective < 0:
        return f"{'< 0 (off)':>10}"
    return f"{objective:10.2f}"


def _samples(plan: Plan) -> bool:
    return any(n.startswith("sft budget in samples") for n in plan.notes)


def sweeps(
    config: AllocateConfig, workspace: Workspace | None, out_dir: Path, points: int = 9
) -> list[Path]:
    """PNG: predicted objective vs SFT budget, and vs pretraining reasoning share (LP mode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from frontload.allocate.model import load_model
    from frontload.allocate.solve import solve_plan

    out_dir.mkdir(parents=True, exist_ok=True)
    base = config.model_copy(update={"solver": "lp", "tie_break": "none"})
    paths = []
    if "sft" in base.budgets:
        budget = base.budgets["sft"]
        factors = [0.25 * 2 ** (i / 2) for i in range(points)]
        scores = []
        for f in factors:
            scaled = Budget(
                **{
                    k: (v * f if k in ("tokens", "samples", "params") and v else v)
                    for k, v in budget.model_dump().items()
                }
            )
            cfg = base.model_copy(
                update={"budgets": {**base.budgets, "sft": scaled}, "trust_region": None}
            )
            scores.append(solve_plan(cfg, workspace).objective)
        paths.append(
            _plot(
                plt,
                factors,
                scores,
                "SFT budget (x configured)",
                out_dir / f"{config.name}_sft_budget.png",
                log=True,
            )
        )
    shares = [0.02 + i * (0.6 - 0.02) / (points - 1) for i in range(points)]
    scores = []
    for share in shares:
        group = Group(name="sweep_share", phase="pretrain", min=share, max=share)
        keep = [g for g in base.groups if g.phase != "pretrain"]
        cfg = base.model_copy(update={"groups": keep + [group], "trust_region": None})
        scores.append(solve_plan(cfg, workspace).objective)
    paths.append(
        _plot(
            plt,
            shares,
            scores,
            "pretraining reasoning share",
            out_dir / f"{config.name}_pt_share.png",
            fitted=load_model(config.model).fitted_range["pt_reasoning_share"],
        )
    )
    return paths


def _plot(
    plt, xs, ys, label: str, path: Path, log: bool = False, fitted: float | None = None
) -> Path:
    """One sweep; a dashed line marks the edge of the range the model was fitted on."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(xs, ys, marker="o")
    if fitted is not None:
        ax.axvline(fitted, color="grey", linestyle="--", linewidth=1, label="fitted range ends")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(path.stem.replace("_", " "), fontsize=9)
    if log:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(label)
    ax.set_ylabel("predicted post-SFT score")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
