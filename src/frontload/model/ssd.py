"""Mamba-2 state-space scan in pure PyTorch: chunked SSD (the CPU / fallback path) and a naive recurrence.

Both follow the semantics of mamba_ssm's `mamba_chunk_scan_combined`: per position t and head h,
    dt_t = clamp(softplus(dt_t + dt_bias)),  h_t = exp(dt_t * A) h_{t-1} + dt_t * B_t x_t^T,
    y_t = C_t . h_t + D x_t  (then times silu(z_t) when z is given),
with B/C shared by groups of heads, an optional initial state, and `seq_idx` (B, T) marking packed
documents: the state is reset wherever seq_idx changes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

NO_LIMIT = (0.0, math.inf)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """fp64 stays fp64 (reference tests); everything else is scanned in fp32 as the kernel does."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def prepare_dt(
    dt: torch.Tensor,
    dt_bias: torch.Tensor | None,
    dt_softplus: bool,
    dt_limit: tuple[float, float],
) -> torch.Tensor:
    """Bias, softplus (threshold 20, as the Triton kernel) and clamp of the step size."""
    if dt_bias is not None:
        dt = dt + dt_bias.to(dt.dtype)
    if dt_softplus:
        dt = F.softplus(dt)
    if tuple(dt_limit) != NO_LIMIT:
        dt = dt.clamp(min=dt_limit[0], max=dt_limit[1])
    return dt


