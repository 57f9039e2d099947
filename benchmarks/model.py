"""Model benchmarks: training throughput against transformers' NemotronHForCausalLM, and GPU figures.

CPU (default): forward+backward tokens/s of the tiny and 125m presets, our pure-PyTorch path against
transformers' NemotronHForCausalLM holding the same weights, interleaved in the same run.

    python benchmarks/model.py                      # tiny (8 x 256) and 125m (1 x 128), 1 thread
    python benchmarks/model.py --presets tiny --steps 5

GPU (`--gpu`, one H200): the 866M shape of ../shared/docs/gpu.md at 4 x 4096 tokens, bf16 autocast,
fused AdamW: tokens/s, peak memory, MFU; Triton vs PyTorch scan agreement in bf16; decode tokens/s with
and without the cache at 1k and 4k context. The Triton scan needs mamba-ssm installed without its CUDA
extension (wheel built on the CPU machine with
`MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE pip wheel --no-deps --no-build-isolation
mamba-ssm==2.3.2.post1 -w .whl`, installed there with `pip install --no-index --no-deps`).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time

import torch

# gpu.md's 866M peer shape: the 1b preset with 24 layers instead of 26.
GPU_SHAPE = {
    "layer_pattern": "M-M-M*-M-M-M*-M-M-M*-M-M-",
    "chunk_size": 256,
    "max_position_embeddings": 16384,
}
CPU_SHAPES = {"tiny": (8, 256), "125m": (1, 128)}


def _train_step_time(model, ids, steps: int, warmup: int) -> float:
    """Seconds per forward+backward (gradients zeroed, no optimizer) after warm-up."""
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        model(ids, labels=ids).loss.backward()
        model.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def cpu_benchmark(presets: list[str], steps: int, warmup: int) -> list[dict]:
    """Ours vs the peer of the same shape and weights, alternating rounds so load hits both alike."""
    from frontload.model import HybridForCausalLM, preset
    from frontload.model.convert import to_nemotron_h

    rows = []
    for name in presets:
        batch, tokens = CPU_SHAPES[name]
        torch.manual_seed(0)
        ours = HybridForCausalLM(preset(name, max_position_embeddings=max(tokens, 2048)))
        peer = to_nemotron_h(ours)
        ids = torch.randint(0, ours.config.vocab_size, (batch, tokens))
        times = {"ours": [], "peer": []}
        for _ in range(3):
            times["ours"].append(_train_step_time(ours, ids, steps, warmup))
            times["peer"].append(_train_step_time(peer, ids, steps, warmup))
        best = {k: min(v) for k, v in times.items()}
        rows.append(
            {
                "preset": name,
                "parameters": sum(p.numel() for p in ours.parameters()),
                "batch": batch,
                "seq_len": tokens,
                "ours_tokens_per_s": round(batch * tokens / best["ours"], 1),
                "peer_tokens_per_s": round(batch * tokens / best["peer"], 1),
                "speedup_vs_peer": round(best["peer"] / best["ours"], 2),
            }
        )
    return rows


def cpu_decode(contexts: tuple[int, ...] = (256, 1024), new_tokens: int = 16) -> dict:
    """Greedy decode tokens/s of the tiny preset with and without the cache (fp32, CPU)."""
    from frontload.model import HybridForCausalLM, preset

    torch.manual_seed(0)
    model = HybridForCausalLM(preset("tiny")).eval()
    return {
        f"{context}_{'cache' if cache else 'no_cache'}": round(
            _decode_tokens_per_s(model, context, new_tokens, cache), 1
        )
        for context in contexts
        for cache in (True, False)
    }


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _matmul_tflops(device: str, size: int) -> float:
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    _sync(device)
    start = time.perf_counter()
    for _ in range(10):
        a @ a
    _sync(device)
    return 10 * 2 * size**3 / (time.perf_counter() - start) / 1e12


def _scan_agreement(seq_len: int = 4096) -> dict:
    """Triton scan vs the chunked PyTorch SSD on the same bf16 inputs (bench shape, packed rows)."""
    from frontload.model.kernels import kernels
    from frontload.model.ssd import ssd_chunked

    triton_scan = kernels().triton_scan
    if triton_scan is None:
        return {"triton": "not importable"}
    g = torch.Generator(device="cuda").manual_seed(0)
    b, h, p, n, groups = 2, 64, 64, 128, 8

    def r(*shape):
        return torch.randn(*shape, device="cuda", generator=g).bfloat16()

    x, dt, B, C = (
        r(b, seq_len, h, p),
        r(b, seq_len, h),
        r(b, seq_len, groups, n),
        r(b, seq_len, groups, n),
    )
    A = -torch.rand(h, device="cuda", generator=g) * 15 - 1
    D, bias = torch.ones(h, device="cuda"), torch.randn(h, device="cuda", generator=g) - 4
    seq_idx = (torch.arange(seq_len, device="cuda") // 1000).int()[None].expand(b, -1).contiguous()
    common = dict(D=D, dt_bias=bias, dt_softplus=True, seq_idx=seq_idx, return_final_states=True)
    fast, fast_state = triton_scan(x, dt, A, B, C, 256, **common)
    slow, slow_state = ssd_chunked(x, dt, A, B, C, 256, **common)
    scale = slow.float().abs().max().item()
    return {
        "max_abs_diff_over_max_abs": (fast.float() - slow.float()).abs().max().item() / scale,
        "state_max_abs_diff": (fast_state.float() - slow_state.float()).abs().max().item(),
    }


def triton_interpret_check() -> dict:
    """mamba_ssm's real Triton scan, run by Triton's CPU interpreter, against our chunked SSD (fp32).

    Needs mamba_ssm's source and triton importable, and TRITON_INTERPRET=1 MAMBA_DETERMINISTIC=1 set
    before start (one autotune config, so no GPU benchmarking). The kernel wrappers ask torch.cuda for
    a device context and an SM count; on CPU those two calls are stubbed.
    """
    from frontload.model.kernels import _import_mamba_triton_scan
    from frontload.model.ssd import ssd_chunked

    _stub_cuda_queries()
    triton_scan = _import_mamba_triton_scan()
    gen = torch.Generator().manual_seed(0)
    b, T, h, p, g, n = 2, 48, 4, 16, 2, 16
    leaves = {
        "x": torch.randn(b, T, h, p, generator=gen),
        "dt": torch.randn(b, T, h, generator=gen),
        "A": -torch.rand(h, generator=gen) * 3 - 0.5,
        "B": torch.randn(b, T, g, n, generator=gen),
        "C": torch.randn(b, T, g, n, generator=gen),
        "D": torch.randn(h, generator=gen),
        "dt_bias": torch.randn(h, generator=gen),
    }
    weight = torch.randn(b, T, h, p, generator=gen)
    seq_idx = torch.tensor([[0] * 20 + [1] * 28, [0] * 5 + [1] * 43], dtype=torch.int32)
    initial = torch.randn(b, h, p, n, generator=gen)
    result = {}
    for case, extra in (
        ("packed", {"seq_idx": seq_idx}),
        ("initial_state", {"initial_states": initial}),
    ):
        outs = {}
        for name, scan_fn in (("triton", triton_scan), ("torch", ssd_chunked)):
            ins = {k: v.clone().requires_grad_() for k, v in leaves.items()}
            y, state = scan_fn(
                ins["x"],
                ins["dt"],
                ins["A"],
                ins["B"],
                ins["C"],
                16,
                D=ins["D"],
                dt_bias=ins["dt_bias"],
                dt_softplus=True,
                dt_limit=(0.001, math.inf),
                return_final_states=True,
                **extra,
            )
            (y * weight).sum().backward()
            outs[name] = {
                "y": y,
                "final_state": state,
                **{f"grad_{k}": v.grad for k, v in ins.items()},
            }
        result[case] = {
            key: (outs["triton"][key] - outs["torch"][key]).abs().max().item()
            / outs["torch"][key].abs().max().item()
            for key in outs["torch"]
        }
    return {"max_abs_diff_over_max_abs": result}


def _stub_cuda_queries() -> None:
    """mamba_ssm's wrappers ask torch.cuda for a device context and an SM count; stub them on CPU."""
    import contextlib
    import types

    torch.cuda.device = lambda index: contextlib.nullcontext()
    torch.cuda.get_device_properties = lambda device: types.SimpleNamespace(multi_processor_count=4)


