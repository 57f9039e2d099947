"""What SFT and GRPO share: loading a model with its tokenizer, device settings, the TRL config
built from a recipe in one place (`trainer_args`), metrics and checkpoints of a Trainer run."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from frontload.data.tokenizer import load_tokenizer, tokenizer_hash
from frontload.errors import ConfigError, StageNotReady, TrainingError
from frontload.train.metrics import truncate_metrics
from frontload.train.posttrain.recipe import Hardware, RLRecipe, SFTRecipe
from frontload.workspace import Workspace


def trainer_args(
    config_class: type, recipe: SFTRecipe | RLRecipe, run_dir: Path, **fields: Any
) -> Any:
    """The TRL config (`SFTConfig`, `GRPOConfig`) of a run: the recipe fields every post-training
    run shares, copied here and nowhere else, plus the trainer's own `fields`."""
    return config_class(
        output_dir=str(run_dir / "checkpoints"),
        learning_rate=recipe.lr,
        per_device_train_batch_size=recipe.micro_batch_size,
        max_steps=recipe.max_steps,
        logging_steps=recipe.logging_steps,
        save_steps=recipe.save_steps,
        save_total_limit=2,
        report_to="none",
        seed=recipe.seed,
        disable_tqdm=True,
        **pick_device(recipe.hardware),
        **fields,
    )


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

    import frontload.model  # noqa: F401  (torch; registers frontload_hybrid with the Auto classes)

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
