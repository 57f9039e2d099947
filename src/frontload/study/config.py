"""The pipeline file of `fl run`: which recipes make up a study, and how small to run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from frontload.config import StrictModel, load_yaml


class SampleStage(StrictModel):
    """Generate the quickstart sample dump into <workspace>/sample first (the demo)."""

    records: int = Field(300, ge=50, description="About this many raw records.")
    seed: int = Field(0, description="Generator seed.")


class TokenizerStage(StrictModel):
    """Train the workspace tokenizer on corpus text."""

    corpora: list[str] = Field(
        default_factory=lambda: ["general", "dlmq"], description="Corpora whose text it sees."
    )
    vocab_size: int = Field(1024, gt=0, description="BPE vocabulary size.")


class Arm(StrictModel):
    """One pretraining arm of the study (M_base, M_LDQ, ...)."""

    name: str = Field(description="Model name in the report, e.g. M_LDQ.")
    pt_reasoning: str = Field(
        description="Reasoning corpus in pretraining as the study names it: none, LDQ, SHQ, LMQ."
    )
    pretrain: str = Field(description="Pretraining recipe (relative to the pipeline file).")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Recipe keys replaced for this study (e.g. total_tokens)."
    )
    use_plan: bool = Field(False, description="Pretrain on the allocation plan's blend.")


class SFTArm(StrictModel):
    """One SFT dataset applied to every pretraining arm (or to the arms listed)."""

    name: str = Field(description="SFT data as the study names it: SHQ, LDQ, LMQ, ALF.")
    recipe: str = Field(description="SFT recipe (its `model` and `name` are set per arm).")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Recipe keys replaced.")
    scale: int = Field(
        1, ge=1, description="SFT data relative to the standard budget (the study's 2x arms: 2)."
    )
    arms: list[str] | None = Field(
        None, description="Pretraining arms fine-tuned on it (default: every arm)."
    )

    @property
    def label(self) -> str:
        """LDQ, or 2xLDQ for a doubled arm (the study's T6 naming)."""
        return self.name if self.scale == 1 else f"{self.scale}x{self.name}"


class RLStage(StrictModel):
    """GRPO after SFT, for some arms."""

    recipe: str = Field(description="RL recipe (its `model` and `name` are set per arm).")
    arms: list[str] = Field(description="Pretraining arms to RL-train (after `sft`).")
    sft: str = Field(description="Which SFT dataset's model to start from, e.g. SHQ.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Recipe keys replaced.")


class EvalStage(StrictModel):
    """Evaluation of every model the pipeline trains."""

    base_tasks: list[str] = Field(default_factory=lambda: ["gsm8k"], description="Base models.")
    chat_tasks: list[str] = Field(
        default_factory=lambda: ["gsm8k"], description="SFT and RL models (chat template)."
    )
    limit: int | None = Field(8, ge=1, description="First N problems per task (None: all).")
    task_limits: dict[str, int] = Field(
        default_factory=dict, description="Per task, a limit of its own (e.g. {gsm8k: 64})."
    )
    draw_seed: int | None = Field(
        None,
        description="Draw the `limit` problems per task at random with this seed (None: first N).",
    )
    max_new_tokens: int | None = Field(64, ge=1, description="Cap on generated tokens.")
    batch_size: int = Field(8, ge=1, description="Prompts per generation batch.")
    shots: int | None = Field(
        None, ge=0, description="Few-shot examples for base models (default: the study's per task)."
    )
    data_dir: str | None = Field(
        None,
        description="Benchmark folder, relative to the pipeline file, searched first (then the "
        "workspace store, $FL_BENCH_DIR and the files shipped with fl).",
    )

    @model_validator(mode="after")
    def _limits_name_tasks(self) -> EvalStage:
        unknown = sorted(set(self.task_limits) - set(self.base_tasks) - set(self.chat_tasks))
        if unknown:
            raise ValueError(f"task_limits names tasks no model is evaluated on: {unknown}")
        return self


class ReportStage(StrictModel):
    """How `fl report study` judges the study's findings."""

    metric: str = Field(
        "bpb",
        description="Metric the verdicts use: bpb (gold-solution bits per byte, lower is better), "
        "score (accuracy), answer_logprob or choice_prob.",
    )
    category: str = Field("math", description="Benchmark category the findings are measured on.")
    level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the intervals.")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        known = ("bpb", "score", "answer_logprob", "choice_prob")
        if value not in known:
            raise ValueError(f"unknown metric {value!r}; use one of {', '.join(known)}")
        return value


class PipelineConfig(StrictModel):
    """`fl run PIPELINE.yaml`: sample -> curate -> tokenizer -> tokenize -> allocate -> pretrain
    arms -> SFT -> RL -> evaluate -> report."""

    name: str = Field(description="Study name; state in <workspace>/pipeline/<name>/.")
    sample: SampleStage | None = Field(None, description="Generate the sample dump first.")
    curate: str = Field(description="Curation recipe (builds the pool and the corpora).")
    tokenizer: TokenizerStage = Field(default_factory=TokenizerStage, description="Tokenizer.")
    tokenize: list[str] = Field(
        default_factory=lambda: ["general", "dldq", "dshq", "dlmq"],
        description="Corpora to tokenize into shards for pretraining.",
    )
    allocate: str | None = Field(None, description="Allocation config (None: skip the solver).")
    pretrain_overrides: dict[str, Any] = Field(
        default_factory=dict, description="Recipe keys replaced in every arm (e.g. total_tokens)."
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0],
        min_length=1,
        description="Seeds (data order and initialisation): every arm is trained once per seed.",
    )
    arms: list[Arm] = Field(description="Pretraining arms.")
    sft: list[SFTArm] = Field(default_factory=list, description="SFT datasets, each on every arm.")
    rl: RLStage | None = Field(None, description="GRPO after SFT (optional).")
    evaluate: EvalStage = Field(default_factory=EvalStage, description="Evaluation.")
    report: ReportStage = Field(default_factory=ReportStage, description="Findings' verdicts.")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds repeat: {value}; list each seed once")
        return value


def load_pipeline(path: str | Path) -> tuple[PipelineConfig, Path]:
    """The pipeline and the folder its relative recipe paths are read from."""
    path = Path(path)
    return load_yaml(path, PipelineConfig), path.resolve().parent
