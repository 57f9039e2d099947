"""The `fl allocate solve` config: corpora, budgets, limits, groups, solver choice."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from frontload.allocate.pools import CorpusSpec
from frontload.allocate.terms import parse_term
from frontload.config import StrictModel
from frontload.errors import ConfigError

PhaseName = Literal["pretrain", "midtrain", "sft"]


class Budget(StrictModel):
    """A phase budget: tokens, or model size x tokens per parameter, or (SFT) samples."""

    tokens: float | None = Field(default=None, gt=0, description="Budget in tokens.")
    params: float | None = Field(default=None, gt=0, description="Model parameters.")
    tokens_per_param: float | None = Field(default=None, gt=0, description="Tokens per parameter.")
    samples: float | None = Field(default=None, gt=0, description="SFT examples (sft only).")

    @model_validator(mode="after")
    def _one_way(self) -> Budget:
        ways = [self.tokens is not None, self.params is not None, self.samples is not None]
        if sum(ways) != 1:
            raise ValueError("give exactly one of tokens, params (+ tokens_per_param), samples")
        if self.params is not None and self.tokens_per_param is None:
            raise ValueError("params needs tokens_per_param")
        return self

    def token_budget(self) -> float | None:
        if self.params is not None:
            return self.params * self.tokens_per_param
        return self.tokens


class CorpusLimit(StrictModel):
    """Per-corpus limits; every mapping is keyed by phase."""

    phases: list[PhaseName] | None = Field(default=None, description="Phases it may be used in.")
    max_epochs: dict[PhaseName, float] = Field(default_factory=dict, description="Epoch caps.")
    min_fraction: dict[PhaseName, float] = Field(
        default_factory=dict, description="Least share of the phase budget."
    )
    max_fraction: dict[PhaseName, float] = Field(
        default_factory=dict, description="Largest share of the phase budget."
    )
    at_least_if_used: dict[PhaseName, float] = Field(
        default_factory=dict, description="Share of the budget it takes if used at all (milp)."
    )


class Group(StrictModel):
    """Bounds on the share of a phase budget taken by a set of corpora."""

    name: str = Field(description="Name used in reports (e.g. reasoning_share).")
    phase: PhaseName = Field(description="Phase the bounds apply to.")
    corpora: list[str] | Literal["all"] = Field(default="all", description="Members.")
    min: float = Field(default=0.0, ge=0, le=1, description="Least share of the budget.")
    max: float = Field(default=1.0, ge=0, le=1, description="Largest share of the budget.")


class AllocateConfig(StrictModel):
    """Everything `fl allocate solve` needs."""

    name: str = Field(default="plan", description="Plan name (plans/<name>.yaml).")
    model: str = Field(default="default", description="Response model file, or 'default'.")
    workspace_corpora: list[str] = Field(
        default_factory=list, description="Corpora read from the workspace (exact overlaps)."
    )
    corpora: dict[str, CorpusSpec] = Field(
        default_factory=dict, description="Corpora given by hand (relations declared)."
    )
    general_corpus: str = Field(default="general", description="Fills the pretraining budget.")
    budgets: dict[PhaseName, Budget] = Field(description="Budget per phase (pretrain required).")
    max_epochs: dict[PhaseName, float] = Field(
        default_factory=lambda: {"pretrain": 16.0, "midtrain": 16.0, "sft": 8.0},
        description="Default epoch cap per phase.",
    )
    limits: dict[str, CorpusLimit] = Field(default_factory=dict, description="Per-corpus limits.")
    groups: list[Group] = Field(default_factory=list, description="Share bounds on corpus sets.")
    sft_quality_floor: float | None = Field(
        default=None, ge=0, le=1, description="Least token-weighted long-CoT index in SFT."
    )
    trust_region: float | None = Field(
        default=2.0, gt=0, description="Cap at this multiple of the range the model was fitted on."
    )
    solver: Literal["conic", "lp", "milp"] = Field(default="conic", description="Backend.")
    integer_sft_epochs: bool = Field(default=False, description="Whole SFT epochs (milp).")
    max_corpora: dict[PhaseName, int] = Field(
        default_factory=dict, description="At most this many corpora per phase (milp)."
    )
    tie_break: Literal["none", "reference", "fewest"] = Field(
        default="none", description="Second stage among equally good plans."
    )
    reference: dict[PhaseName, dict[str, float]] = Field(
        default_factory=dict, description="Reference split (share of phase budget) for tie_break."
    )
    objective: dict[str, float] | None = Field(
        default=None, description="Category weights of the objective (default: the model's)."
    )
    lp_breakpoints: int = Field(
        default=24, ge=4, le=2000, description="Initial tangents per LP term (then refined)."
    )
    extra_terms: list[str] = Field(
        default_factory=list,
        description="Extra objective terms as cvxpy expressions of x[corpus_phase] (conic).",
    )

    @field_validator("extra_terms")
    @classmethod
    def _terms_are_data(cls, terms: list[str]) -> list[str]:
        """Checked against the whitelist at load, so a hostile term fails before any work."""
        for text in terms:
            try:
                parse_term(text)
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return terms

    @model_validator(mode="after")
    def _pretrain_budget(self) -> AllocateConfig:
        if "pretrain" not in self.budgets:
            raise ValueError("budgets.pretrain is required")
        if self.budgets["pretrain"].samples is not None:
            raise ValueError("budgets.pretrain: give tokens (or params), not samples")
        return self

    @model_validator(mode="after")
    def _limits_in_range(self) -> AllocateConfig:
        """Caught here with the field's name; a negative cap would only surface as 'infeasible'."""
        for phase, cap in self.max_epochs.items():
            if cap < 0:
                raise ValueError(f"max_epochs.{phase} is {cap}; epoch caps must be >= 0")
        for corpus, limit in self.limits.items():
            for phase, cap in limit.max_epochs.items():
                if cap < 0:
                    raise ValueError(f"limits.{corpus}.max_epochs.{phase} is {cap}; must be >= 0")
            for key in ("min_fraction", "max_fraction", "at_least_if_used"):
                for phase, share in getattr(limit, key).items():
                    if not 0 <= share <= 1:
                        raise ValueError(f"limits.{corpus}.{key}.{phase} is {share}; give 0..1")
        for group in self.groups:
            if group.min > group.max:
                raise ValueError(f"groups.{group.name}: min {group.min} > max {group.max}")
        return self