def fused_interpret_check() -> dict:
    """mamba_ssm's Triton gated RMSNorm and fused split-conv-scan (CPU interpreter) against our
    PyTorch path, through our own Mamba-2 mixer: outputs and every parameter gradient (fp32).

    The fused function's conv runs on our PyTorch stand-in for causal-conv1d (not installable on
    CPU). Same environment as `triton_interpret_check`.
    """
    from dataclasses import replace

    from frontload.model import preset
    from frontload.model.cache import StepContext
    from frontload.model.kernels import activate, probe
    from frontload.model.mamba2 import Mamba2Mixer

    _stub_cuda_queries()
    found = probe()
    if not (found.split_conv_scan and found.rmsnorm_gated):
        raise SystemExit("mamba_ssm's Triton kernels did not import (TRITON_INTERPRET=1 set?)")
    torch.manual_seed(0)
    config = preset("tiny", chunk_size=16)
    mixer = Mamba2Mixer(config, 0)
    with torch.no_grad():  # a realistic spread of decays and skips, not the constructor's constants
        mixer.A_log.copy_(torch.log(torch.rand(config.mamba_num_heads) * 8 + 1))
        mixer.dt_bias.uniform_(-4, -1)
        mixer.D.normal_()
        mixer.norm.weight.uniform_(0.5, 1.5)
    hidden = torch.randn(2, 48, config.hidden_size)
    seq_idx = torch.tensor([[0] * 17 + [1] * 31, [0] * 48], dtype=torch.int32)
    weight = torch.randn(2, 48, config.hidden_size)
    variants = {
        "torch": replace(found, triton_scan=None, split_conv_scan=None, rmsnorm_gated=None),
        "rmsnorm_gated": replace(found, triton_scan=None, split_conv_scan=None),
        "split_conv_scan": found,
    }
    outs = {}
    for name, variant in variants.items():
        activate(variant)
        mixer.zero_grad(set_to_none=True)
        out = mixer(hidden, StepContext(seq_idx=seq_idx))
        (out * weight).sum().backward()
        outs[name] = {"out": out.detach(), **{n: p.grad for n, p in mixer.named_parameters()}}
    return {
        "max_abs_diff_over_max_abs": {
            name: {
                key: (outs[name][key] - ref).abs().max().item() / ref.abs().max().item()
                for key, ref in outs["torch"].items()
            }
            for name in ("rmsnorm_gated", "split_conv_scan")
        }
    }


