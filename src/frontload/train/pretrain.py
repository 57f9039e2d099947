"""The pretraining loop: recipe + workspace (+ plan) -> runs/<name>/ with checkpoints, metrics and an
HF export. Runs as one process, or under torchrun:
`torchrun --nproc-per-node 8 -m frontload.train.pretrain RECIPE.yaml [--plan PLAN] [--resume]`
(`fl train pretrain` starts the same with `--launch runs/<name>/launch.json`)."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from frontload.config import dump_yaml
from frontload.data.loader import DeviceLoader
from frontload.data.tokenizer import load_tokenizer, tokenizer_hash
from frontload.errors import FrontloadError, TrainingError
from frontload.model import HybridForCausalLM, preset
from frontload.plan import Plan, resolve_plan
from frontload.train.checkpoint import CheckpointManager, export_hf, rng_state, set_rng_state
from frontload.train.handoff import read_launch
from frontload.train.kernel_choice import choose_kernels, kernel_record
from frontload.train.metrics import (
    FlopCounter,
    MetricsLogger,
    StepTimer,
    TrainProgress,
    peak_tflops,
    write_summary,
)
from frontload.train.moves import check_learning_rates, check_moved, fingerprint
from frontload.train.parallel import init_weights, parallelize, replicas
from frontload.train.phases import (
    StagedData,
    plan_phases,
    run_recipe,
    run_steps,
    validation_rows,
)
from frontload.train.recipe import PretrainRecipe, load_recipe
from frontload.train.schedule import lr_at
from frontload.train.served import check_resume_plan, pretrain_rows, record_plan, write_served
from frontload.workspace import Workspace


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (torchrun's environment, or a single process)."""

    rank: int
    world_size: int
    device: torch.device

    @classmethod
    def start(cls) -> Dist:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
        if world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(int(os.environ.get("RANK", "0")), world_size, device)

    def sum(self, values: list[float]) -> list[float]:
        """Sum floats over all processes (in float64, so the order of ranks barely matters)."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world_size > 1:
            dist.all_reduce(tensor)
        return tensor.tolist()

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def pretrain(
    recipe: PretrainRecipe,
    workspace: Workspace,
    plan: Plan | None = None,
    resume: bool = False,
) -> Path:
    """Train (or continue) the run `recipe.name`; returns its folder runs/<name>/."""
    env = Dist.start()
    threads = torch.get_num_threads()
    if env.device.type == "cpu" and recipe.cpu_threads:
        torch.set_num_threads(recipe.cpu_threads)
    try:
        return _train(recipe, workspace, plan, resume, env)
    except torch.OutOfMemoryError as error:
        raise TrainingError(
            f"out of memory on {env.device} with micro_batch_size={recipe.micro_batch_size}, "
            f"seq_len={recipe.seq_len}",
            "lower micro_batch_size (gradient accumulation grows to keep global_batch_tokens), "
            "turn on parallel.activation_checkpointing: [mamba, attention, mlp], or use more GPUs",
        ) from error
    finally:
        torch.set_num_threads(threads)
        env.close()


def _train(
    recipe: PretrainRecipe, workspace: Workspace, plan: Plan | None, resume: bool, env: Dist
) -> Path:

    kernel_names = choose_kernels(recipe.kernels, env.device, env.rank)
    run_dir = workspace.runs_dir / recipe.name
    checkpoints = CheckpointManager(
        run_dir / "checkpoints",
        rank=env.rank,
        keep_last=recipe.checkpoint.keep_last,
        keep_every=recipe.checkpoint.keep_every,
    )
    latest = checkpoints.latest()
    if latest is not None and not resume:
        raise TrainingError(
            f"run {recipe.name} already has checkpoints in {run_dir}",
            "pass --resume to continue it, or choose another `name` in the recipe",
        )
    if latest is not None:
        check_resume_plan(run_dir, plan)
    accum = recipe.grad_accum_steps(env.world_size)
    total_steps = run_steps(recipe, plan)
    tokenizer = _workspace_tokenizer(workspace)
    phases = plan_phases(recipe, total_steps, plan)
    data = StagedData(
        phases,
        workspace,
        seq_len=recipe.seq_len,
        seed=recipe.seed,
        rank=env.rank,
        world_size=env.world_size,
        tokenizer_hash=_tokenizer_hash(tokenizer),
        holdout_tokens=recipe.data.validation_tokens,
    )
    val_rows = validation_rows(workspace, phases, recipe.seq_len, recipe.data.validation_tokens)
    bf16 = recipe.precision == "bf16" or (recipe.precision == "auto" and env.device.type == "cuda")
    config = _model_config(recipe, tokenizer)
    model = _build_model(config, recipe.seed, env)
    model = parallelize(
        model,
        world_size=env.world_size,
        device_type=env.device.type,
        bf16=bf16,
        checkpoint_kinds=recipe.parallel.activation_checkpointing,
        compile_blocks=recipe.parallel.compile,
        reshard_after_forward=recipe.parallel.reshard_after_forward,
        replicate=replicas(
            recipe.parallel.strategy,
            env.world_size,
            recipe.parallel.shard_size,
            int(os.environ.get("LOCAL_WORLD_SIZE", env.world_size)),
        ),
    )
    init_weights(model, recipe.seed, env.device)
    optimizer = _build_optimizer(model, recipe, env.device)
    step, tokens_seen = 0, 0
    if latest is not None:
        meta, rank_state = checkpoints.load(latest, model, optimizer)
        step, tokens_seen = meta["step"], meta["tokens_seen"]
        data.load_state_dict(rank_state["data"])
        set_rng_state(rank_state["rng"])
    loader = DeviceLoader(data, recipe.micro_batch_size, accum, env.device)
    if step < total_steps:
        rates = [lr_at(recipe.schedule, s, total_steps) for s in range(step, total_steps)]
        cause = f"schedule {recipe.schedule.kind}, min_lr {recipe.schedule.min_lr}"
        check_learning_rates(rates, recipe.name, cause)
    start_step, start_weights = step, env.sum(fingerprint(model))
    if env.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_yaml(run_recipe(recipe, plan), run_dir / "recipe.yaml")
        record_plan(run_dir, plan)
    metrics = MetricsLogger(run_dir, recipe.name, env.rank, recipe.log.tensorboard)
    metrics.truncate_after(step)
    metrics.log(step, {"kind": "start", **kernel_record(kernel_names)})
    write_summary(run_dir, {"run": recipe.name, "kernels": kernel_names}, env.rank)
    flop_counter = FlopCounter.for_config(config, recipe.seq_len)
    peak = peak_tflops(recipe.log.peak_tflops)
    # One precision story: bf16 autocast with fp32 master weights on 1 or N processes; under FSDP2
    # the matmul weights are also gathered in bf16 (see parallel.precision_groups).
    autocast = (
        torch.autocast(env.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )
    progress = TrainProgress(env.rank == 0, total_steps, step, recipe.name)
    save_meta = {"run": recipe.name, "model_config": config.to_dict()}
    last_good = latest
    timer = StepTimer(env.device)
    window = _Window()
    try:
        while step < total_steps:
            timer.resume()
            lr = lr_at(recipe.schedule, step, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = loader.get(step)
            loss_sum, grad_norm = train_step(model, optimizer, batch, recipe, env, autocast)
            if step + 1 < total_steps:
                loader.prefetch(step + 1)  # host reads overlap the queued device work
            step += 1
            tokens_seen += recipe.global_batch_tokens
            window.add(batch, loss_sum, flop_counter)
            if step % recipe.log.interval_steps == 0 or step == total_steps:
                # The only host reads of training scalars: once per log row, not per step.
                loss, flops, count = env.sum([float(window.loss_sum), window.flops, window.count])
                loss = loss / max(count, 1.0)
                if not math.isfinite(loss):
                    raise TrainingError(
                        f"loss is {loss} at step {step} (phase {batch.phase})",
                        f"resume from the last good checkpoint ({last_good or 'none yet'}) with a "
                        "lower schedule.peak_lr or a longer warmup",
                    )
                seconds = max(timer.take(), 1e-9)
                tokens_per_s = window.steps * recipe.global_batch_tokens / seconds
                mfu = flops / (seconds * peak * 1e12 * env.world_size) if peak else None
                progress.update(step, tokens_seen, loss, lr, tokens_per_s, mfu)
                row = {
                    "kind": "train",
                    "phase": batch.phase,
                    "tokens": tokens_seen,
                    "loss": loss,
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "tokens_per_s": round(tokens_per_s, 2),
                    "mfu": mfu,
                    "train_seconds": round(seconds, 4),
                }
                metrics.log(step, row)
                window = _Window()
            if val_rows and (step % recipe.eval.interval_steps == 0 or step == total_steps):
                timer.pause()
                values = evaluate(model, val_rows, recipe, env, autocast)
                metrics.log(step, {"kind": "eval", "tokens": tokens_seen, **values})
            if step % recipe.checkpoint.interval_steps == 0 or step == total_steps:
                timer.pause()
                rank_state = {"data": loader.state_dict(), "rng": rng_state()}
                meta = {**save_meta, "tokens_seen": tokens_seen}
                last_good = checkpoints.save(step, model, optimizer, rank_state, meta)
            every = recipe.checkpoint.export_interval_steps
            if every and step % every == 0 and step < total_steps:
                timer.pause()
                export_hf(
                    model, config, run_dir / "exports" / f"step_{step:08d}", tokenizer, env.rank
                )
        if step > start_step:
            parent = f"checkpoint step {start_step}" if start_step else "its initialisation"
            check_moved(start_weights, env.sum(fingerprint(model)), recipe.name, parent)
        export_hf(model, config, run_dir / "hf", tokenizer, env.rank)
        if env.rank == 0:
            rows = pretrain_rows(data.served(), plan)
            write_served(run_dir, recipe.name, "pretrain", rows, plan)
        write_summary(run_dir, {"steps": step, "tokens": tokens_seen}, env.rank)
    finally:
        progress.close()
        metrics.close()
    return run_dir


class _Window:
    """What the steps since the last log row add up to; device tensors are only read at log time."""

    def __init__(self) -> None:
        self.loss_sum: Any = 0.0  # sum of per-token losses over trained tokens (device tensor)
        self.count = 0.0  # trained tokens of this process
        self.flops = 0.0  # model FLOPs of this process's tokens
        self.steps = 0

    def add(self, batch: Any, loss_sum: torch.Tensor, counter: FlopCounter) -> None:
        self.loss_sum = loss_sum + self.loss_sum
        self.count += sum(batch.counts)
        self.flops += counter.step_flops(batch.tokens, batch.document_pairs)
        self.steps += 1


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Any,
    recipe: PretrainRecipe,
    env: Dist,
    autocast: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step over this process's micro-batches (a `data.loader.StepBatch`); returns
    this process's summed token loss and the gradient norm before clipping, both as device tensors:
    nothing here waits for the device (the caller reads them every `log.interval_steps`)."""
    global_count = torch.tensor(float(sum(batch.counts)), dtype=torch.float64, device=env.device)
    if env.world_size > 1:
        dist.all_reduce(global_count)
    # FSDP averages gradients over processes, so each process scales its token sum by world size.
    scale = (env.world_size / global_count.clamp(min=1.0)).float()
    loss_sum = torch.zeros((), dtype=torch.float64, device=env.device)
    for inputs, count in zip(batch.micro, batch.counts, strict=True):
        with autocast:
            output = model(**inputs)
        token_sum = output.loss.float() * count  # the model's loss is a mean over its tokens
        (token_sum * scale).backward()
        loss_sum += token_sum.detach().double()
    grad_norm = _clip(model, recipe.optimizer.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, grad_norm


def evaluate(
    model: torch.nn.Module, rows: dict[str, dict], recipe: PretrainRecipe, env: Dist, autocast: Any
) -> dict[str, float]:
    """Mean loss per trained token on each source's validation rows, split over processes (every
    process runs the same number of forwards, as FSDP's collectives need)."""
    per = recipe.micro_batch_size
    results = {}
    model.eval()
    with torch.no_grad():
        for source, arrays in rows.items():
            usable = min(len(arrays["input_ids"]) // env.world_size, per * recipe.eval.max_batches)
            if usable == 0:
                continue
            mine = {
                key: value[env.rank * usable : (env.rank + 1) * usable]
                for key, value in arrays.items()
            }
            total, count = 0.0, 0.0
            for start in range(0, usable, per):
                batch = {
                    key: torch.as_tensor(
                        value[start : start + per], dtype=torch.long, device=env.device
                    )
                    for key, value in mine.items()
                }
                tokens = float((batch["labels"][:, 1:] != -100).sum())
                with autocast:
                    total += model(**batch).loss.float().item() * tokens
                count += tokens
            total, count = env.sum([total, count])
            results[f"val_loss_{source}"] = total / max(count, 1.0)
    model.train()
    return results


def _clip(model: torch.nn.Module, max_norm: float | None) -> torch.Tensor:
    """Global gradient norm (over all shards) as a device tensor, clipped to `max_norm` when set."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm or float("inf"), foreach=True)
    if hasattr(norm, "full_tensor"):  # a DTensor under FSDP2
        norm = norm.full_tensor()
    return norm


def _workspace_tokenizer(workspace: Workspace):
    """The workspace tokenizer if one was trained (it fixes the vocabulary), else None."""
    if not (workspace.tokenizer_dir / "tokenizer.json").is_file():
        return None

    return load_tokenizer(workspace.tokenizer_dir)


def _tokenizer_hash(tokenizer: Any) -> str | None:
    if tokenizer is None:
        return None

    return tokenizer_hash(tokenizer)


def _model_config(recipe: PretrainRecipe, tokenizer: Any):
    """The recipe's preset with its overrides; the vocabulary sized to the workspace tokenizer."""

    overrides = dict(recipe.model.overrides)
    if tokenizer is not None:
        overrides.setdefault("vocab_size", len(tokenizer))
        overrides.setdefault("eos_token_id", tokenizer.eos_token_id)
        overrides.setdefault("pad_token_id", tokenizer.pad_token_id)
    config = preset(recipe.model.preset, **overrides)
    if config.max_position_embeddings < recipe.seq_len:  # a guard only: no position embeddings
        overrides["max_position_embeddings"] = recipe.seq_len
        config = preset(recipe.model.preset, **overrides)
    return config


def _build_model(config: Any, seed: int, env: Dist) -> torch.nn.Module:
    """An empty (meta) model: FSDP shards it before any memory is allocated, then
    `parallel.init_weights` fills each process's shards (the same weights for any process count)."""

    torch.manual_seed(seed)  # the RNG state training starts from, as before any init
    with torch.device("meta"):
        return HybridForCausalLM(config)


def _build_optimizer(
    model: torch.nn.Module, recipe: PretrainRecipe, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW; no weight decay on vectors (norms, biases, A_log, D, dt_bias); fused on CUDA."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    config = recipe.optimizer
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=recipe.schedule.peak_lr,
        betas=config.betas,
        eps=config.eps,
        fused=device.type == "cuda",
    )


def main(argv: list[str] | None = None) -> None:
    """`python -m frontload.train.pretrain` (under torchrun for several processes): the launcher's
    `--launch runs/<name>/launch.json`, or by hand `RECIPE.yaml [--plan PLAN] [--resume]`."""
    parser = argparse.ArgumentParser(prog="frontload.train.pretrain", description=__doc__)
    parser.add_argument("recipe", type=Path, nargs="?")
    parser.add_argument("--launch", type=Path, default=None, help="launch file (fl train pretrain)")
    parser.add_argument("--plan", default=None, help="plan file or name in the workspace")
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    if (args.recipe is None) == (args.launch is None):
        parser.error("give a RECIPE.yaml or --launch FILE")
    try:
        workspace = Workspace.resolve(args.workspace)
        if args.launch is not None:
            launch = read_launch(args.launch)
            recipe, plan, resume = launch.recipe, launch.plan, launch.resume
        else:
            recipe, resume = load_recipe(args.recipe), args.resume
            plan = resolve_plan(args.plan, workspace.plans_dir) if args.plan else None
        run_dir = pretrain(recipe, workspace, plan, resume)
    except FrontloadError as error:
        if os.environ.get("FL_DEBUG"):
            raise
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run folder: {run_dir}")


if __name__ == "__main__":
    main()
