"""Mamba-2 mixer: in_proj -> causal conv -> SSD scan -> gated RMSNorm -> out_proj (Nemotron-H layout).

In training and prefill without padding, the middle (split, conv, scan, gated norm) is mamba_ssm's
fused `mamba_split_conv1d_scan_combined` when the kernel facade has it: one autograd function that
recomputes the conv in backward instead of storing it. The separate ops are the fallback.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from frontload.model import kernels
from frontload.model.cache import StepContext
from frontload.model.config import HybridConfig
from frontload.model.mlp import GatedRMSNorm
from frontload.model.ssd import ssd_step


class Mamba2Mixer(nn.Module):
    """Parameter names and in_proj split order [z, xBC, dt] follow transformers' NemotronHMamba2Mixer."""

    def __init__(self, config: HybridConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.mamba_num_heads
        self.head_dim = config.mamba_head_dim
        self.n_groups = config.n_groups
        self.state_size = config.ssm_state_size
        self.chunk_size = config.chunk_size
        self.inner = config.mamba_inner_size
        self.conv_dim = config.mamba_conv_dim
        # transformers' NemotronH clamps dt below at time_step_min; we match it for weight parity.
        self.dt_limit = (config.time_step_min, math.inf)
        self.in_proj = nn.Linear(
            config.hidden_size, self.inner + self.conv_dim + self.num_heads, bias=config.use_bias
        )
        self.conv1d = nn.Conv1d(
            self.conv_dim,
            self.conv_dim,
            kernel_size=config.conv_kernel,
            groups=self.conv_dim,
            padding=config.conv_kernel - 1,
            bias=config.use_conv_bias,
        )
        self.dt_bias = nn.Parameter(torch.ones(self.num_heads))
        self.A_log = nn.Parameter(torch.zeros(self.num_heads))
        self.D = nn.Parameter(torch.ones(self.num_heads))
        self.norm = GatedRMSNorm(self.inner, self.inner // self.n_groups, config.layer_norm_epsilon)
        self.out_proj = nn.Linear(self.inner, config.hidden_size, bias=config.use_bias)

    def forward(self, hidden: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        b, T, _ = hidden.shape  # (B, T, C)
        pad = ctx.pad_mask[..., None].to(hidden.dtype) if ctx.pad_mask is not None else None
        if pad is not None:  # padded positions must not feed the conv or SSM state
            hidden = hidden * pad
        zxbcdt = self.in_proj(hidden)  # (B, T, inner + conv_dim + heads)
        A = -torch.exp(self.A_log.float())
        found = kernels.kernels()
        if found.split_conv_scan and found.usable(hidden) and ctx.cache is None and pad is None:
            y = self._fused(found.split_conv_scan, zxbcdt, A, ctx)
        else:
            y = self._separate(zxbcdt, A, pad, ctx)
        return self.out_proj(y.to(hidden.dtype))

    def _fused(self, split_conv_scan, zxbcdt: torch.Tensor, A: torch.Tensor, ctx: StepContext):
        """Split, conv, scan and gated norm in mamba_ssm's one autograd function -> (B, T, inner)."""
        return split_conv_scan(
            zxbcdt,
            self.conv1d.weight[:, 0],
            self.conv1d.bias,
            self.dt_bias,
            A,
            self.D,
            self.chunk_size,
            seq_idx=ctx.seq_idx,
            dt_limit=self.dt_limit,
            activation="silu",
            rmsnorm_weight=self.norm.weight,
            rmsnorm_eps=self.norm.eps,
            headdim=self.head_dim,
            ngroups=self.n_groups,
            norm_before_gate=False,
        )

    def _separate(
        self, zxbcdt: torch.Tensor, A: torch.Tensor, pad: torch.Tensor | None, ctx: StepContext
    ) -> torch.Tensor:
        """The op-by-op path (any device, padding, cache): conv, scan, gated norm -> (B, T, inner)."""
        b, T, _ = zxbcdt.shape
        z, xBC, dt = zxbcdt.split([self.inner, self.conv_dim, self.num_heads], dim=-1)
        if pad is not None:
            xBC = xBC * pad
        conv_state, ssm_state = (
            ctx.cache.mamba_state(self.layer_idx) if ctx.cache is not None else (None, None)
        )
        weight = self.conv1d.weight[:, 0]  # (conv_dim, K)
        if ssm_state is not None and T == 1:
            y, conv_next, ssm_next = self._step(
                xBC[:, 0], dt[:, 0], A, weight, conv_state, ssm_state
            )
            ctx.cache.set_mamba_state(self.layer_idx, conv_next, ssm_next)
            return self.norm(y[:, None].reshape(b, T, self.inner), z)
        xBC, conv_next = kernels.causal_conv(xBC, weight, self.conv1d.bias, ctx.seq_idx, conv_state)
        if pad is not None:
            xBC = xBC * pad
        x, B, C = xBC.split(
            [self.inner, self.n_groups * self.state_size, self.n_groups * self.state_size], -1
        )
        result = kernels.scan(
            x.reshape(b, T, self.num_heads, self.head_dim),
            dt,
            A,
            B.reshape(b, T, self.n_groups, self.state_size),
            C.reshape(b, T, self.n_groups, self.state_size),
            self.chunk_size,
            D=self.D,
            dt_bias=self.dt_bias,
            initial_states=ssm_state,
            seq_idx=ctx.seq_idx,
            dt_softplus=True,
            dt_limit=self.dt_limit,
            return_final_states=ctx.cache is not None,
        )
        if ctx.cache is not None:
            y, ssm_next = result
            ctx.cache.set_mamba_state(self.layer_idx, conv_next, ssm_next.float())
        else:
            y = result
        return self.norm(y.reshape(b, T, self.inner), z)

    def _step(
        self,
        xBC: torch.Tensor,
        dt: torch.Tensor,
        A: torch.Tensor,
        weight: torch.Tensor,
        conv_state: torch.Tensor,
        ssm_state: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode one token from the cached conv window and SSM state: O(1) in the context length."""
        b = xBC.shape[0]
        xBC, conv_next = kernels.causal_conv_step(xBC, conv_state, weight, self.conv1d.bias)
        x, B, C = xBC.split(
            [self.inner, self.n_groups * self.state_size, self.n_groups * self.state_size], -1
        )
        y, ssm_next = ssd_step(
            ssm_state,
            x.reshape(b, self.num_heads, self.head_dim),
            dt,
            A,
            B.reshape(b, self.n_groups, self.state_size),
            C.reshape(b, self.n_groups, self.state_size),
            self.D,
            self.dt_bias,
            dt_softplus=True,
            dt_limit=self.dt_limit,
        )
        return y.to(xBC.dtype), conv_next, ssm_next
