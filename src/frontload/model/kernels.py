"""The one kernel facade: fast kernels when they import, PyTorch fallbacks otherwise, chosen once.

- Mamba-2 scan: mamba_ssm's Triton `mamba_chunk_scan_combined`, else `ssd.ssd_chunked`.
- Fused Mamba-2 (conv, split, scan, gated norm in one autograd function): mamba_ssm's
  `mamba_split_conv1d_scan_combined`, else the separate ops below.
- Gated RMSNorm: mamba_ssm's Triton `rmsnorm_fn`, else PyTorch in fp32.
- Causal depthwise conv: `causal_conv1d_fn`, else `conv.conv_packed` (one F.conv1d or one einsum).
- Attention: flash-attn (`flash_attn_func`, `flash_attn_varlen_func`) or torch's varlen, else SDPA.

`select(mode)` resolves the recipe's `kernels: auto | require | torch` once per process: `require`
raises naming each missing piece and how to install it; `describe()` names the kernel and version of
each op, for the start-up line, metrics.jsonl and the run summary. Every import is guarded with
`except Exception`: a broken CUDA install must degrade (or, under `require`, fail at start), never
crash mid-run.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import torch
import torch.nn.functional as F

from frontload.errors import ConfigError
from frontload.model.conv import (
    causal_conv1d_bwd_function,
    causal_conv1d_fwd_function,
    conv_packed,
)
from frontload.model.ssd import ssd_chunked

log = logging.getLogger(__name__)

KernelMode = Literal["auto", "require", "torch"]
MODES = ("auto", "require", "torch")

MAMBA_HINT = (
    "build a wheel without the CUDA extension: MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE "
    "pip wheel --no-deps --no-build-isolation mamba-ssm==2.3.2.post1, and pip install it "
    "(needs triton; docs/readme/model.md)"
)
INSTALL_HINTS = {
    "cuda": "kernels: require needs a CUDA GPU; use kernels: auto (or torch) on this machine",
    "scan": f"mamba_ssm Triton scan missing: {MAMBA_HINT}",
    "norm": f"mamba_ssm Triton gated RMSNorm missing: {MAMBA_HINT}",
    "conv": "causal_conv1d missing: pip install causal-conv1d (a compiled CUDA extension: use a "
    "prebuilt wheel matching your torch and CUDA)",
    "attention": "no fast packed attention: pip install flash-attn, or use torch >= 2.10 "
    "(torch.nn.attention.varlen)",
}


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


@dataclass(frozen=True)
class Kernels:
    """The kernel of each op for this process; None means the PyTorch fallback."""

    triton_scan: Callable[..., Any] | None = None
    split_conv_scan: Callable[..., Any] | None = None
    rmsnorm_gated: Callable[..., Any] | None = None
    causal_conv1d: Callable[..., Any] | None = None
    flash_attn: Callable[..., Any] | None = None
    flash_attn_varlen: Callable[..., Any] | None = None
    torch_varlen: Callable[..., Any] | None = None
    mode: str = "auto"
    # Triton's CPU interpreter (TRITON_INTERPRET=1) runs the Triton kernels on CPU tensors (tests).
    interpret: bool = False
    versions: dict[str, str] = field(default_factory=dict)

    def usable(self, tensor: torch.Tensor) -> bool:
        """Whether the fast kernels can take this tensor (CUDA, or CPU under the Triton interpreter)."""
        return tensor.is_cuda or self.interpret

    def missing(self) -> list[str]:
        """The pieces `kernels: require` asks for that are absent (keys of INSTALL_HINTS)."""
        if not (torch.cuda.is_available() or self.interpret):
            return ["cuda"]
        wanted = {
            "scan": self.triton_scan,
            "norm": self.rmsnorm_gated,
            "conv": self.causal_conv1d,
            "attention": self.flash_attn_varlen or self.torch_varlen,
        }
        return [name for name, found in wanted.items() if found is None]

    def describe(self, device: torch.device | str = "cuda") -> dict[str, str]:
        """The kernel and version of each op on `device` (start-up line, metrics.jsonl, benchmarks)."""
        fast = torch.device(device).type == "cuda" or self.interpret
        torch_v = f"torch {torch.__version__}"
        mamba_v = f"mamba_ssm {self.versions.get('mamba-ssm', '?')}"
        conv_v = f"causal_conv1d {self.versions.get('causal-conv1d', '?')}"
        flash_v = f"flash-attn {self.versions.get('flash-attn', '?')}"
        fused_conv = conv_v if self.causal_conv1d else f"{torch_v} conv stand-in"
        return {
            "mode": self.mode,
            "scan": f"{mamba_v} triton mamba_chunk_scan_combined"
            if fast and self.triton_scan
            else f"{torch_v} chunked SSD",
            "fused_mamba": f"{mamba_v} mamba_split_conv1d_scan_combined (conv: {fused_conv})"
            if fast and self.split_conv_scan
            else "off (separate conv, scan, norm)",
            "conv": f"{conv_v} causal_conv1d_fn"
            if fast and self.causal_conv1d
            else f"{torch_v} F.conv1d / masked windows",
            "norm": f"{mamba_v} triton rmsnorm_fn"
            if fast and self.rmsnorm_gated
            else f"{torch_v} gated RMSNorm (fp32)",
            "attention": f"{flash_v} flash_attn_func"
            if fast and self.flash_attn
            else f"{torch_v} SDPA",
            "packed_attention": f"{flash_v} flash_attn_varlen_func"
            if fast and self.flash_attn_varlen
            else f"{torch_v} varlen_attn"
            if fast and self.torch_varlen
            else f"{torch_v} SDPA with a block-diagonal mask",
        }


def _mamba_module(name: str) -> Any:
    """Import a Triton module of mamba_ssm without running the package `__init__`.

    `mamba_ssm/__init__.py` imports the compiled `selective_scan_cuda` (Mamba-1 only), which is absent
    when mamba-ssm was installed without building its CUDA extension; the Mamba-2 kernels themselves
    are pure Triton. So we register a bare package object for `mamba_ssm` and import the submodule.
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
        return importlib.import_module(f"mamba_ssm.{name}")
    except Exception:
        if added:
            sys.modules.pop("mamba_ssm", None)
        raise


