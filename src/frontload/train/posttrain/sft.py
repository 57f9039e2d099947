"""`fl train sft`: TRL SFTTrainer on chat data, assistant-only loss, packing with document bounds.

Packing uses TRL's best-fit-decreasing strategy in padding-free mode: conversations are laid end to
end and the collator passes `position_ids` (restarting at 0 per document) plus `seq_idx`, from
which the model derives document boundaries, so neither attention nor the Mamba state crosses
conversations.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontload.data.tokenizer import fit_reasoning
from frontload.errors import ConfigError, StageNotReady, TrainingError
from frontload.plan import Plan
from frontload.train.metrics import truncate_metrics
from frontload.train.moves import (
    capped_warmup,
    check_learning_rates,
    check_moved,
    fingerprint,
    learning_rate_recorder,
)
from frontload.train.posttrain.recipe import Hardware, SFTRecipe
from frontload.train.progress import capture_library_output, progress_callback
from frontload.workspace import Workspace


@dataclass
class SFTResult:
    """What an SFT run produced, for the pipeline and the CLI."""

    run_dir: Path
    hf_dir: Path
    train_records: int
    eval_loss_before: float | None
    eval_loss_after: float | None
    steps: int


def resolve(workspace: Workspace, path: str) -> Path:
    """A recipe path: absolute as written, else relative to the workspace."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else workspace.root / candidate


def pick_device(hardware: Hardware) -> dict[str, Any]:
    """TrainingArguments for the device: CPU gets fp32, no gradient checkpointing, use_cpu."""
    import torch

    device = hardware.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("hardware.device is cuda but no GPU is visible", "use device: auto")
    on_gpu = device == "cuda"
    bf16 = on_gpu if hardware.bf16 is None else hardware.bf16
    checkpointing = (
        on_gpu if hardware.gradient_checkpointing is None else hardware.gradient_checkpointing
    )
    return {
        "use_cpu": not on_gpu,
        "bf16": bf16,
        "fp16": False,
        "activation_checkpointing": checkpointing,
        "dataloader_pin_memory": on_gpu,
    }


def load_model_and_tokenizer(workspace: Workspace, model_path: str, tokenizer_path: str | None):
    """Load the HF model and its tokenizer, refusing a pair that does not fit together."""
    from transformers import AutoModelForCausalLM

    import frontload.model  # noqa: F401  (registers frontload_hybrid with the Auto classes)
    from frontload.data.tokenizer import load_tokenizer, tokenizer_hash

    model_dir = resolve(workspace, model_path)
    if not (model_dir / "config.json").is_file():
        raise StageNotReady(
            f"model folder {model_dir} has no config.json",
            "point `model:` at an HF export (e.g. runs/<pretrain run>/hf) or run that stage first",
        )
    if tokenizer_path:
        tok_dir = resolve(workspace, tokenizer_path)
    elif (model_dir / "tokenizer.json").is_file():
        tok_dir = model_dir
    else:
        tok_dir = workspace.tokenizer_dir
    if not (tok_dir / "tokenizer.json").is_file():
        raise StageNotReady(
            f"tokenizer folder {tok_dir} has no tokenizer.json", "fl tokenizer train"
        )
    tokenizer = load_tokenizer(tok_dir)
    if tok_dir != model_dir and (model_dir / "tokenizer.json").is_file():
        own = load_tokenizer(model_dir)
        if tokenizer_hash(own) != tokenizer_hash(tokenizer):
            raise ConfigError(
                f"tokenizer {tok_dir} is not the one model {model_dir} was trained with "
                "(their vocabularies differ)",
                "drop `tokenizer:` from the recipe to use the model folder's own tokenizer",
            )
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype="float32")
    check_pair(model, tokenizer, model_dir, tok_dir)
    return model, tokenizer


def check_pair(model, tokenizer, model_dir: Path, tok_dir: Path) -> None:
    """A tokenizer larger than the embedding, or without a chat template, cannot be trained on."""
    vocab = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > vocab:
        raise ConfigError(
            f"tokenizer {tok_dir} has {len(tokenizer)} tokens but model {model_dir} embeds only "
            f"{vocab}",
            "use the tokenizer the model was pretrained with (the model folder's or the workspace's)",
        )
    if not tokenizer.chat_template:
        raise ConfigError(
            f"tokenizer {tok_dir} has no chat template", "train it with `fl tokenizer train`"
        )
    if tokenizer.eos_token is None:
        raise ConfigError(f"tokenizer {tok_dir} has no eos token")


def extend_context(model, length: int) -> None:
    """Let SFT run longer sequences than pretraining (the study: 8k -> 32k). The attention layers
    have no position embedding, so `max_position_embeddings` is only a guard to raise."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and model.config.model_type == "frontload_hybrid" and length > limit:
        model.config.max_position_embeddings = length


def mark_auto_loadable(config) -> None:
    """Give the config an `auto_map`: TRL rebuilds a reference model from the saved folder and
    reads that attribute for architectures that transformers itself does not define."""
    if not hasattr(config, "auto_map"):
        config.auto_map = {}


def quiet_libraries() -> None:
    """datasets' per-map progress bars drown the trainer's own log lines."""
    import datasets

    datasets.disable_progress_bars()


def drop_printer(trainer) -> None:
    """TRL prints every log dict to stdout; metrics.jsonl keeps them instead."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


