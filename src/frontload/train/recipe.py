"""The pretraining recipe (one YAML file) and the training config pieces other trainers reuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from frontload.config import StrictModel, load_yaml
from frontload.errors import ConfigError
from frontload.train.schedule import ScheduleConfig

LayerKind = Literal["mamba", "attention", "mlp"]


class ModelSpec(StrictModel):
    """Which model to build: a preset of `frontload.model` plus config overrides."""

    preset: str = Field("tiny", description="model preset: tiny, 125m, 350m, 1b, 8b")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="HybridConfig fields that replace the preset's"
    )


class SourceSpec(StrictModel):
    """One reasoning corpus of a hand-written blend."""

    corpus: str = Field(description="token dataset: a name under workspace tokens/, or a path")
    weight: float = Field(1.0, gt=0, description="relative weight among the reasoning sources")
    max_epochs: float | None = Field(
        None, gt=0, description="stop repeating this source after this many passes (None: no cap)"
    )


class PhaseSpec(StrictModel):
    """A stage of pretraining: its own blend, from the previous phase's end up to `until`."""

    name: str = Field(description="phase name, logged in metrics.jsonl")
    until: float = Field(gt=0, le=1, description="fraction of total_tokens at which it ends")
    reasoning_fraction: float | None = Field(
        None, ge=0, le=1, description="share of reasoning tokens (0: general only; None: default)"
    )


class DataSpec(StrictModel):
    """General data plus reasoning sources, by hand or from a plan's pretraining phase."""

    general: str | None = Field(
        "general", description="general corpus that fills the non-reasoning share (None: none)"
    )
    reasoning: list[SourceSpec] = Field(
        default_factory=list,
        description="reasoning sources by hand; a plan's pretraining entries replace them",
    )
    reasoning_fraction: float | None = Field(
        None,
        ge=0,
        le=1,
        description="default share of reasoning tokens (None: from the plan, else 0 without sources)",
    )
    phases: list[PhaseSpec] = Field(
        default_factory=list, description="staged data by token count (empty: one phase)"
    )
    validation_tokens: int = Field(
        16384, ge=0, description="held-out tokens per source for validation loss (0: none)"
    )

    @model_validator(mode="after")
    def _check_phases(self) -> DataSpec:
        ends = [phase.until for phase in self.phases]
        if ends and (ends != sorted(set(ends)) or ends[-1] != 1.0):
            raise ValueError(
                f"phases: `until` must increase strictly and the last must be 1.0, got {ends}"
            )
        if self.general is None and not self.reasoning:
            raise ValueError("neither a general corpus nor reasoning sources: nothing to train on")
        return self


class OptimizerConfig(StrictModel):
    """AdamW as in the study; fused on CUDA."""

    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW beta1, beta2")
    weight_decay: float = Field(0.1, ge=0, description="decoupled weight decay (not on norms)")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon")
    grad_clip: float | None = Field(1.0, gt=0, description="clip the global grad norm (None: off)")


class ParallelConfig(StrictModel):
    """FSDP2 is always on with more than one process; these switch the rest."""

    nproc_per_node: int = Field(
        1, ge=1, description="processes per machine; > 1 makes `fl run` launch torchrun"
    )
    strategy: Literal["fsdp", "hsdp"] = Field(
        "fsdp",
        description="fsdp: shard over all processes; hsdp: replicate x shard mesh (shards "
        "within a machine, replicas across machines)",
    )
    shard_size: int | None = Field(
        None, ge=1, description="hsdp: processes per shard group (default: processes per machine)"
    )

    activation_checkpointing: list[LayerKind] = Field(
        default_factory=list, description="layer kinds whose activations are recomputed"
    )
    compile: bool = Field(False, description="torch.compile each block")
    reshard_after_forward: bool = Field(
        True, description="FSDP: free gathered parameters after forward (ZeRO-3) or keep (ZeRO-2)"
    )


class CheckpointConfig(StrictModel):
    """When to save, what to keep, when to export in HF format."""

    interval_steps: int = Field(1000, gt=0, description="save a checkpoint every N steps")
    keep_last: int = Field(2, ge=1, description="keep the newest N checkpoints")
    keep_every: int | None = Field(
        None, gt=0, description="also keep checkpoints whose step is a multiple of N"
    )
    export_interval_steps: int | None = Field(
        None, gt=0, description="periodic HF exports to runs/<run>/exports/ (the final one: hf/)"
    )