def _model_agreement(model, seq_len: int) -> dict:
    """Logits with the fast kernels vs the PyTorch fallbacks (bf16 autocast, packed rows)."""
    from frontload.model.kernels import select

    device = model.device
    ids = torch.randint(0, model.config.vocab_size, (1, seq_len), device=device)
    seq_idx = (torch.arange(seq_len, device=device) // 700).int()[None].contiguous()
    logits = {}
    for mode in ("auto", "torch"):
        select(mode)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
            logits[mode] = model(ids, seq_idx=seq_idx).logits.float()
    select("auto")
    diff = (logits["auto"] - logits["torch"]).abs()
    return {
        "max_abs_diff_over_max_abs": diff.max().item() / logits["torch"].abs().max().item(),
        "mean_abs_diff": diff.mean().item(),
        "argmax_agreement": (logits["auto"].argmax(-1) == logits["torch"].argmax(-1))
        .float()
        .mean()
        .item(),
    }


def _decode_tokens_per_s(model, context: int, new_tokens: int, use_cache: bool) -> float:
    """Decode speed excluding the prompt: (time for N new tokens - time for 1) / (N - 1)."""
    device = model.device.type
    prompt = torch.randint(0, model.config.vocab_size, (1, context), device=device)

    def timed(n: int) -> float:
        _sync(device)
        start = time.perf_counter()
        model.generate(
            prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=use_cache
        )
        _sync(device)
        return time.perf_counter() - start

    with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
        timed(2)
        one, many = min(timed(1) for _ in range(2)), timed(new_tokens)
    return (new_tokens - 1) / max(many - one, 1e-9)


def _peak_gb(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None


def _reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _mixer_paths(device: str, smoke: bool, steps: int) -> dict:
    """One Mamba-2 mixer of the 1b shape, bf16 autocast, forward + backward on packed rows: the
    PyTorch path against each fused kernel added in turn (ms, peak GB, output agreement)."""
    from dataclasses import replace

    from frontload.model import preset
    from frontload.model.cache import StepContext
    from frontload.model.kernels import Kernels, activate, probe, select
    from frontload.model.mamba2 import Mamba2Mixer

    config = preset("tiny") if smoke else preset("1b")
    b, T = (2, 64) if smoke else (2, 8192)
    torch.manual_seed(0)
    mixer = Mamba2Mixer(config, 0).to(device)
    with torch.no_grad():
        mixer.A_log.copy_(torch.log(torch.rand(config.mamba_num_heads) * 15 + 1))
        mixer.dt_bias.fill_(math.log(math.expm1(0.01)))
    hidden = torch.randn(b, T, config.hidden_size, device=device, requires_grad=True)
    seq_idx = (torch.arange(T, device=device) // max(T // 3, 1)).int()[None].repeat(b, 1)
    found = probe()
    variants = {
        "torch": Kernels(mode="torch"),
        "triton_scan": replace(found, split_conv_scan=None, rmsnorm_gated=None),
        "triton_scan_and_norm": replace(found, split_conv_scan=None),
        "fused_split_conv_scan": found,
    }
    needs = {"triton_scan": "triton_scan", "triton_scan_and_norm": "rmsnorm_gated"}
    needs["fused_split_conv_scan"] = "split_conv_scan"
    result, reference = {}, None
    for name, variant in variants.items():
        if name != "torch" and getattr(variant, needs[name]) is None:
            result[name] = "not importable here"
            continue
        activate(variant)
        _reset_peak(device)

        def run():
            with torch.autocast(device, dtype=torch.bfloat16):
                out = mixer(hidden, StepContext(seq_idx=seq_idx))
            out.float().square().mean().backward()
            return out

        out = run()  # warm-up (Triton compiles here)
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            run()
        _sync(device)
        row = {
            "ms": round((time.perf_counter() - start) / steps * 1e3, 2),
            "peak_gb": _peak_gb(device),
        }
        if reference is None:
            reference = out.detach().float()
        else:
            diff = (out.detach().float() - reference).abs().max().item()
            row["max_abs_diff_over_max_abs"] = diff / reference.abs().max().item()
        result[name] = row
        mixer.zero_grad(set_to_none=True)
        hidden.grad = None
    select("auto")
    return {"shape": f"{b} x {T}, 1b mixer", **result}


def _train_throughput(
    config, batch: int, seq_len: int, steps: int, device: str, compile_blocks: bool, peak: float
) -> dict:
    """bf16 autocast, fused AdamW: tokens/s, peak memory and MFU (frontload's FlopCounter: 6 x
    non-embedding parameters + attention over the documents + SSD scan; one document per row)."""
    from frontload.model import HybridForCausalLM
    from frontload.train.metrics import FlopCounter

    _reset_peak(device)
    torch.manual_seed(0)
    model = HybridForCausalLM(config).to(device)
    if compile_blocks:
        for block in model.backbone.layers:
            if block.kind != "mamba":
                block.compile()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    ids = torch.randint(0, config.vocab_size, (batch, seq_len), device=device)
    row = {"batch": batch, "seq_len": seq_len, "compiled_attention_and_mlp": compile_blocks}
    try:
        for i in range(2 + steps):
            if i == 2:
                _sync(device)
                start = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16):
                loss = model(ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        _sync(device)
    except torch.OutOfMemoryError:
        return {**row, "error": "out of memory"}
    step = (time.perf_counter() - start) / steps
    tokens = batch * seq_len
    flops = FlopCounter.for_config(config, seq_len).step_flops(
        tokens, batch * seq_len * (seq_len + 1)
    )
    row.update(
        step_s=round(step, 4),
        tokens_per_s=round(tokens / step),
        peak_memory_gb=_peak_gb(device),
        mfu_vs_measured_matmul=round(flops / step / (peak * 1e12), 4),
        mfu_vs_989_datasheet=round(flops / step / 989e12, 4),
        speedup_vs_peer_2200=round(tokens / step / 2200, 1),
    )
    if seq_len >= 4096:
        row["logits_fast_vs_torch_bf16"] = _model_agreement(model, 4096)
    del model, optimizer
    return row


def gpu_suite(smoke: bool, steps: int) -> dict:
    """Everything benchmarks/gpu.sh reports, in one process: kernels chosen, fused kernels vs the
    PyTorch path, the 866M peer shape at 1 x 4096 and 4 x 4096, MFU of the 1b preset at 8192 context,
    decode tokens/s at 1k and 4k of context. `smoke` runs the same code on CPU at tiny shapes."""
    from frontload.model import HybridForCausalLM, preset
    from frontload.model.kernels import select

    device = "cpu" if smoke else "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    found = select("auto")
    peak = _matmul_tflops(device, 256 if smoke else 8192)
    tiny = preset("tiny", chunk_size=32)
    peer_shape = tiny if smoke else preset("1b", **GPU_SHAPE)
    one_b = tiny if smoke else preset("1b")
    short, long_ = (64, 128) if smoke else (4096, 8192)
    result = {
        "device": "cpu (smoke)" if smoke else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "kernels": found.describe(device),
        "measured_bf16_matmul_tflops": round(peak, 1),
        "fused_vs_torch_bf16": _mixer_paths(device, smoke, steps),
        "peer_shape_866m": [
            _train_throughput(peer_shape, batch, short, steps, device, False, peak)
            for batch in (1, 4)
        ],
        "mfu_1b_8k": [
            _train_throughput(one_b, 1, long_, steps, device, compiled, peak)
            for compiled in ((False,) if smoke else (False, True))
        ],
    }
    model = HybridForCausalLM(one_b).to(device).eval()
    result["decode_tokens_per_s_1b"] = {
        f"{context}_cache": round(_decode_tokens_per_s(model, context, 8 if smoke else 64, True), 1)
        for context in ((32, 64) if smoke else (1024, 4096))
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(CPU_SHAPES), choices=list(CPU_SHAPES))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--gpu", action="store_true", help="the GPU suite (benchmarks/gpu.sh)")
    parser.add_argument("--cpu-smoke", action="store_true", help="run the --gpu code on CPU, tiny")
    parser.add_argument(
        "--triton-interpret",
        action="store_true",
        help="compare mamba_ssm's Triton scan (CPU interpreter) with ours; see triton_interpret_check",
    )
    parser.add_argument(
        "--triton-interpret-fused",
        action="store_true",
        help="compare mamba_ssm's fused gated norm and split-conv-scan (CPU interpreter) with ours",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    if args.triton_interpret:
        result = triton_interpret_check()
    elif args.triton_interpret_fused:
        result = fused_interpret_check()
    elif args.gpu or args.cpu_smoke:
        result = gpu_suite(args.cpu_smoke, 1 if args.cpu_smoke else max(args.steps, 5))
    else:
        torch.set_num_threads(args.threads)
        result = {
            "machine": "CPU",
            "threads": args.threads,
            "cpu": cpu_benchmark(args.presets, args.steps, args.warmup),
            "tiny_decode_tokens_per_s": cpu_decode(),
        }
    print(json.dumps(result, indent=2, default=lambda v: None if math.isnan(v) else v))


if __name__ == "__main__":
    main()
