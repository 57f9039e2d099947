"""A plan in words: a table per phase, the baselines, and why (duals and slacks) at a readable step."""

from __future__ import annotations

from frontload.plan import Plan


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
