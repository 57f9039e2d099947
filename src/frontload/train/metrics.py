"""Training metrics: JSONL rows in the run folder (the catalog's `train_metrics`), optional
TensorBoard, and model FLOPs utilisation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

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


def flops_per_token(n_params: int, n_attention_layers: int, hidden: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 x parameters plus causal attention scores (fwd + bwd).

    Attention: QK^T and AV are 2 x 2 x seq x hidden FLOPs per token per layer forward; causal
    masking halves them; backward doubles forward: 6 x seq x hidden per layer.
    """
    return 6.0 * n_params + 6.0 * n_attention_layers * hidden * seq_len


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
        from frontload.progress import console

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
            from frontload.progress import make_progress

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
