"""`fl train sft`: TRL SFTTrainer on chat data, assistant-only loss, packing with document bounds.

Packing uses TRL's best-fit-decreasing strategy in padding-free mode: conversations are laid end to
end and the collator passes `position_ids` (restarting at 0 per document) plus `seq_idx`, from
which the model derives document boundaries, so neither attention nor the Mamba state crosses
conversations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from frontload.data.tokenizer import fit_reasoning
from frontload.errors import TrainingError
from frontload.plan import Plan
from frontload.train.moves import (
    capped_warmup,
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
    trainer_args,
)
from frontload.train.posttrain.data import chat_tokens, cut_at_max_length, sft_data, sft_rows
from frontload.train.posttrain.recipe import SFTRecipe
from frontload.train.progress import capture_library_output, progress_callback
from frontload.train.served import check_resume_plan, record_plan, write_served
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
    config = trainer_args(
        SFTConfig,
        recipe,
        run_dir,
        warmup_steps=0,  # set per run by capped_warmup: never every step of a short run
        weight_decay=recipe.weight_decay,
        lr_scheduler_type=recipe.lr_scheduler,
        per_device_eval_batch_size=recipe.micro_batch_size,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=1,
        max_length=recipe.max_length,
        packing=recipe.packing,
        padding_free=recipe.packing,
        assistant_only_loss=True,
        eval_strategy="no",
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