class MetricsWriter:
    """Appends Trainer logs to runs/<run>/metrics.jsonl (catalog view `train_metrics`)."""

    def __init__(self, run: str, stage: str, path: Path) -> None:
        self.run, self.stage, self.path = run, stage, path
        self.started = time.time()

    def start(self, resumed_step: int | None) -> None:
        """Drop rows a resumed run will log again (all of them when starting fresh)."""
        truncate_metrics(self.path, -1 if resumed_step is None else resumed_step)

    def write(self, step: int, logs: dict) -> None:
        row = {"run": self.run, "stage": self.stage, "step": step, "time": time.time()}
        row["elapsed_s"] = round(row["time"] - self.started, 3)
        row.update({k: v for k, v in logs.items() if isinstance(v, int | float | str)})
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def metrics_callback(writer: MetricsWriter):
    """A TrainerCallback that forwards each log to the metrics file and stops on a NaN loss."""
    import math

    from transformers import TrainerCallback

    class _Metrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                writer.write(state.global_step, logs)
            loss = (logs or {}).get("loss")
            if isinstance(loss, float) and math.isnan(loss):
                raise TrainingError(
                    f"NaN loss at step {state.global_step}", "lower the learning rate"
                )

    return _Metrics()


def checkpoint_step(checkpoint: str | None) -> int | None:
    """The step of a `checkpoint-<step>` folder."""
    return int(Path(checkpoint).name.rsplit("-", 1)[1]) if checkpoint else None


def last_checkpoint(folder: Path) -> str | None:
    """The newest Trainer checkpoint in `folder`, to resume from."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def sft(
    recipe: SFTRecipe, workspace: Workspace, plan: Plan | None = None, resume: bool = True
) -> SFTResult:
    """Fine-tune `recipe.model` on the SFT mixture; writes runs/<name>/{checkpoints,hf,metrics.jsonl}."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    quiet_libraries()
    capture_library_output(workspace.runs_dir / recipe.name / "train.log")
    torch.manual_seed(recipe.seed)
    from frontload.train.posttrain.data import chat_tokens, cut_at_max_length, sft_data, sft_rows
    from frontload.train.served import check_resume_plan, record_plan, write_served

    data = sft_data(workspace, recipe, plan)  # data errors before the load
    train, held_out = data.train, data.held_out
    model, tokenizer = load_model_and_tokenizer(workspace, recipe.model, recipe.tokenizer)
    train = [fit_reasoning(turns, tokenizer.chat_template) for turns in train]
    held_out = [fit_reasoning(turns, tokenizer.chat_template) for turns in held_out]
    lengths = [chat_tokens(tokenizer, turns) for turns in train]
    cut_at_max_length(data, lengths, recipe.max_length, recipe.name, plan)  # before training
    extend_context(model, recipe.max_length * recipe.micro_batch_size)  # padding-free: one row
    run_dir = workspace.runs_dir / recipe.name
    run_dir.mkdir(parents=True, exist_ok=True)
    devices = max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    accumulation = max(1, recipe.global_batch_size // (recipe.micro_batch_size * devices))
    config = SFTConfig(
        output_dir=str(run_dir / "checkpoints"),
        learning_rate=recipe.lr,
        warmup_steps=0,  # set per run by capped_warmup: never every step of a short run
        weight_decay=recipe.weight_decay,
        lr_scheduler_type=recipe.lr_scheduler,
        per_device_train_batch_size=recipe.micro_batch_size,
        per_device_eval_batch_size=recipe.micro_batch_size,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=1,
        max_steps=recipe.max_steps,
        max_length=recipe.max_length,
        packing=recipe.packing,
        padding_free=recipe.packing,
        assistant_only_loss=True,
        logging_steps=recipe.logging_steps,
        save_steps=recipe.save_steps,
        save_total_limit=2,
        eval_strategy="no",
        report_to="none",
        seed=recipe.seed,
        disable_tqdm=True,
        **pick_device(recipe.hardware),
    )
    writer = MetricsWriter(recipe.name, "sft", run_dir / "metrics.jsonl")
    rates: list[float] = []
    parent = fingerprint(model)
    trainer = capped_warmup(SFTTrainer, recipe.warmup_ratio)(
        model=model,
        args=config,
        train_dataset=Dataset.from_list([{"messages": m} for m in train]),
        eval_dataset=Dataset.from_list([{"messages": m} for m in held_out]) if held_out else None,
        processing_class=tokenizer,
        callbacks=[
            metrics_callback(writer),
            progress_callback("sft", recipe.name, "loss"),
            learning_rate_recorder(rates),
        ],
    )
    drop_printer(trainer)
    checkpoint = last_checkpoint(run_dir / "checkpoints") if resume else None
    if checkpoint:
        check_resume_plan(run_dir, plan)
    record_plan(run_dir, plan)
    writer.start(checkpoint_step(checkpoint))
    before = trainer.evaluate()["eval_loss"] if held_out and checkpoint is None else None
    if before is not None:
        writer.write(0, {"eval_loss": before})
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except ValueError as error:
        raise TrainingError(f"SFT run {recipe.name!r} failed: {error}") from error
    if checkpoint is None or rates:  # a resumed run that had no step left ran none here
        cause = f"{recipe.lr_scheduler} schedule, warmup_ratio {recipe.warmup_ratio}"
        check_learning_rates(rates, recipe.name, cause)
    check_moved(parent, fingerprint(trainer.model), recipe.name, recipe.model)
    after = trainer.evaluate()["eval_loss"] if held_out else None
    hf_dir = run_dir / "hf"
    mark_auto_loadable(trainer.model.config)
    trainer.save_model(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))
    summary = {
        "run": recipe.name,
        "stage": "sft",
        "model": recipe.model,
        "train_conversations": len(train),
        "eval_conversations": len(held_out),
        "eval_loss_before": before,
        "eval_loss_after": after,
        "steps": trainer.state.global_step,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    write_served(run_dir, recipe.name, "sft", sft_rows(data, trainer.state.epoch or 0.0), plan)
    return SFTResult(run_dir, hf_dir, len(train), before, after, trainer.state.global_step)
