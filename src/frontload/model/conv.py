"""Depthwise causal conv in PyTorch: the fallback of `causal_conv1d`, vectorised over the kernel width.

Also `causal_conv1d`'s low-level forward/backward pair (`causal_conv1d_fwd_function`,
`causal_conv1d_bwd_function`) written with these ops, so mamba_ssm's fused split-conv-scan runs where
the compiled causal-conv1d extension is absent (on the GPU machine it could not be built; on CPU it
lets Triton's interpreter check the fused path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def conv_packed(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    seq_idx: torch.Tensor | None,
    history: torch.Tensor,
) -> torch.Tensor:
    """Depthwise causal conv of x (b, T, c) after `history` (b, K-1, c); packed documents do not mix.

    One `F.conv1d` for the dense case. For packed rows, every output is a sum over the K taps of one
    sliding window (b, T, c, K) masked where the tap lies in another document: no Python loop over K.
    """
    K = weight.shape[-1]
    padded = torch.cat([history.to(x.dtype), x], dim=1)  # (b, K-1+T, c)
    w = weight.to(x.dtype)
    if seq_idx is None:
        out = F.conv1d(padded.transpose(1, 2), w[:, None, :], None, groups=x.shape[-1])
        out = out.transpose(1, 2)
    else:
        b = x.shape[0]
        ids = torch.cat([seq_idx[:, :1].expand(b, K - 1), seq_idx], dim=1)  # (b, K-1+T)
        same = (ids.unfold(1, K, 1) == seq_idx[..., None]).to(x.dtype)  # (b, T, K)
        windows = padded.unfold(1, K, 1)  # (b, T, c, K), a view
        out = torch.einsum("btck,btk,ck->btc", windows, same, w)
    return out if bias is None else out + bias.to(x.dtype)


def _silu_conv(x_bct, weight, bias, seq_idx, silu: bool) -> torch.Tensor:
    x = x_bct.transpose(1, 2)  # (b, T, c)
    history = x.new_zeros(x.shape[0], weight.shape[-1] - 1, x.shape[-1])
    out = conv_packed(x, weight, bias, seq_idx, history)
    return (F.silu(out) if silu else out).transpose(1, 2)


def causal_conv1d_fwd_function(
    x, weight, bias, seq_idx, initial_states, final_states_out, silu_activation
) -> torch.Tensor:
    """`causal_conv1d.cpp_functions.causal_conv1d_fwd_function` for x (b, c, T); no initial state."""
    if initial_states is not None or final_states_out is not None:
        raise NotImplementedError("the PyTorch stand-in does not carry conv states")
    with torch.no_grad():
        return _silu_conv(x, weight, bias, seq_idx, silu_activation).contiguous()


def causal_conv1d_bwd_function(
    x,
    weight,
    bias,
    dout,
    seq_idx,
    initial_states,
    dfinal_states,
    dx,
    return_dinitial_states,
    silu_activation,
):
    """`causal_conv1d_bwd_function`: (dx, dweight, dbias, None) by recomputing the conv with autograd."""
    if initial_states is not None or dfinal_states is not None or return_dinitial_states:
        raise NotImplementedError("the PyTorch stand-in does not carry conv states")
    with torch.enable_grad():
        inputs = [x.detach().requires_grad_(), weight.detach().requires_grad_()]
        if bias is not None:
            inputs.append(bias.detach().requires_grad_())
        out = _silu_conv(
            inputs[0], inputs[1], inputs[2] if bias is not None else None, seq_idx, silu_activation
        )
        grads = torch.autograd.grad(out, inputs, dout)
    dx_new = grads[0]
    if dx is not None:
        dx.copy_(dx_new)
        dx_new = dx
    return dx_new, grads[1], grads[2] if bias is not None else None, None
