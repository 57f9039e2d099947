"""GQA self-attention without position embeddings (as Nemotron-H); flash-attn or SDPA via the facade."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from frontload.model.cache import StepContext
from frontload.model.config import HybridConfig
from frontload.model.kernels import kernels


def attention_mask(
    batch: int,
    queries: int,
    keys: int,
    device: torch.device,
    key_mask: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean (b, 1, T, S) mask: causal with the queries at the end, valid keys, same document.

    Each query always sees itself, so padded query rows stay finite (their outputs are discarded).
    """
    past = keys - queries
    q_pos = torch.arange(queries, device=device)[:, None] + past
    k_pos = torch.arange(keys, device=device)[None, :]
    allowed = (k_pos <= q_pos).expand(batch, queries, keys)
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, :].bool()
    if seq_idx is not None and past == 0:
        allowed = allowed & (seq_idx[:, :, None] == seq_idx[:, None, :])
    allowed = allowed | (k_pos == q_pos)
    return allowed[:, None]


def varlen_bounds(seq_idx: torch.Tensor) -> tuple[torch.Tensor, int]:
    """cu_seqlens over the flattened (b*T) tokens: a document ends where seq_idx changes or a row ends.

    Syncs with the host (nonzero, max): call it once per batch, never per layer (see
    `frontload.data.loader.document_bounds` for the loader-side numpy version).
    """
    b, T = seq_idx.shape
    flat = (seq_idx.long() + torch.arange(b, device=seq_idx.device)[:, None] * (T + 1)).flatten()
    starts = torch.nonzero(flat[1:] != flat[:-1]).flatten() + 1
    edges = [torch.zeros(1, device=flat.device, dtype=torch.long), starts]
    edges.append(torch.tensor([b * T], device=flat.device))
    cu = torch.cat(edges).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: StepContext) -> torch.Tensor:
    """Softmax attention of q (b, T, hq, d) over k/v (b, S, hkv, d), S >= T, into (b, T, hq, d)."""
    b, T = q.shape[:2]
    S = k.shape[1]
    fast = kernels() if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) else None
    padded = ctx.key_mask is not None
    packed = ctx.seq_idx is not None and S == T
    if fast is not None and not padded:
        varlen = fast.flash_attn_varlen or fast.torch_varlen
        if packed and varlen is not None:
            if ctx.cu_seqlens is None:
                ctx.cu_seqlens, ctx.max_seqlen = varlen_bounds(ctx.seq_idx)
            cu, longest = ctx.cu_seqlens, ctx.max_seqlen
            flat = [t.reshape(b * T, *t.shape[2:]) for t in (q, k, v)]
            if fast.flash_attn_varlen is not None:
                out = fast.flash_attn_varlen(*flat, cu, cu, longest, longest, causal=True)
            else:
                out = fast.torch_varlen(*flat, cu, longest)
            return out.view(b, T, *out.shape[1:])
        if not packed and fast.flash_attn is not None:
            return fast.flash_attn(q, k, v, causal=True)
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # (b, heads, T|S, d)
    if not padded and not packed and (S == T or T == 1):
        # Dense case: no mask tensor; a single new token may see every cached key.
        out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=T > 1, enable_gqa=True)
    else:
        mask = attention_mask(b, T, S, q.device, ctx.key_mask, ctx.seq_idx)
        out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, enable_gqa=True)
    return out.transpose(1, 2)


class Attention(nn.Module):
    """q/k/v/o projections named as transformers' NemotronHAttention, so weights convert 1:1."""

    def __init__(self, config: HybridConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        width = config.hidden_size
        self.q_proj = nn.Linear(width, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(width, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(width, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, width, bias=False)

    def forward(self, hidden: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        b, T, _ = hidden.shape  # (B, T, C)
        q = self.q_proj(hidden).view(b, T, self.num_heads, self.head_dim)
        k = self.k_proj(hidden).view(b, T, self.num_kv_heads, self.head_dim)
        v = self.v_proj(hidden).view(b, T, self.num_kv_heads, self.head_dim)
        if ctx.cache is not None:
            k, v = ctx.cache.update_kv(self.layer_idx, k, v)
        out = attend(q, k, v, ctx)  # (B, T, H, D)
        return self.o_proj(out.reshape(b, T, -1))
