"""The one kernel facade: fast CUDA kernels when they import, PyTorch fallbacks otherwise, picked once and logged.

- Mamba-2 scan: mamba_ssm's Triton `mamba_chunk_scan_combined`, else `ssd.ssd_chunked`.
- Causal depthwise conv: `causal_conv1d_fn`, else `F.conv1d` (shifted sums when documents are packed).
- Attention: flash-attn (`flash_attn_func`, `flash_attn_varlen_func`), else PyTorch SDPA.
Every import is guarded with `except Exception`: a broken CUDA install must degrade, never crash.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
import torch.nn.functional as F

from frontload.model.ssd import ssd_chunked

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kernels:
    """What is available on this machine; chosen once per process."""

    triton_scan: Callable[..., Any] | None
    causal_conv1d: Callable[..., Any] | None
    flash_attn: Callable[..., Any] | None
    flash_attn_varlen: Callable[..., Any] | None
    torch_varlen: Callable[..., Any] | None

    def describe(self, device: torch.device | str = "cuda") -> dict[str, str]:
        """The kernel each op uses on `device` (for logs and benchmark JSON)."""
        on_cuda = torch.device(device).type == "cuda"
        return {
            "scan": "triton mamba_chunk_scan_combined"
            if on_cuda and self.triton_scan
            else "torch chunked SSD",
            "conv": "causal_conv1d" if on_cuda and self.causal_conv1d else "F.conv1d",
            "attention": "flash-attn" if on_cuda and self.flash_attn else "torch SDPA",
            "packed_attention": "flash-attn varlen"
            if on_cuda and self.flash_attn_varlen
            else "torch varlen_attn"
            if on_cuda and self.torch_varlen
            else "SDPA with a block-diagonal mask",
        }


def _import_mamba_triton_scan() -> Callable[..., Any]:
    """Import mamba_ssm's Triton Mamba-2 scan without running the package `__init__`.

    `mamba_ssm/__init__.py` imports the compiled `selective_scan_cuda` (Mamba-1 only), which is absent
    when mamba-ssm was installed without building its CUDA extension; the Mamba-2 scan itself is pure
    Triton. So we register a bare package object for `mamba_ssm` and import the submodule directly.
    """
    added = "mamba_ssm" not in sys.modules
    if added:
        spec = importlib.util.find_spec("mamba_ssm")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("mamba_ssm is not installed")
        package = types.ModuleType("mamba_ssm")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["mamba_ssm"] = package
    try:
        module = importlib.import_module("mamba_ssm.ops.triton.ssd_combined")
    except Exception:
        if added:
            sys.modules.pop("mamba_ssm", None)
        raise
    return module.mamba_chunk_scan_combined


def _torch_varlen_causal() -> Callable[..., Any]:
    """torch's varlen_attn as f(q, k, v, cu, max_len) -> causal GQA output; its arguments vary by version."""
    import inspect

    varlen_attn = importlib.import_module("torch.nn.attention.varlen").varlen_attn
    params = inspect.signature(varlen_attn).parameters
    causal = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True}
    gqa = "enable_gqa" in params

    def run(q, k, v, cu, longest):
        if not gqa and k.shape[1] != q.shape[1]:
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
        extra = {"enable_gqa": True} if gqa else {}
        return varlen_attn(q, k, v, cu, cu, longest, longest, **causal, **extra)

    return run


def _try(loader: Callable[[], Any], name: str) -> Any:
    try:
        return loader()
    except Exception as error:  # any failure (missing, wrong CUDA, ABI) means: use the fallback
        log.debug("kernel %s unavailable: %s", name, error)
        return None


