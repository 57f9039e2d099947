"""Conv and attention fallbacks against naive references (fp64/fp32, CPU), and the kernel facade."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from frontload.model.attention import attend
from frontload.model.cache import StepContext
from frontload.model.kernels import causal_conv, causal_conv_step, kernels, select

SEQ_IDX = torch.tensor([[0] * 5 + [1] * 2 + [2] * 6, [0] * 13], dtype=torch.int32)


def naive_conv(x, weight, bias, seq_idx=None, history=None):
    """out_t = silu(bias + sum_k w_k x_{t-K+1+k}), inputs from another document (or before t=0) are 0."""
    b, T, c = x.shape
    K = weight.shape[-1]
    out = torch.zeros_like(x)
    for t in range(T):
        acc = bias.clone().expand(b, c).clone()
        for k in range(K):
            src = t - (K - 1) + k
            if src >= 0:
                same = (
                    torch.ones(b, dtype=x.dtype)
                    if seq_idx is None
                    else (seq_idx[:, src] == seq_idx[:, t]).to(x.dtype)
                )
                acc = acc + weight[:, k] * x[:, src] * same[:, None]
            elif history is not None:
                same = (
                    torch.ones(b, dtype=x.dtype)
                    if seq_idx is None
                    else (seq_idx[:, 0] == seq_idx[:, t]).to(x.dtype)
                )
                acc = acc + weight[:, k] * history[:, :, K - 1 + src] * same[:, None]
        out[:, t] = F.silu(acc)
    return out


def test_conv_dense_packed_and_state() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 13, 6, generator=gen, dtype=torch.float64)
    w = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    bias = torch.randn(6, generator=gen, dtype=torch.float64)
    out, state = causal_conv(x, w, bias)
    torch.testing.assert_close(out, naive_conv(x, w, bias))
    torch.testing.assert_close(state, x[:, -3:].transpose(1, 2))
    out, state = causal_conv(x, w, bias, seq_idx=SEQ_IDX)
    torch.testing.assert_close(out, naive_conv(x, w, bias, SEQ_IDX))
    # Row 0's last document has 6 tokens: the state is its last 3 inputs; a 2-token document would be zero-padded.
    torch.testing.assert_close(state, x[:, -3:].transpose(1, 2))
    short = SEQ_IDX.clone()
    short[0, -2:] = 3
    _, state = causal_conv(x, w, bias, seq_idx=short)
    assert torch.all(state[0, :, 0] == 0) and torch.equal(state[0, :, 1:], x[0, -2:].T)


def test_conv_with_history_and_step_continue_the_sequence() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 10, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    bias = torch.randn(5, generator=gen, dtype=torch.float64)
    full, _ = causal_conv(x, w, bias)
    head, state = causal_conv(x[:, :6], w, bias)
    mid, state = causal_conv(x[:, 6:8], w, bias, initial_state=state)
    outs = [head, mid]
    for t in (8, 9):
        y, state = causal_conv_step(x[:, t], state, w, bias)
        outs.append(y[:, None])
    torch.testing.assert_close(torch.cat(outs, dim=1), full)


def dense_attention(q, k, v, allowed):
    """Dense masked softmax, GQA by repeating kv heads; allowed is (b, T, S) bool."""
    rep = q.shape[2] // k.shape[2]
    k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed[:, None], -math.inf)
    return torch.einsum("bhts,bshd->bthd", scores.softmax(-1), v)


def qkv(T: int, S: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(2, T, 4, 8, generator=gen, dtype=torch.float64),
        torch.randn(2, S, 2, 8, generator=gen, dtype=torch.float64),
        torch.randn(2, S, 2, 8, generator=gen, dtype=torch.float64),
    )


def test_attention_dense_packed_padded_and_decode() -> None:
    q, k, v = qkv(13, 13)
    causal = torch.ones(13, 13, dtype=torch.bool).tril().expand(2, 13, 13)
    torch.testing.assert_close(attend(q, k, v, StepContext()), dense_attention(q, k, v, causal))

    same_doc = SEQ_IDX[:, :, None] == SEQ_IDX[:, None, :]
    got = attend(q, k, v, StepContext(seq_idx=SEQ_IDX))
    torch.testing.assert_close(got, dense_attention(q, k, v, causal & same_doc))

    key_mask = torch.ones(2, 13, dtype=torch.bool)
    key_mask[1, :4] = False  # left padding in row 1
    got = attend(q, k, v, StepContext(key_mask=key_mask))
    want = dense_attention(q, k, v, causal & key_mask[:, None, :])
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1, 4:], want[1, 4:])
    assert torch.isfinite(got).all()

    q1, k1, v1 = qkv(1, 9, seed=1)  # one new token over 8 cached keys
    every = torch.ones(2, 1, 9, dtype=torch.bool)
    torch.testing.assert_close(
        attend(q1, k1, v1, StepContext()), dense_attention(q1, k1, v1, every)
    )
    q3, k3, v3 = qkv(3, 9, seed=2)  # several new tokens over cached keys (chunked prefill)
    offset = torch.arange(9)[None, :] <= torch.arange(3)[:, None] + 6
    got = attend(q3, k3, v3, StepContext())
    torch.testing.assert_close(got, dense_attention(q3, k3, v3, offset.expand(2, 3, 9)))


def test_facade_falls_back_on_cpu() -> None:
    names = select("auto").describe("cpu")
    version = f"torch {torch.__version__}"
    assert names["mode"] == "auto"
    assert names["scan"] == f"{version} chunked SSD"
    assert names["conv"].startswith(version) and names["norm"].startswith(version)
    assert names["attention"] == f"{version} SDPA"
    assert names["packed_attention"] == f"{version} SDPA with a block-diagonal mask"
    assert names["fused_mamba"].startswith("off")


def test_require_names_each_missing_piece_and_torch_forces_fallbacks(monkeypatch) -> None:
    import pytest

    from frontload.errors import ConfigError
    from frontload.model import kernels as facade

    with pytest.raises(ConfigError) as info:
        select("require")  # no CUDA here
    assert "missing: cuda" in str(info.value) and "kernels: auto" in info.value.hint
    # A GPU machine with only torch: every piece is named with its install command.
    monkeypatch.setattr(facade.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(facade, "probe", lambda: facade.Kernels(torch_varlen=None))
    with pytest.raises(ConfigError) as info:
        select("require")
    assert "missing: scan, norm, conv, attention" in str(info.value)
    for needle in ("mamba-ssm==2.3.2.post1", "causal-conv1d", "flash-attn"):
        assert needle in info.value.hint
    monkeypatch.setattr(facade, "probe", lambda: facade.Kernels(triton_scan=print))
    assert select("torch").triton_scan is None and kernels().mode == "torch"
    assert select("auto").triton_scan is print
    with pytest.raises(ConfigError):
        select("fast")
    monkeypatch.undo()
    select("auto")


def test_packed_conv_has_no_python_loop_over_the_kernel_width() -> None:
    """The fallback for packed rows is one traced graph whose size does not grow with K."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from frontload.model.conv import conv_packed

    def ops(K: int) -> int:
        x, w = torch.randn(2, 13, 6), torch.randn(6, K)
        history = torch.zeros(2, K - 1, 6)
        traced = make_fx(lambda x, w, h: conv_packed(x, w, None, SEQ_IDX, h))(x, w, history)
        return len(traced.graph.nodes)

    assert ops(2) == ops(4) == ops(8)


def test_triton_scan_imports_without_running_the_package_init(tmp_path, monkeypatch) -> None:
    """mamba_ssm's __init__ needs a compiled extension; the loader must reach the Triton module anyway."""
    import sys

    from frontload.model.kernels import _import_mamba_triton_scan

    package = tmp_path / "mamba_ssm"
    (package / "ops" / "triton").mkdir(parents=True)
    (package / "__init__.py").write_text("import selective_scan_cuda  # compiled, absent\n")
    (package / "ops" / "__init__.py").write_text("")
    (package / "ops" / "triton" / "__init__.py").write_text("")
    (package / "ops" / "triton" / "ssd_combined.py").write_text(
        "def mamba_chunk_scan_combined(*args, **kwargs):\n    return 'triton'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n.startswith("mamba_ssm")]:
        monkeypatch.delitem(sys.modules, name)
    scan = _import_mamba_triton_scan()
    assert scan() == "triton"
    for name in [n for n in sys.modules if n.startswith("mamba_ssm")]:
        monkeypatch.delitem(sys.modules, name)
