"""Squared-ReLU FFN and the RMSNorms, matching transformers' NemotronH numerics (fp32 inside)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from frontload.model import kernels
from frontload.model.config import HybridConfig


class RMSNorm(nn.Module):
    """Pre-norm of every block and the final norm; the weight multiply stays in fp32."""

    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight.float() * xf).to(x.dtype)


class GatedRMSNorm(nn.Module):
    """Mamba-2's output norm: RMSNorm(y * silu(z)) per group of channels (norm_before_gate=False).

    mamba_ssm's Triton `rmsnorm_fn` when the kernel facade has it (one pass, no fp32 copies of the
    activations); otherwise PyTorch with fp32 intermediates, as transformers' NemotronH.
    """

    def __init__(self, width: int, group_size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.group_size = group_size
        self.eps = eps

    def forward(self, y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        found = kernels.kernels()
        if found.rmsnorm_gated is not None and found.usable(y):
            flat = y.reshape(-1, y.shape[-1])  # (B*T, C): the kernel takes rows
            out = found.rmsnorm_gated(
                flat,
                self.weight,
                None,
                z=gate.reshape(-1, y.shape[-1]),
                eps=self.eps,
                group_size=self.group_size,
                norm_before_gate=False,
            )
            return out.view(y.shape)
        dtype = y.dtype
        yf = y.float() * F.silu(gate.float())
        grouped = yf.view(*yf.shape[:-1], -1, self.group_size)
        grouped = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * grouped.view_as(yf).to(dtype)


class MLP(nn.Module):
    """down(relu(up(x))^2): Nemotron-H's non-gated FFN."""

    def __init__(self, config: HybridConfig) -> None:
        super().__init__()
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.mlp_bias)
        self.down_proj = nn.Linear(
            config.intermediate_size, config.hidden_size, bias=config.mlp_bias
        )

    def forward(self, x: torch.Tensor, ctx: object = None) -> torch.Tensor:
        return self.down_proj(torch.square(F.relu(self.up_proj(x))))