@cache
def kernels() -> Kernels:
    """Probe the optional kernels once; CUDA kernels are only considered when CUDA is available.

    FL_MODEL_KERNELS=torch forces the PyTorch fallbacks (to compare against the fast kernels).
    """
    if not torch.cuda.is_available() or os.environ.get("FL_MODEL_KERNELS") == "torch":
        found = Kernels(None, None, None, None, None)
    else:
        found = Kernels(
            triton_scan=_try(_import_mamba_triton_scan, "mamba_ssm triton scan"),
            causal_conv1d=_try(
                lambda: importlib.import_module("causal_conv1d").causal_conv1d_fn, "causal_conv1d"
            ),
            flash_attn=_try(lambda: importlib.import_module("flash_attn").flash_attn_func, "flash"),
            flash_attn_varlen=_try(
                lambda: importlib.import_module("flash_attn").flash_attn_varlen_func, "flash varlen"
            ),
            torch_varlen=_try(_torch_varlen_causal, "torch varlen_attn"),
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log.info("model kernels on %s: %s", device, found.describe(device))
    return found


def scan(x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """Mamba-2 chunked scan with `mamba_chunk_scan_combined`'s signature, on the best kernel."""
    fast = kernels().triton_scan if x.is_cuda else None
    if fast is not None:
        return fast(x, *args, **kwargs)
    return ssd_chunked(x, *args, **kwargs)


def _conv_torch(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    seq_idx: torch.Tensor | None,
    history: torch.Tensor,
) -> torch.Tensor:
    """Depthwise causal conv over (b, K-1+T, c) padded input; packed documents do not see each other."""
    b, T = seq_idx.shape if seq_idx is not None else (x.shape[0], x.shape[1])
    K = weight.shape[-1]
    padded = torch.cat([history.to(x.dtype), x], dim=1)  # (b, K-1+T, c)
    if seq_idx is None:
        out = F.conv1d(
            padded.transpose(1, 2), weight[:, None, :].to(x.dtype), None, groups=x.shape[-1]
        )
        out = out.transpose(1, 2)
    else:
        ids = torch.cat([seq_idx[:, :1].expand(b, K - 1), seq_idx], dim=1)
        out = torch.zeros_like(x)
        for k in range(K):
            same = (ids[:, k : k + T] == seq_idx).to(x.dtype)[..., None]
            out = out + padded[:, k : k + T] * weight[:, k].to(x.dtype) * same
    return out if bias is None else out + bias.to(x.dtype)


def causal_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    seq_idx: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """silu(depthwise causal conv) of x (b, T, c) with weight (c, K); also the next conv state (b, c, K-1).

    The state holds the last K-1 inputs of the final document only (earlier documents are zeroed).
    """
    b, T, c = x.shape
    K = weight.shape[-1]
    history = (
        initial_state.transpose(1, 2) if initial_state is not None else x.new_zeros(b, K - 1, c)
    )
    fast = kernels().causal_conv1d if x.is_cuda and initial_state is None else None
    if fast is not None:
        out = fast(x.transpose(1, 2), weight, bias, seq_idx=seq_idx, activation="silu").transpose(
            1, 2
        )
    else:
        out = F.silu(_conv_torch(x, weight, bias, seq_idx, history))
    tail = torch.cat([history.to(x.dtype), x], dim=1)[:, -(K - 1) :]  # (b, K-1, c)
    if seq_idx is not None:
        ids = torch.cat([seq_idx[:, :1].expand(b, K - 1), seq_idx], dim=1)[:, -(K - 1) :]
        tail = tail * (ids == seq_idx[:, -1:]).to(x.dtype)[..., None]
    return out, tail.transpose(1, 2).contiguous()


def causal_conv_step(
    x: torch.Tensor, state: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoding step: x (b, c), state (b, c, K-1) -> (silu(conv) (b, c), new state)."""
    window = torch.cat([state.to(x.dtype), x[:, :, None]], dim=-1)  # (b, c, K)
    out = (window * weight.to(x.dtype)).sum(-1)
    if bias is not None:
        out = out + bias.to(x.dtype)
    return F.silu(out), window[:, :, 1:]
