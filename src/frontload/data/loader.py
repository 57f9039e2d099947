"""The trainer's side of the data: each step's micro-batches as device tensors, with their document
bounds computed once on the host, loaded one step ahead through pinned memory.

Why: the model needs `cu_seqlens` / `max_seqlen` for varlen attention and the MFU needs the document
lengths; computed from `seq_idx` on the GPU they cost a host sync in every attention layer. Here they
are numpy work on arrays the loader already holds. Copies from pinned memory with
`non_blocking=True` overlap the previous step's compute instead of stalling it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def document_bounds(seq_idx: np.ndarray) -> tuple[np.ndarray, int, float]:
    """(cu_seqlens, max_seqlen, sum of L(L+1)) of the documents in seq_idx (rows, T).

    cu_seqlens (documents + 1,) int32 indexes the flattened rows x T tokens: a document ends where
    seq_idx changes or a row ends (as `frontload.model.attention.varlen_bounds`).
    """
    rows, length = seq_idx.shape
    starts = np.ones((rows, length), dtype=bool)
    starts[:, 1:] = seq_idx[:, 1:] != seq_idx[:, :-1]
    cu = np.append(np.flatnonzero(starts), rows * length).astype(np.int32)
    lengths = np.diff(cu).astype(np.float64)
    return cu, int(lengths.max()), float((lengths * (lengths + 1)).sum())


@dataclass
class StepBatch:
    """One optimizer step's data for this process."""

    micro: list[dict[str, Any]]  # model inputs per micro-batch, on the device
    counts: list[int]  # trained tokens (labels != -100 after the shift) per micro-batch
    tokens: int  # tokens in the step's micro-batches
    document_pairs: float  # sum of L(L+1) over the step's documents (attention FLOPs)
    phase: str  # data phase the step was drawn from


class DeviceLoader:
    """Draws `accum` micro-batches of `rows` sequences per step from a `StagedData`-like source
    (`batch(step, rows)`, `state_dict()`, `phases`, `index`) and moves them to `device`.

    `prefetch(step)` loads a step ahead (call it right after launching the current step's work);
    `state_dict()` is the source's position after the last step handed out by `get`, so a
    checkpoint never skips the prefetched step on resume.
    """

    def __init__(self, source: Any, rows: int, accum: int, device: torch.device) -> None:
        self.source = source
        self.rows = rows
        self.accum = accum
        self.device = device
        self.pin = device.type == "cuda"
        self._ahead: tuple[int, StepBatch] | None = None
        self._state = copy.deepcopy(source.state_dict())

    def get(self, step: int) -> StepBatch:
        """The micro-batches of `step` (loaded now unless prefetched)."""
        if self._ahead is not None and self._ahead[0] == step:
            batch = self._ahead[1]
        else:
            batch = self._load(step)
        self._ahead = None
        self._state = copy.deepcopy(self.source.state_dict())
        return batch

    def prefetch(self, step: int) -> None:
        """Load `step` now (host reads and async copies), to be handed out by the next `get`."""
        self._ahead = (step, self._load(step))

    def state_dict(self) -> dict:
        """The source's state after the steps handed out so far (not the prefetched one)."""
        return self._state

    def _load(self, step: int) -> StepBatch:
        micro, counts, tokens, pairs = [], [], 0, 0.0
        for _ in range(self.accum):
            arrays = self.source.batch(step, self.rows)
            cu, longest, doc_pairs = document_bounds(arrays["seq_idx"])
            counts.append(int((arrays["labels"][:, 1:] != -100).sum()))
            tokens += arrays["input_ids"].size
            pairs += doc_pairs
            inputs = {
                "input_ids": self._to_device(arrays["input_ids"], torch.long),
                "labels": self._to_device(arrays["labels"], torch.long),
                "seq_idx": self._to_device(arrays["seq_idx"], torch.int32),
                "cu_seqlens": self._to_device(cu, torch.int32),
                "max_seqlen": longest,
            }
            micro.append(inputs)
        phase = self.source.phases[self.source.index].name
        return StepBatch(micro, counts, tokens, pairs, phase)

    def _to_device(self, array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(dtype)
        if self.pin:
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=self.pin)
