"""Generation state: KV for attention layers, conv + SSM state for Mamba layers, and per-forward context.

A Mamba layer's state is fixed-size ((b, conv_dim, K-1) and (b, heads, head_dim, state)), so decoding a
token costs O(1) in the context length for those layers; only attention layers grow with the context.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StepContext:
    """What every mixer needs to know about the current forward besides the hidden states.

    seq_idx: (b, T) int32 document index within each packed row, or None (one document per row).
    pad_mask: (b, T) bool, False at padded positions of the new tokens, or None (no padding).
    key_mask: (b, past + T) bool over all keys an attention layer sees, or None (no padding).
    cache: the generation cache, or None.
    cu_seqlens: (documents + 1,) int32 document starts over the flattened (b*T) tokens, with
        max_seqlen the longest document: the varlen attention kernels' input. Computed once per batch
        (by the data loader, or once per forward), never per layer, so no layer syncs with the host.
    """

    seq_idx: torch.Tensor | None = None
    cu_seqlens: torch.Tensor | None = None
    max_seqlen: int | None = None
    pad_mask: torch.Tensor | None = None
    key_mask: torch.Tensor | None = None
    cache: HybridCache | None = None


class HybridCache:
    """Per-layer decoding state for `generate()`; duck-types the parts of transformers' Cache it uses."""

    is_compileable = False
    is_croppable = False

    def __init__(self) -> None:
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.conv_states: dict[int, torch.Tensor] = {}
        self.ssm_states: dict[int, torch.Tensor] = {}
        self.seen_tokens = 0

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Tokens consumed so far (the same for every layer)."""
        return self.seen_tokens

    @property
    def has_state(self) -> bool:
        """Whether any forward has written into this cache yet."""
        return self.seen_tokens > 0

    def update_kv(
        self, layer_idx: int, key: torch.Tensor, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append new keys/values (b, T, kv_heads, d) and return all of them."""
        if layer_idx in self.keys:
            key = torch.cat([self.keys[layer_idx], key], dim=1)
            value = torch.cat([self.values[layer_idx], value], dim=1)
        self.keys[layer_idx], self.values[layer_idx] = key, value
        return key, value

    def mamba_state(self, layer_idx: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(conv_state, ssm_state) of a Mamba layer, or (None, None) before the first forward."""
        return self.conv_states.get(layer_idx), self.ssm_states.get(layer_idx)

    def set_mamba_state(self, layer_idx: int, conv: torch.Tensor, ssm: torch.Tensor) -> None:
        """Store the state after the latest tokens."""
        self.conv_states[layer_idx], self.ssm_states[layer_idx] = conv, ssm

    def _apply(self, fn) -> None:
        for store in (self.keys, self.values, self.conv_states, self.ssm_states):
            for layer_idx, tensor in store.items():
                store[layer_idx] = fn(tensor)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Beam search: keep the rows of the surviving beams."""
        self._apply(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only some batch rows."""
        self._apply(lambda t: t[indices.to(t.device)])

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Expand each row `repeats` times (e.g. several samples per prompt)."""
        self._apply(lambda t: t.repeat_interleave(repeats, dim=0))
