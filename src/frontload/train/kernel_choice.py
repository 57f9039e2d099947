"""The recipe's `kernels:` choice, resolved once at start, printed, and returned for the records."""

from __future__ import annotations

import torch

from frontload.model.kernels import select
from frontload.progress import console


def choose_kernels(mode: str, device: torch.device, rank: int) -> dict[str, str]:
    """Resolve `kernels: auto | require | torch` (a ConfigError under `require` when a piece is
    missing) and print the kernel and version of each op on rank 0; returns that description."""

    described = select(mode).describe(device)
    if rank == 0:
        ops = ", ".join(f"{op}: {name}" for op, name in described.items() if op != "mode")
        console.print(f"kernels ({mode}) on {device.type}: {ops}")
    return described


def kernel_record(described: dict[str, str]) -> dict[str, str]:
    """Flat `kernel_<op>` columns for metrics.jsonl (the catalog reads it as one table)."""
    return {f"kernel_{op}": name for op, name in described.items()}