class LogConfig(StrictModel):
    """Progress, metrics.jsonl, TensorBoard, MFU."""

    interval_steps: int = Field(10, gt=0, description="write a metrics row every N steps")
    tensorboard: bool = Field(
        False, description="also write TensorBoard events (needs tensorboard)"
    )
    peak_tflops: float | None = Field(
        None, gt=0, description="per-device peak for MFU (None: known GPUs; none on CPU)"
    )


class EvalConfig(StrictModel):
    """Validation loss per source on held-out tokens."""

    interval_steps: int = Field(500, gt=0, description="evaluate every N steps and at the end")
    max_batches: int = Field(8, gt=0, description="micro-batches per source per evaluation")


class PretrainRecipe(StrictModel):
    """Everything one pretraining run needs, written as it would run (laptop to cluster)."""

    name: str = Field(description="run name: the folder runs/<name>/ and the `run` column")
    seed: int = Field(0, description="seed for weights and data order")
    model: ModelSpec = Field(default_factory=ModelSpec, description="model preset and overrides")
    data: DataSpec = Field(default_factory=DataSpec, description="blend and phases")
    seq_len: int = Field(8192, gt=1, description="tokens per sequence")
    global_batch_tokens: int = Field(
        6_291_456, gt=0, description="tokens per optimizer step over all processes"
    )
    micro_batch_size: int = Field(1, gt=0, description="sequences per process per forward")
    total_tokens: int | None = Field(
        None, gt=0, description="training tokens (None: the plan's pretraining budget)"
    )
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 autocast with fp32 master weights on CUDA, fp32 on CPU"
    )
    kernels: Literal["auto", "require", "torch"] = Field(
        "auto",
        description="auto: the fast kernels that import (mamba_ssm, causal-conv1d, flash-attn), "
        "PyTorch for the rest; require: fail at start naming each missing piece; torch: PyTorch only",
    )
    cpu_threads: int | None = Field(
        1,
        gt=0,
        description="CPU only: torch threads per process (1 avoids OpenMP spinning on small models "
        "and shared machines, ~2-20x faster for the tiny preset; None: torch's default)",
    )
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="AdamW")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="LR schedule")
    parallel: ParallelConfig = Field(default_factory=ParallelConfig, description="FSDP2 etc.")
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig, description="saving")
    log: LogConfig = Field(default_factory=LogConfig, description="logging")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="validation")

    def grad_accum_steps(self, dp_size: int) -> int:
        """Micro-steps per optimizer step; the global batch must split evenly over processes."""
        per_micro = dp_size * self.micro_batch_size * self.seq_len
        if self.global_batch_tokens % per_micro:
            hint_tokens = max(1, round(self.global_batch_tokens / per_micro)) * per_micro
            raise ConfigError(
                f"global_batch_tokens ({self.global_batch_tokens}) is not divisible by "
                f"processes ({dp_size}) x micro_batch_size ({self.micro_batch_size}) x "
                f"seq_len ({self.seq_len}) = {per_micro}",
                f"set global_batch_tokens to a multiple of {per_micro} (e.g. {hint_tokens}), or "
                "change micro_batch_size / --nproc",
            )
        return self.global_batch_tokens // per_micro

    def total_steps(self, budget_tokens: int | None = None) -> int:
        """Optimizer steps: total tokens (or the plan's budget) over the global batch."""
        tokens = self.total_tokens or budget_tokens
        if not tokens:
            raise ConfigError(
                "total_tokens is not set and no plan gives a pretraining budget",
                "set total_tokens in the recipe, or pass --plan",
            )
        steps = tokens // self.global_batch_tokens
        if steps < 1:
            raise ConfigError(
                f"total_tokens ({tokens}) is smaller than one global batch "
                f"({self.global_batch_tokens} tokens)",
                "raise total_tokens or lower global_batch_tokens",
            )
        return steps


def load_recipe(path: str | Path) -> PretrainRecipe:
    """Read and validate a pretraining recipe; errors name the file and key."""
    return load_yaml(path, PretrainRecipe)
