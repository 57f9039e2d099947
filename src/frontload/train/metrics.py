"""Training metrics: JSONL rows in the run folder (the catalog's `train_metrics`), optional
TensorBoard, and model FLOPs utilisation."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontload.progress import console, make_progress

# bf16 dense peak per device (datasheet, TFLOP/s), matched against torch.cuda.get_device_name().
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def peak_tflops(configured: float | None) -> float | None:
    """The recipe's figure, else the datasheet figure of the local GPU, else None (no MFU)."""
    if configured:
        return configured
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


@dataclass(frozen=True)
class FlopCounter:
    """Model FLOPs of one training step (forward + backward = 3 x forward), for MFU.

    step FLOPs = 6 x N x tokens + A x sum over documents of L(L+1) + S x tokens, where
    - N: parameters without the input embedding table (a lookup, no FLOPs; the LM head counts);
    - A = 6 x attention layers x query heads x head_dim: causal QK^T and AV over each document of
      L tokens cost 2 x 2 x heads x head_dim x L(L+1)/2 forward (the varlen kernels never cross a
      document boundary, so the actual document lengths count, not seq_len);
    - S = 3 x Mamba layers x (4 H P N + H Q P + G Q N): the SSD scan per token, forward: chunk states
      (B^T x) and state outputs (C h) 2 H P N each, the causal intra-chunk C B^T (G Q N) and its product
      with x (H Q P), with H heads of dim P, state N, G groups and chunk Q (at most seq_len).
    """

    dense_per_token: float
    attention_per_pair: float
    ssd_per_token: float

    @classmethod
    def for_config(cls, config: Any, seq_len: int) -> FlopCounter:
        from frontload.model.hybrid import parameter_counts  # torch: only when MFU is counted

        counts = parameter_counts(config)
        kinds = config.layer_kinds
        heads, dim, state = config.mamba_num_heads, config.mamba_head_dim, config.ssm_state_size
        chunk = min(config.chunk_size, seq_len)
        ssd = 4 * heads * dim * state + heads * chunk * dim + config.n_groups * chunk * state
        return cls(
            dense_per_token=6.0 * (counts["total"] - counts["embeddings"]),
            attention_per_pair=6.0
            * kinds.count("attention")
            * config.num_attention_heads
            * config.head_dim,
            ssd_per_token=3.0 * kinds.count("mamba") * ssd,
        )

    def step_flops(self, tokens: int, document_pairs: float) -> float:
        """FLOPs of `tokens` training tokens whose documents have sum of L(L+1) = `document_pairs`."""
        return (self.dense_per_token + self.ssd_per_token) * tokens + (
            self.attention_per_pair * document_pairs
        )


class StepTimer:
    """Wall time spent in training steps only, for tokens/s and MFU.

    Runs from the first step; `pause()` (before evaluation, checkpointing, exports) first waits for
    the device, so queued training work is charged to training and not to what follows. `take()` at a
    log step (where the logged scalars were just read, so the device is idle) returns the seconds
    since the previous take.
    """

    def __init__(self, device: Any) -> None:
        self.device = device
        self.seconds = 0.0
        self.since: float | None = None

    def resume(self) -> None:
        if self.since is None:
            self.since = time.perf_counter()

    def pause(self) -> None:
        if self.since is None:
            return
        if getattr(self.device, "type", "cpu") == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - self.since
        self.since = None

    def take(self) -> float:
        now = time.perf_counter()
        total = self.seconds + (now - self.since if self.since is not None else 0.0)
        self.seconds, self.since = 0.0, now if self.since is not None else None
        return total


def write_summary(run_dir: Path, values: dict[str, Any], rank: int = 0) -> None:
    """Merge `values` into runs/<run>/summary.json (atomic; rank 0 only)."""
    if rank != 0:
        return
    path = Path(run_dir) / "summary.json"
    current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    current.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


class _NullWriter:
    """Stands in for TensorBoard when it is off, so the loop never checks."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _tensorboard_writer(folder: Path, enabled: bool):
    if not enabled:
        return _NullWriter()
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        console.print("[yellow]tensorboard is not installed; logging to metrics.jsonl only")
        return _NullWriter()
    return SummaryWriter(log_dir=str(folder))


def truncate_metrics(path: Path, step: int) -> None:
    """Keep only the rows of a metrics.jsonl up to `step` (atomic), so a resumed curve has each
    step once."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line and json.loads(line).get("step", 0) <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    tmp.replace(path)


class MetricsLogger:
    """Appends one JSON row per logged step; only rank 0 writes."""

    def __init__(self, run_dir: Path, run: str, rank: int = 0, tensorboard: bool = False) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.run = run
        self.enabled = rank == 0
        self.writer = (
            _tensorboard_writer(Path(run_dir) / "tensorboard", tensorboard)
            if self.enabled
            else _NullWriter()
        )

    def truncate_after(self, step: int) -> None:
        """On resume, drop rows past the checkpoint so the curve has each step once."""
        if self.enabled:
            truncate_metrics(self.path, step)

    def log(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"run": self.run, "step": step, "time": round(time.time(), 3), **values}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        for key, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All rows of a run's metrics.jsonl (for tests, reports and the benchmark)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class TrainProgress:
    """The rich progress bar of rank 0: steps, tokens, loss, LR, tokens/s, MFU and ETA."""

    def __init__(self, enabled: bool, total_steps: int, start_step: int, run: str) -> None:
        self.progress = None
        if enabled:
            self.progress = make_progress()
            self.progress.start()
            self.task = self.progress.add_task(
                f"pretrain {run}", total=total_steps, completed=start_step, status=""
            )

    def update(
        self,
        step: int,
        tokens: int,
        loss: float,
        lr: float,
        tokens_per_s: float,
        mfu: float | None,
    ) -> None:
        if self.progress is None:
            return
        status = (
            f"tok {tokens / 1e6:,.1f}M  loss {loss:.4f}  lr {lr:.2e}  {tokens_per_s:,.0f} tok/s"
            + (f"  MFU {mfu:.1%}" if mfu is not None else "")
        )
        self.progress.update(self.task, completed=step, status=status)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