def ssd_step(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
    dt_limit: tuple[float, float] = NO_LIMIT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One recurrence step (decoding): state (b,h,p,n), x (b,h,p), dt (b,h), B/C (b,g,n) -> (y, state)."""
    heads, groups = x.shape[1], B.shape[1]
    dtype = state.dtype
    dt = prepare_dt(dt.to(dtype), dt_bias, dt_softplus, dt_limit)  # (b, h)
    Bh = B.to(dtype).repeat_interleave(heads // groups, dim=1)  # (b, h, n)
    Ch = C.to(dtype).repeat_interleave(heads // groups, dim=1)
    xf = x.to(dtype)
    decay = torch.exp(dt * A.to(dtype))[..., None, None]  # (b, h, 1, 1)
    state = state * decay + (dt[..., None] * xf)[..., None] * Bh[:, :, None, :]
    y = torch.einsum("bhpn,bhn->bhp", state, Ch)
    if D is not None:
        y = y + xf * (D.to(dtype)[:, None] if D.dim() == 1 else D.to(dtype))
    return y, state


def ssd_reference(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    initial_states: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    dt_softplus: bool = False,
    dt_limit: tuple[float, float] = NO_LIMIT,
    return_final_states: bool = False,
):
    """Step-by-step recurrence over x (b,T,h,p); the trusted reference for the chunked scan and kernels."""
    b, T, h, p = x.shape
    dtype = compute_dtype(x)
    state = (
        initial_states.to(dtype).clone()
        if initial_states is not None
        else x.new_zeros(b, h, p, B.shape[-1], dtype=dtype)
    )
    ys = []
    for t in range(T):
        if seq_idx is not None and t > 0:
            keep = (seq_idx[:, t] == seq_idx[:, t - 1]).to(dtype)
            state = state * keep[:, None, None, None]
        y, state = ssd_step(
            state, x[:, t], dt[:, t], A, B[:, t], C[:, t], D, dt_bias, dt_softplus, dt_limit
        )
        ys.append(y)
    out = torch.stack(ys, dim=1)
    if z is not None:
        out = out * F.silu(z.to(dtype))
    out = out.to(x.dtype)
    return (out, state) if return_final_states else out


def ssd_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    initial_states: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
    dt_softplus: bool = False,
    dt_limit: tuple[float, float] = NO_LIMIT,
    return_final_states: bool = False,
):
    """Chunked SSD: quadratic attention-like form inside chunks, a linear recurrence across chunks.

    Shapes as mamba_chunk_scan_combined: x (b,T,h,p), dt (b,T,h), A (h), B/C (b,T,g,n),
    initial_states / final state (b,h,p,n), seq_idx (b,T) int. Autocast is off inside: the scan
    runs in fp32 (fp64 for fp64 inputs) like the Triton kernel, whatever the caller's autocast.
    """
    with torch.autocast(x.device.type, enabled=False):
        y, final = _ssd_chunked(
            x,
            dt,
            A,
            B,
            C,
            chunk_size,
            D,
            z,
            dt_bias,
            initial_states,
            seq_idx,
            dt_softplus,
            dt_limit,
        )
    return (y, final) if return_final_states else y


def _ssd_chunked(x, dt, A, B, C, L, D, z, dt_bias, initial_states, seq_idx, dt_softplus, dt_limit):
    b, T, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    hg = h // g
    dtype = compute_dtype(x)
    pad = (-T) % L
    nc = (T + pad) // L

    dt = prepare_dt(dt.to(dtype), dt_bias, dt_softplus, dt_limit)
    xs, Bs, Cs = x.to(dtype), B.to(dtype), C.to(dtype)
    if pad:
        # Padded steps have dt = 0 and x = 0: no decay and no input, so the state passes through.
        xs, dt, Bs, Cs = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (xs, dt, Bs, Cs))
        if seq_idx is not None:
            seq_idx = torch.cat([seq_idx, seq_idx[:, -1:].expand(b, pad)], dim=1)
    # Heads-major layout so every contraction below is a plain batched matmul.
    xs = xs.view(b, nc, L, g, hg, p).permute(0, 1, 3, 4, 2, 5)  # (b, c, g, hg, l, p)
    dt = dt.view(b, nc, L, g, hg).permute(0, 1, 3, 4, 2)  # (b, c, g, hg, l)
    Bs = Bs.view(b, nc, L, g, n).transpose(2, 3)  # (b, c, g, l, n)
    Cs = Cs.view(b, nc, L, g, n).transpose(2, 3)
    dA_cum = torch.cumsum(dt * A.to(dtype).view(g, hg, 1), dim=-1)  # (b, c, g, hg, l)
    si = seq_idx.view(b, nc, L) if seq_idx is not None else None

    # 1. Within each chunk: y_l += sum_{s<=l} (C_l.B_s) exp(cum_l - cum_s) dt_s x_s.
    keep = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()  # (l, s)
    if si is not None:
        keep = (keep & (si[..., :, None] == si[..., None, :]))[:, :, None, None]  # (b,c,1,1,l,s)
    segment = dA_cum[..., :, None] - dA_cum[..., None, :]  # (b, c, g, hg, l, s)
    decay = torch.exp(segment.masked_fill(~keep, -math.inf))
    scores = (Cs @ Bs.transpose(-1, -2))[:, :, :, None] * decay * dt[..., None, :]
    y = scores @ xs  # (b, c, g, hg, l, p)

    # 2. State each chunk adds by its end: sum_s exp(cum_end - cum_s) dt_s B_s x_s^T.
    to_end = torch.exp(dA_cum[..., -1:] - dA_cum) * dt  # (b, c, g, hg, l)
    if si is not None:
        to_end = to_end * (si == si[..., -1:]).to(dtype)[:, :, None, None]
    chunk_states = (xs * to_end[..., None]).transpose(-1, -2) @ Bs[:, :, :, None]  # (b,c,g,hg,p,n)

    # 3. Carry states across chunks; a document boundary inside a chunk drops the carried state.
    chunk_decay = torch.exp(dA_cum[..., -1])  # (b, c, g, hg)
    carried = (
        initial_states.to(dtype).view(b, g, hg, p, n)
        if initial_states is not None
        else xs.new_zeros(b, g, hg, p, n)
    )
    if si is not None:
        prev_end = torch.cat([si[:, :1, 0], si[:, :-1, -1]], dim=1)  # (b, c) doc id carried in
        chunk_decay = chunk_decay * (si[:, :, -1] == prev_end).to(dtype)[:, :, None, None]
    starts = []
    for c in range(nc):
        starts.append(carried)
        carried = carried * chunk_decay[:, c, :, :, None, None] + chunk_states[:, c]
    start_states = torch.stack(starts, dim=1)  # (b, c, g, hg, p, n)

    # 4. Carried state read out inside each chunk: y_l += exp(cum_l) C_l . state_start.
    from_start = torch.exp(dA_cum)  # (b, c, g, hg, l)
    if si is not None:
        from_start = from_start * (si == prev_end[..., None]).to(dtype)[:, :, None, None]
    y = y + (Cs[:, :, :, None] @ start_states.transpose(-1, -2)) * from_start[..., None]

    y = y.permute(0, 1, 4, 2, 3, 5).reshape(b, nc * L, h, p)[:, :T]
    if D is not None:
        y = y + x.to(dtype) * (D.to(dtype)[:, None] if D.dim() == 1 else D.to(dtype))
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y.to(x.dtype), carried.reshape(b, h, p, n)
