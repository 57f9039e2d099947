"""The chunked pure-PyTorch SSD against the step-by-step recurrence (fp64), every option of the kernel API."""

from __future__ import annotations

import math

import pytest
import torch

from frontload.model.ssd import ssd_chunked, ssd_reference, ssd_step

B, T, H, P, G, N = 2, 37, 4, 3, 2, 5


def inputs(seed: int = 0, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    return {
        "x": r(B, T, H, P),
        "dt": r(B, T, H),
        "A": -torch.rand(H, generator=gen, dtype=dtype) * 3,
        "B": r(B, T, G, N),
        "C": r(B, T, G, N),
    }


SEQ_IDX = torch.tensor([[0] * 10 + [1] * 20 + [2] * 7, [0] * 3 + [1] * 34], dtype=torch.int32)


@pytest.mark.parametrize("chunk", [4, 8, 64])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("with_init", [False, True])
def test_chunked_matches_recurrence(chunk: int, packed: bool, with_init: bool) -> None:
    t = inputs()
    gen = torch.Generator().manual_seed(1)
    options = {
        "D": torch.randn(H, generator=gen, dtype=torch.float64),
        "z": torch.randn(B, T, H, P, generator=gen, dtype=torch.float64),
        "dt_bias": torch.randn(H, generator=gen, dtype=torch.float64),
        "dt_softplus": True,
        "dt_limit": (0.01, 2.0),
        "seq_idx": SEQ_IDX if packed else None,
        "initial_states": torch.randn(B, H, P, N, generator=gen, dtype=torch.float64)
        if with_init
        else None,
        "return_final_states": True,
    }
    ref, ref_state = ssd_reference(**t, **options)
    out, state = ssd_chunked(**t, chunk_size=chunk, **options)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(state, ref_state, atol=1e-10, rtol=1e-10)


def test_plain_options_and_per_channel_D() -> None:
    t = inputs(2)
    D = torch.randn(H, P, dtype=torch.float64)
    ref = ssd_reference(**t, D=D)
    out = ssd_chunked(**t, chunk_size=16, D=D)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)


def test_fp32_and_bf16_inputs_scan_in_fp32() -> None:
    t64 = inputs(3)
    ref = ssd_reference(**t64, dt_softplus=True)
    out32 = ssd_chunked(**{k: v.float() for k, v in t64.items()}, chunk_size=8, dt_softplus=True)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), ref, atol=1e-4, rtol=1e-4)
    out16 = ssd_chunked(
        **{k: v.bfloat16() if k != "A" else v.float() for k, v in t64.items()},
        chunk_size=8,
        dt_softplus=True,
    )
    assert out16.dtype == torch.bfloat16
    assert (out16.double() - ref).abs().max() < 0.1 * ref.abs().max()


def test_packed_documents_do_not_see_each_other() -> None:
    """Doc 2 of row 0 scanned inside the packed row equals doc 2 scanned alone."""
    t = inputs(4)
    packed = ssd_chunked(**t, chunk_size=8, seq_idx=SEQ_IDX, dt_softplus=True)
    alone = ssd_chunked(
        **{k: v if k == "A" else v[:1, 30:] for k, v in t.items()}, chunk_size=8, dt_softplus=True
    )
    torch.testing.assert_close(packed[:1, 30:], alone, atol=1e-10, rtol=1e-10)
    whole = ssd_chunked(**t, chunk_size=8, dt_softplus=True)
    assert not torch.allclose(whole[:1, 30:], alone)


def test_final_state_continues_the_scan() -> None:
    """Scanning two halves with the carried state equals one scan (the cache relies on it)."""
    t = inputs(5)
    full = ssd_chunked(**t, chunk_size=8, dt_softplus=True)
    first = {k: v if k == "A" else v[:, :20] for k, v in t.items()}
    second = {k: v if k == "A" else v[:, 20:] for k, v in t.items()}
    head, state = ssd_chunked(**first, chunk_size=8, dt_softplus=True, return_final_states=True)
    tail = ssd_chunked(**second, chunk_size=8, dt_softplus=True, initial_states=state)
    torch.testing.assert_close(torch.cat([head, tail], dim=1), full, atol=1e-10, rtol=1e-10)


def test_step_is_one_recurrence_step() -> None:
    t = inputs(6)
    state = torch.zeros(B, H, P, N, dtype=torch.float64)
    y, state = ssd_step(state, t["x"][:, 0], t["dt"][:, 0], t["A"], t["B"][:, 0], t["C"][:, 0])
    ref = ssd_reference(**{k: v if k == "A" else v[:, :1] for k, v in t.items()})
    torch.testing.assert_close(y, ref[:, 0])
    assert math.isfinite(float(state.abs().max()))
