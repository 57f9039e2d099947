"""The allocation plan: THE contract between allocation and training.

Written by `fl allocate solve` as `plans/<name>.yaml` plus a JSON twin (the catalog's `plans` view).
A plan is resolved once where a run starts (the CLI's `--plan`, or the study) and passed on as a
typed `Plan`. Each phase reads as `[(corpus, tokens)]` (`PhasePlan.corpus_tokens`): the pretraining
loader serves exactly those tokens per corpus, SFT serves each corpus within one example of them,
and the exporters below turn the same view into other trainers' terms (Megatron `--data-path`
token weights, HF `interleave_datasets` per-example probabilities). Depends on config and errors
only: corpus names become token folders in `frontload.data`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator

from frontload.config import StrictModel, dump_yaml, read_yaml, validate
from frontload.errors import ConfigError, InputError

PhaseName = Literal["pretrain", "midtrain", "sft"]
WEIGHT_TOLERANCE = 1e-4
PLAN_SUFFIXES = (".yaml", ".yml", ".json")


class PlanEntry(StrictModel):
    """One corpus in one phase."""

    corpus: str = Field(description="Corpus name (a folder under corpora/ or tokens/).")
    tokens: int = Field(
        ge=0, description="Tokens of this corpus read in the phase (repeats counted)."
    )
    epochs: float = Field(ge=0, description="Passes over the corpus: tokens / corpus size.")
    weight: float = Field(
        ge=0, le=1, description="Share of the phase's tokens (pretrain: of budget_tokens)."
    )
    effective_tokens: float = Field(
        default=0.0, ge=0, description="Tokens after diminishing returns to repetition."
    )
    marginal_value: float = Field(
        default=0.0, description="Predicted score points per extra billion tokens of this corpus."
    )


class PhasePlan(StrictModel):
    """A training phase: its budget and the corpora it reads."""

    name: PhaseName = Field(description="pretrain, midtrain or sft.")
    budget_tokens: int = Field(ge=0, description="Token budget of the phase (pretrain: exact).")
    general_corpus: str | None = Field(
        default="general", description="Corpus that fills the rest of the budget (pretrain)."
    )
    general_tokens: int = Field(default=0, ge=0, description="Tokens of the general corpus.")
    entries: list[PlanEntry] = Field(default_factory=list, description="Reasoning corpora used.")

    @model_validator(mode="after")
    def _weights_add_up(self) -> PhasePlan:
        if self.name == "sft" or self.budget_tokens == 0:
            return self
        total = sum(e.weight for e in self.entries) + self.general_tokens / self.budget_tokens
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(
                f"phase {self.name}: weights plus general_tokens/budget_tokens sum to "
                f"{total:.6f}, not 1"
            )
        return self

    def entry(self, corpus: str) -> PlanEntry | None:
        return next((e for e in self.entries if e.corpus == corpus), None)

    @property
    def total_tokens(self) -> int:
        return self.general_tokens + sum(e.tokens for e in self.entries)

    def corpus_tokens(self) -> list[tuple[str, int]]:
        """The phase as `[(corpus, tokens)]`: the reasoning entries that read tokens, then the
        general corpus; a corpus listed twice is summed. A pretraining phase adds up to its budget.
        """
        tokens: dict[str, int] = {}
        for entry in self.entries:
            if entry.tokens > 0:
                tokens[entry.corpus] = tokens.get(entry.corpus, 0) + entry.tokens
        if self.general_corpus and self.general_tokens > 0:
            tokens[self.general_corpus] = tokens.get(self.general_corpus, 0) + self.general_tokens
        if not tokens:
            raise ConfigError(f"plan phase {self.name} reads no tokens", "re-solve the plan")
        return list(tokens.items())

    def blend_weights(self) -> dict[str, float]:
        """Token share per corpus (general included), summing to 1: `corpus_tokens` normalised."""
        tokens = self.corpus_tokens()
        total = sum(count for _, count in tokens)
        return {name: count / total for name, count in tokens}

    def epochs(self) -> dict[str, float]:
        """Epochs per reasoning corpus (what `fl train sft` repeats)."""
        return {e.corpus: e.epochs for e in self.entries if e.tokens > 0}


class Prediction(StrictModel):
    """A predicted score with its bootstrap interval."""

    score: float = Field(description="Point prediction (percent).")
    low: float = Field(description="Lower end of the interval.")
    high: float = Field(description="Upper end of the interval.")


class Baseline(StrictModel):
    """A reference allocation evaluated with the same model, shown beside the plan."""

    name: str = Field(description="Baseline name (no_pretrain_reasoning, all_sft, ...).")
    description: str = Field(default="", description="What the baseline does.")
    feasible: bool = Field(default=True, description="Whether it meets every constraint.")
    breaks: list[str] = Field(
        default_factory=list, description="Constraints it breaks (then it is not scored)."
    )
    objective: float | None = Field(
        default=None, description="Model objective of the baseline (None when infeasible)."
    )
    predicted: dict[str, Prediction] = Field(
        default_factory=dict, description="Scores by category (empty when infeasible)."
    )
    phases: list[PhasePlan] = Field(default_factory=list, description="The baseline's allocation.")


class Plan(StrictModel):
    """The solved allocation with its predictions and sensitivities."""

    name: str = Field(description="Plan name; files are plans/<name>.yaml and .json.")
    phases: list[PhasePlan] = Field(description="Phases in training order.")
    predicted: dict[str, Prediction] = Field(
        default_factory=dict, description="Predicted post-SFT scores by category (avg included)."
    )
    objective: float = Field(default=0.0, description="Model objective at the solution.")
    baselines: list[Baseline] = Field(default_factory=list, description="Reference allocations.")
    binding_constraints: list[str] = Field(
        default_factory=list, description="Constraints active at the optimum."
    )
    shadow_prices: dict[str, float] = Field(
        default_factory=dict,
        description="Objective gain per extra unit of each constraint (token rows: per 1B "
        "tokens; SFT samples: per 1M; max_epochs caps: per extra epoch).",
    )
    solver: str = Field(default="", description="Solver mode that produced the plan.")
    model: str = Field(default="", description="Response model file used (or 'default').")
    notes: list[str] = Field(default_factory=list, description="Warnings and explanations.")
    created: str = Field(default="", description="UTC time the plan was written.")

    def phase(self, name: str) -> PhasePlan | None:
        return next((p for p in self.phases if p.name == name), None)

    def require_phase(self, name: str) -> PhasePlan:
        """The phase, or a clear error naming the phases the plan has."""
        found = self.phase(name)
        if found is None:
            have = ", ".join(p.name for p in self.phases) or "none"
            raise ConfigError(
                f"plan {self.name} has no {name} phase (it has: {have})",
                "re-solve with that phase in the allocate config",
            )
        return found


def load_plan(path: str | Path) -> Plan:
    """Read plans/<name>.yaml (or its .json twin); errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: plan not found", "run `fl allocate solve CONFIG.yaml` first")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from error
    else:
        data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: a plan must be a mapping with `name` and `phases`")
    if "phases" not in data and "budgets" in data:  # easy to mix up: both live under recipes/plans
        raise InputError(
            f"{path} is an allocate config, not a plan",
            f"solve it first: fl allocate solve {path}, then pass plans/<name>.yaml",
        )
    return validate(Plan, data, str(path))


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Write the plan as YAML and its JSON twin beside it (same stem); returns the YAML path."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml"):
        path = path.with_suffix(".yaml")
    dump_yaml(plan, path)
    twin = path.with_suffix(".json")
    tmp = twin.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(plan.model_dump(mode="json"), indent=1), encoding="utf-8")
    tmp.replace(twin)
    return path


