"""`fl train rl`: TRL GRPOTrainer with verifiable rewards; rollouts through the model's generate().

Prompts come from corpora (or parquet/jsonl files) with a `prompt` and a `reference`; the grader of
each row (math, multiple choice, code) follows from its domain and reference. Reward statistics
land in runs/<run>/metrics.jsonl, sample completions in samples.jsonl, grader errors in
reward_errors.jsonl.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from frontload.errors import DataError, InputError, StageNotReady, TrainingError
from frontload.train.moves import (
    check_learning_rates,
    check_moved,
    fingerprint,
    learning_rate_recorder,
)
from frontload.train.posttrain.common import (
    MetricsWriter,
    checkpoint_step,
    drop_printer,
    extend_context,
    last_checkpoint,
    load_model_and_tokenizer,
    mark_auto_loadable,
    metrics_callback,
    quiet_libraries,
    resolve,
    trainer_args,
)
from frontload.train.posttrain.recipe import RLRecipe
from frontload.train.posttrain.rewards import RewardLog, build_rewards, task_of
from frontload.train.progress import capture_library_output, progress_callback
from frontload.workspace import Workspace


@dataclass
class RLResult:
    """What a GRPO run produced."""

    run_dir: Path
    hf_dir: Path
    prompts: int
    steps: int
    reward_first: float | None
    reward_last: float | None
    reward_errors: int


def read_prompt_table(workspace: Workspace, source: str) -> pa.Table:
    """A corpus by name, or a parquet/jsonl file path."""
    folder = workspace.corpus_dir(source)
    if folder.is_dir():
        parts = sorted(folder.glob("*.parquet"))
        if not parts:
            raise StageNotReady(f"corpus {source!r} has no parquet files", "fl curate corpora")
        return pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
    path = resolve(workspace, source)
    if path.suffix == ".parquet" and path.is_file():
        return pq.read_table(path)
    if path.suffix in (".jsonl", ".json") and path.is_file():
        return pa.Table.from_pylist(read_jsonl(path))
    raise InputError(
        f"prompt source {source!r} is neither a corpus in {workspace.corpora_dir} nor a "
        ".parquet/.jsonl file",
        "list corpus names or files under `prompts:` in the RL recipe",
    )


def read_jsonl(path: Path) -> list[dict]:
    """The objects of a JSONL file; a broken line is an error naming the file and line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{number}: invalid JSON ({error.msg})") from error
        if not isinstance(row, dict):
            raise InputError(f"{path}:{number}: expected a JSON object per line")
        rows.append(row)
    return rows


def load_prompts(workspace: Workspace, recipe: RLRecipe) -> list[dict]:
    """Chat prompts with a reference answer and a grader kind; records without either are dropped."""
    rows = []
    for source in recipe.prompts:
        for row in read_prompt_table(workspace, source).to_pylist():
            prompt, reference = row.get("prompt") or "", row.get("reference") or ""
            if not prompt.strip() or not str(reference).strip():
                continue
            reference = str(reference)
            rows.append(
                {
                    "prompt": [{"role": "user", "content": prompt}],
                    "reference": reference,
                    "task": task_of(row.get("domain"), reference),
                }
            )
    if not rows:
        raise DataError(
            f"no usable prompts in {recipe.prompts}: RL needs records with a prompt and a reference",
            "use a corpus whose sources give reference answers (verified records)",
        )
    random.Random(recipe.seed).shuffle(rows)
    return rows[: recipe.max_prompts] if recipe.max_prompts else rows


def longest_prompt(tokenizer, prompts: list[dict]) -> int:
    """Tokens in the longest templated prompt."""
    texts = [
        tokenizer.apply_chat_template(p["prompt"], add_generation_prompt=True, tokenize=False)
        for p in prompts
    ]
    return max(len(ids) for ids in tokenizer(texts)["input_ids"])


def grpo_config(recipe: RLRecipe, run_dir: Path, weights: list[float] | None) -> Any:
    """The study's GRPO settings: constant LR, G rollouts per prompt, temperature, KL beta."""
    from trl import GRPOConfig

    rollouts = recipe.prompts_per_step * recipe.num_generations
    return trainer_args(
        GRPOConfig,
        recipe,
        run_dir,
        lr_scheduler_type="constant",
        warmup_steps=0,
        num_generations=recipe.num_generations,
        gradient_accumulation_steps=max(1, rollouts // recipe.micro_batch_size),
        temperature=recipe.temperature,
        beta=recipe.beta,
        max_completion_length=recipe.max_completion_length,
        num_train_epochs=recipe.epochs,
        reward_weights=weights,
    )


def rl(recipe: RLRecipe, workspace: Workspace, resume: bool = True) -> RLResult:
    """Train `recipe.model` with GRPO; writes runs/<name>/{checkpoints,hf,metrics.jsonl,samples}."""
    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    quiet_libraries()
    capture_library_output(workspace.runs_dir / recipe.name / "train.log")
    torch.manual_seed(recipe.seed)
    prompts = load_prompts(workspace, recipe)  # data errors before the model load
    model, tokenizer = load_model_and_tokenizer(workspace, recipe.model, recipe.tokenizer)
    extend_context(model, longest_prompt(tokenizer, prompts) + recipe.max_completion_length)
    run_dir = workspace.runs_dir / recipe.name
    run_dir.mkdir(parents=True, exist_ok=True)
    if recipe.beta > 0 and not hasattr(model.config, "auto_map"):
        # TRL rebuilds the KL reference model from the folder the policy came from
        mark_auto_loadable(model.config)
        model.save_pretrained(str(run_dir / "start"))
        model.config._name_or_path = str(run_dir / "start")
    log = RewardLog(run_dir, recipe.log_samples)
    rewards, _ = build_rewards(recipe.rewards.kinds, recipe.rewards.code_timeout_s, log)
    writer = MetricsWriter(recipe.name, "rl", run_dir / "metrics.jsonl")
    rates: list[float] = []
    parent = fingerprint(model)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=grpo_config(recipe, run_dir, recipe.rewards.weights),
        train_dataset=Dataset.from_list(prompts),
        processing_class=tokenizer,
        callbacks=[
            metrics_callback(writer),
            progress_callback("rl", recipe.name, "reward"),
            learning_rate_recorder(rates),
        ],
    )
    drop_printer(trainer)
    checkpoint = last_checkpoint(run_dir / "checkpoints") if resume else None
    writer.start(checkpoint_step(checkpoint))
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except ValueError as error:
        raise TrainingError(f"RL run {recipe.name!r} failed: {error}") from error
    log.check(minimum=1)  # reward errors over 5% of samples: the run's rewards cannot be trusted
    if checkpoint is None or rates:  # a resumed run that had no step left ran none here
        check_learning_rates(rates, recipe.name, "constant schedule")
    check_moved(parent, fingerprint(trainer.model), recipe.name, recipe.model)
    hf_dir = run_dir / "hf"
    mark_auto_loadable(trainer.model.config)
    trainer.save_model(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))
    curve = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    summary = {
        "run": recipe.name,
        "stage": "rl",
        "model": recipe.model,
        "prompts": len(prompts),
        "steps": trainer.state.global_step,
        "reward_first": curve[0] if curve else None,
        "reward_last": curve[-1] if curve else None,
        "reward_errors": log.errors,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return RLResult(
        run_dir,
        hf_dir,
        len(prompts),
        trainer.state.global_step,
        summary["reward_first"],
        summary["reward_last"],
        log.errors,
    )