def _import_mamba_triton_scan() -> Callable[..., Any]:
    return _mamba_module("ops.triton.ssd_combined").mamba_chunk_scan_combined


def _import_split_conv_scan() -> Callable[..., Any]:
    """mamba_ssm's fused split-conv-scan; without causal-conv1d its conv calls go to our PyTorch conv.

    The fused function calls `causal_conv1d_fwd_function` / `causal_conv1d_bwd_function`, module
    globals that are None when the compiled causal-conv1d is missing; we fill exactly those two.
    """
    module = _mamba_module("ops.triton.ssd_combined")
    if module.causal_conv1d_fwd_function is None:
        module.causal_conv1d_fwd_function = causal_conv1d_fwd_function
        module.causal_conv1d_bwd_function = causal_conv1d_bwd_function
    return module.mamba_split_conv1d_scan_combined


def _import_rmsnorm_gated() -> Callable[..., Any]:
    return _mamba_module("ops.triton.layernorm_gated").rmsnorm_fn


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
def probe() -> Kernels:
    """What imports on this machine (once per process). Off CPU, only under Triton's interpreter."""
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    if not (torch.cuda.is_available() or interpret):
        return Kernels()
    on_cuda = torch.cuda.is_available()
    return Kernels(
        triton_scan=_try(_import_mamba_triton_scan, "mamba_ssm triton scan"),
        split_conv_scan=_try(_import_split_conv_scan, "mamba_ssm split-conv-scan"),
        rmsnorm_gated=_try(_import_rmsnorm_gated, "mamba_ssm gated rmsnorm"),
        causal_conv1d=_try(
            lambda: importlib.import_module("causal_conv1d").causal_conv1d_fn, "causal_conv1d"
        )
        if on_cuda
        else None,
        flash_attn=_try(lambda: importlib.import_module("flash_attn").flash_attn_func, "flash")
        if on_cuda
        else None,
        flash_attn_varlen=_try(
            lambda: importlib.import_module("flash_attn").flash_attn_varlen_func, "flash varlen"
        )
        if on_cuda
        else None,
        torch_varlen=_try(_torch_varlen_causal, "torch varlen_attn") if on_cuda else None,
        interpret=interpret and not on_cuda,
        versions={
            name: _version(name) for name in ("mamba-ssm", "causal-conv1d", "flash-attn", "triton")
        },
    )


_active: Kernels | None = None


def select(mode: str = "auto") -> Kernels:
    """Resolve `kernels: auto | require | torch` for this process and make it the active choice.

    auto: the fast kernels that import, PyTorch for the rest. torch: PyTorch everywhere (to compare).
    require: like auto, but a ConfigError naming every missing piece and how to install it.
    """
    global _active
    if mode not in MODES:
        raise ConfigError(f"kernels: {mode!r} is not one of {', '.join(MODES)}", "use auto")
    chosen = replace(Kernels(), mode="torch") if mode == "torch" else replace(probe(), mode=mode)
    if mode == "require" and chosen.missing():
        pieces = chosen.missing()
        raise ConfigError(
            f"kernels: require, but missing: {', '.join(pieces)}",
            "; ".join(INSTALL_HINTS[piece] for piece in pieces),
        )
    _active = chosen
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log.info("model kernels on %s: %s", device, chosen.describe(device))
    return chosen


def activate(found: Kernels) -> Kernels:
    """Make a given choice active (benchmarks and tests compare e.g. one fused op at a time)."""
    global _active
    _active = found
    return found


def kernels() -> Kernels:
    """The active choice; the first call without `select` takes FL_MODEL_KERNELS (default auto)."""
    return _active if _active is not None else select(os.environ.get("FL_MODEL_KERNELS") or "auto")


def scan(x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """Mamba-2 chunked scan with `mamba_chunk_scan_combined`'s signature, on the best kernel."""
    found = kernels()
    if found.triton_scan is not None and found.usable(x):
        return found.triton_scan(x, *args, **kwargs)
    return ssd_chunked(x, *args, **kwargs)


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
        out = F.silu(conv_packed(x, weight, bias, seq_idx, history))
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
