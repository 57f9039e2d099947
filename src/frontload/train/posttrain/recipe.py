"""Recipes for SFT and GRPO: the study's defaults (design.md section 7), editable per run."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from frontload.config import StrictModel, load_yaml


class CorpusShare(StrictModel):
    """One SFT corpus by hand: its name and how many passes over it."""

    name: str = Field(description="Corpus name in the workspace (dshq, dldq, dlmq, dalf, ...).")
    epochs: float = Field(1.0, gt=0, description="Passes over the corpus (fractions sample).")
    max_records: int | None = Field(
        None, gt=0, description="Cap on unique records taken from this corpus (None: all)."
    )


class Hardware(StrictModel):
    """Where to train; `auto` picks CPU-safe settings when no GPU is present."""

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Training device.")
    bf16: bool | None = Field(None, description="bf16 autocast (None: on for CUDA, off on CPU).")
    gradient_checkpointing: bool | None = Field(
        None, description="Recompute activations (None: on for CUDA, off on CPU)."
    )


class SFTRecipe(StrictModel):
    """`fl train sft`: TRL SFTTrainer on chat data with assistant-only loss and packing."""

    name: str = Field(description="Run name; output goes to runs/<name>/.")
    model: str = Field(
        description="HF model folder to start from (absolute, or relative to the workspace), "
        "e.g. runs/pt_base/hf."
    )
    tokenizer: str | None = Field(
        None, description="Tokenizer folder (None: the model folder's, else the workspace's)."
    )
    corpora: list[CorpusShare] = Field(
        default_factory=list,
        description="SFT mixture by hand; ignored when a plan with an sft phase is given.",
    )
    eval_fraction: float = Field(
        0.05, ge=0, lt=1, description="Share of records held out to measure assistant-token loss."
    )
    lr: float = Field(5e-6, gt=0, description="Peak learning rate (study: 5e-6).")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Warmup share of the steps.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (study: 0.01).")
    lr_scheduler: str = Field("cosine", description="transformers scheduler name.")
    global_batch_size: int = Field(
        512, gt=0, description="Sequences per optimiser step (reached by accumulation)."
    )
    micro_batch_size: int = Field(4, gt=0, description="Sequences per forward pass per device.")
    max_length: int = Field(32768, gt=8, description="Packed sequence length (study: 32k).")
    packing: bool = Field(True, description="Pack conversations with document boundaries.")
    max_steps: int = Field(-1, description="Stop after this many optimiser steps (-1: epochs).")
    logging_steps: int = Field(10, gt=0, description="Log metrics every N steps.")
    save_steps: int = Field(500, gt=0, description="Checkpoint every N steps (resumable).")
    seed: int = Field(0, description="Seed for data order and initialisation.")
    hardware: Hardware = Field(default_factory=Hardware, description="Device settings.")

    @model_validator(mode="after")
    def _whole_accumulation(self) -> SFTRecipe:
        if self.global_batch_size % self.micro_batch_size:
            raise ValueError(
                f"global_batch_size ({self.global_batch_size}) must be a multiple of "
                f"micro_batch_size ({self.micro_batch_size})"
            )
        return self


class RewardSpec(StrictModel):
    """Which verifiable rewards to use and how to weigh them."""

    kinds: list[Literal["math", "code", "choice", "format"]] = Field(
        default_factory=lambda: ["math"],
        description="Reward functions: math (answer equivalence), code (sandboxed tests), "
        "choice (letter match), format (a parseable final answer).",
    )
    weights: list[float] | None = Field(None, description="One weight per kind (None: all 1).")
    code_timeout_s: float = Field(5.0, gt=0, description="Time limit per program under test.")

    @field_validator("weights")
    @classmethod
    def _one_per_kind(cls, weights: list[float] | None, info) -> list[float] | None:
        kinds = info.data.get("kinds", [])
        if weights is not None and len(weights) != len(kinds):
            raise ValueError(f"{len(weights)} weights for {len(kinds)} reward kinds")
        return weights


class RLRecipe(StrictModel):
    """`fl train rl`: TRL GRPOTrainer with rewards from the evaluation graders."""

    name: str = Field(description="Run name; output goes to runs/<name>/.")
    model: str = Field(description="HF model folder to start from (usually an SFT run's hf/).")
    tokenizer: str | None = Field(None, description="Tokenizer folder (None: the model's).")
    prompts: list[str] = Field(
        description="Corpora or parquet/jsonl files with prompt + reference (+ tests for code)."
    )
    max_prompts: int | None = Field(None, gt=0, description="Cap on prompts (None: all).")
    rewards: RewardSpec = Field(default_factory=RewardSpec, description="Reward functions.")
    lr: float = Field(1e-6, gt=0, description="Constant learning rate (study: 1e-6).")
    num_generations: int = Field(8, gt=1, description="Rollouts per prompt (study: 8).")
    prompts_per_step: int = Field(128, gt=0, description="Prompts per optimiser step (study: 128).")
    micro_batch_size: int = Field(
        8, gt=0, description="Completions per forward pass (a multiple of num_generations helps)."
    )
    temperature: float = Field(1.0, gt=0, description="Sampling temperature (study: 1.0).")
    beta: float = Field(0.001, ge=0, description="KL coefficient (study: 0.001).")
    max_completion_length: int = Field(8192, gt=0, description="Tokens per rollout (study: 8k).")
    epochs: float = Field(1.0, gt=0, description="Passes over the prompts (study: 1).")
    max_steps: int = Field(-1, description="Stop after this many steps (-1: epochs).")
    logging_steps: int = Field(1, gt=0, description="Log metrics every N steps.")
    save_steps: int = Field(100, gt=0, description="Checkpoint every N steps (resumable).")
    log_samples: int = Field(4, ge=0, description="Sample completions written per logged step.")
    seed: int = Field(0, description="Seed for sampling and data order.")
    hardware: Hardware = Field(default_factory=Hardware, description="Device settings.")

    @model_validator(mode="after")
    def _whole_accumulation(self) -> RLRecipe:
        rollouts = self.prompts_per_step * self.num_generations
        if rollouts % self.micro_batch_size:
            raise ValueError(
                f"prompts_per_step x num_generations ({rollouts}) must be a multiple of "
                f"micro_batch_size ({self.micro_batch_size})"
            )
        return self


def load_sft_recipe(path: str | Path) -> SFTRecipe:
    """Load an SFT recipe; errors name the file and key."""
    return load_yaml(path, SFTRecipe)


def load_rl_recipe(path: str | Path) -> RLRecipe:
    """Load an RL recipe; errors name the file and key."""
    return load_yaml(path, RLRecipe)