def resolve_plan(spec: str | Path, plans_dir: Path | None = None) -> Plan:
    """A plan from a path (YAML or JSON) or a plan name in `plans_dir` (`<name>.yaml`, `.yml` or
    `.json`, the workspace's plans/): what every `--plan` option accepts."""
    path = Path(spec).expanduser()
    if path.is_file():
        return load_plan(path)
    if plans_dir is not None and "/" not in str(spec) and path.suffix not in PLAN_SUFFIXES:
        for suffix in PLAN_SUFFIXES:
            candidate = plans_dir / f"{spec}{suffix}"
            if candidate.is_file():
                return load_plan(candidate)
    known = sorted({p.stem for p in plans_dir.glob("*.*")}) if plans_dir else []
    raise InputError(
        f"plan {spec}: no such file"
        + (f", and no plan of that name in {plans_dir}" if plans_dir else ""),
        f"plans in the workspace: {', '.join(known)}"
        if known
        else "run `fl allocate solve CONFIG.yaml` first",
    )


def plan_text(plan: Plan) -> str:
    """The plan as the YAML a run folder keeps (same plan, same bytes, same hash)."""
    return yaml.safe_dump(plan.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def scaled_plan(plan: Plan, pretrain_tokens: int) -> Plan:
    """The plan's pretraining phases with the same shares at another total budget (a proxy run of
    the plan's mix); SFT unchanged. Recorded in the plan's notes, so a run never hides it."""
    phases = [p for p in plan.phases if p.name != "sft"]
    total = sum(p.budget_tokens for p in phases)
    if total <= 0:
        raise ConfigError(f"plan {plan.name} has no pretraining budget to scale")
    factor = pretrain_tokens / total
    out = []
    for phase in plan.phases:
        if phase.name == "sft":
            out.append(phase)
            continue
        budget = int(round(phase.budget_tokens * factor))
        entries = []
        for e in phase.entries:
            tokens = int(round(e.weight * budget))
            weight = tokens / budget if budget else 0.0
            entries.append(
                e.model_copy(
                    update={"tokens": tokens, "weight": weight, "epochs": e.epochs * factor}
                )
            )
        used = sum(e.tokens for e in entries)
        out.append(
            phase.model_copy(
                update={
                    "budget_tokens": budget,
                    "entries": entries,
                    "general_tokens": budget - used,
                }
            )
        )
    note = f"pretraining phases scaled from {total:,} to {pretrain_tokens:,} tokens (same shares)"
    return plan.model_copy(update={"phases": out, "notes": [*plan.notes, note]})


# Exporters: one phase's token weights (`PhasePlan.blend_weights`, or any blend's) in other
# trainers' terms. `frontload.data.interop.export_blend` fills in the token folders' facts.


def megatron_data_path(weights: dict[str, float], prefix: Callable[[str], str]) -> str:
    """Megatron `--data-path` string: `w1 prefix1 w2 prefix2 ...` (`prefix(corpus)` names each
    corpus's indexed dataset). Megatron samples fixed-length sequences, so its weights are token
    weights, as in the plan."""
    return " ".join(f"{weight:.8g} {prefix(corpus)}" for corpus, weight in weights.items())


def interleave_probabilities(
    weights: dict[str, float], example_tokens: dict[str, float]
) -> dict[str, float]:
    """`probabilities=` per corpus for `datasets.interleave_datasets` (summing exactly to 1).

    `interleave_datasets` draws examples, not tokens: a corpus of long documents drawn at its
    token weight would be oversampled by its length ratio. The probability of corpus i is its token
    weight over its mean tokens per example, renormalised, so the expected token shares equal the
    weights (`example_tokens`: mean tokens per example of each corpus)."""
    missing = [name for name in weights if not example_tokens.get(name)]
    if missing:
        raise ConfigError(
            f"no mean example length for {', '.join(missing)}",
            "tokenize those corpora (`fl data tokenize`) so their documents can be counted",
        )
    names = list(weights)
    per_example = [weights[n] / example_tokens[n] for n in names]
    total = math.fsum(per_example)
    probs = [p / total for p in per_example]
    probs[-1] = max(0.0, 1.0 - math.fsum(probs[:-1]))
    return dict(zip(names, probs, strict=True))
