"""Pretraining throughput and FSDP correctness, with transformers' NemotronHForCausalLM in a plain
loop as the peer (same shape, same batch, same run). Prints JSON.

CPU (default): the tiny preset, steps/s and tokens/s of `frontload.train.pretrain` vs the peer, and
2-process FSDP2 (gloo) vs 1 process on the same global batch.
GPU (`--gpu`): the 866M shape of shared/docs/gpu.md and the 1b preset at 8192 context: tokens/s, MFU,
kernels, peak memory, batch and sequence length, for the trainer and for the peer.

    python benchmarks/pretrain.py --steps 20
    python benchmarks/pretrain.py --gpu --steps 12 [--compile]
    python benchmarks/pretrain.py --layouts --steps 10 --seq-len 128
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# gpu.md's 866M peer shape: the 1b preset (d_model 2048, FFN 8192, 16/8 heads, Mamba 64 x 64,
# state 128) with 24 layers instead of 26.
SHAPE_866M = {"layer_pattern": "M-M-M*-M-M-M*-M-M-M*-M-M-"}


def write_tokens(root: Path, vocab: int, tokens: int, seed: int = 0) -> None:
    """A synthetic token dataset `tokens/general` (Zipf ids, documents of 50-2000 tokens)."""
    from frontload.data.shards import FORMAT_VERSION, ShardWriter, atomic_write_json, token_dtype

    rng = np.random.default_rng(seed)
    folder = root / "tokens" / "general"
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.minimum(rng.zipf(1.2, tokens), vocab - 1).astype(np.int64)
    lengths = []
    left = tokens
    while left > 0:
        lengths.append(min(left, int(rng.integers(50, 2000))))
        left -= lengths[-1]
    dtype = token_dtype(vocab)
    writer = ShardWriter(folder, "shard-00000", dtype, with_mask=False)
    writer.append(ids, np.asarray(lengths), None)
    meta = writer.close({"tokenizer_hash": "synthetic", "format": FORMAT_VERSION})
    atomic_write_json(
        folder / "manifest.json",
        {
            "name": "general",
            "tokens": meta["tokens"],
            "documents": meta["documents"],
            "dtype": dtype.name,
            "vocab_size": vocab,
            "tokenizer_hash": "synthetic",
            "format": FORMAT_VERSION,
            "shards": [meta],
        },
    )


def make_recipe(name, preset, overrides, seq_len, micro, accum, steps, world=1, compile_=False):
    from frontload.train.recipe import PretrainRecipe

    batch = seq_len * micro * accum * world
    return PretrainRecipe.model_validate(
        {
            "name": name,
            "model": {"preset": preset, "overrides": overrides},
            "data": {"general": "general", "validation_tokens": 0},
            "seq_len": seq_len,
            "global_batch_tokens": batch,
            "micro_batch_size": micro,
            "total_tokens": batch * steps,
            "schedule": {"warmup_fraction": 0.1},
            "checkpoint": {"interval_steps": 10**9},
            "log": {"interval_steps": 1},
            "parallel": {"compile": compile_},
        }
    )


def trainer_throughput(recipe, workspace, warmup: int) -> dict:
    """Run the trainer; tokens/s over the steps after `warmup` (compile, allocator, first save)."""
    from frontload.train.metrics import read_metrics
    from frontload.train.pretrain import pretrain

    start = time.perf_counter()
    run = pretrain(recipe, workspace)
    wall = time.perf_counter() - start
    rows = [row for row in read_metrics(run) if row["kind"] == "train"]
    timed = rows[warmup:]
    seconds = timed[-1]["time"] - rows[warmup - 1]["time"] if warmup else wall
    tokens = recipe.global_batch_tokens * len(timed)
    return {
        "steps_per_s": len(timed) / seconds,
        "tokens_per_s": tokens / seconds,
        "mfu": timed[-1].get("mfu"),
        "final_loss": rows[-1]["loss"],
        "wall_s_including_setup": wall,
        "losses": [row["loss"] for row in rows],
    }


def peer_throughput(config, seq_len, micro, accum, steps, warmup, device, bf16) -> dict:
    """transformers' NemotronHForCausalLM, AdamW, a plain loop over random tokens."""
    import torch
    from transformers import NemotronHForCausalLM

    from frontload.model.nemotron import to_nemotron_h_config

    torch.manual_seed(0)
    model = NemotronHForCausalLM(to_nemotron_h_config(config)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    generator = torch.Generator().manual_seed(0)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        for _ in range(accum):
            ids = torch.randint(0, config.vocab_size, (micro, seq_len), generator=generator)
            ids = ids.to(device)
            with autocast:
                loss = model(input_ids=ids, labels=ids, use_cache=False).loss / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = sum(times[warmup:])
    tokens = seq_len * micro * accum * (steps - warmup)
    out = {"tokens_per_s": tokens / seconds, "steps_per_s": (steps - warmup) / seconds}
    if device.type == "cuda":
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def fsdp_check(recipe_path: Path, workspace_root: Path) -> dict:
    """2 processes (torchrun, gloo) on the same recipe as 1 process: per-step losses compared."""
    from frontload.train.metrics import read_metrics

    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            "-m",
            "frontload.train.pretrain",
            str(recipe_path),
            f"--workspace={workspace_root}",
        ],
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - start
    rows = read_metrics(workspace_root / "runs" / "fsdp2")
    return {"losses": [row["loss"] for row in rows if row["kind"] == "train"], "wall_s": wall}


def run_cpu(args) -> dict:
    import torch

    from frontload.config import dump_yaml
    from frontload.model import preset
    from frontload.workspace import Workspace

    torch.set_num_threads(1)  # the trainer's CPU default (recipe cpu_threads); same for the peer
    root = Path(tempfile.mkdtemp(prefix="fl-bench-pretrain-"))
    write_tokens(root, vocab=512, tokens=2_000_000)
    workspace = Workspace.resolve(root)
    seq_len, micro, accum = args.seq_len, 4, 2
    ours = trainer_throughput(
        make_recipe("tiny", "tiny", {}, seq_len, micro, accum, args.steps), workspace, warmup=2
    )
    peer = peer_throughput(
        preset("tiny", max_position_embeddings=seq_len),
        seq_len,
        micro,
        accum,
        args.steps,
        2,
        torch.device("cpu"),
        bf16=False,
    )
    result = {
        "machine": "2-core CPU VM shared with other jobs (timings are noisy)",
        "shape": "tiny preset",
        "batch": {"seq_len": seq_len, "micro_batch": micro, "grad_accum": accum},
        "frontload": {k: v for k, v in ours.items() if k != "losses"},
        "peer_nemotron_h": peer,
        "speedup_vs_peer": ours["tokens_per_s"] / peer["tokens_per_s"],
    }
    if not args.skip_fsdp:
        check = make_recipe("fsdp1", "tiny", {}, seq_len, 2, 2, 4, world=2)
        one = trainer_throughput(check, workspace, warmup=0)["losses"]
        path = root / "fsdp2.yaml"
        dump_yaml(check.model_copy(update={"name": "fsdp2"}), path)
        two = fsdp_check(path, root)
        diff = max(abs(a - b) / abs(a) for a, b in zip(one, two["losses"], strict=True))
        result["fsdp_gloo_2proc"] = {
            "losses_1proc": one,
            "losses_2proc": two["losses"],
            "max_rel_diff": diff,
            "same_loss": diff < 1e-5,
        }
    return result


def layout_tokens_per_s(run: Path, batch_tokens: int, warmup: int) -> dict:
    """Tokens/s over the logged steps after `warmup` (start-up and the first steps excluded)."""
    from frontload.train.metrics import read_metrics

    rows = [row for row in read_metrics(run) if row["kind"] == "train"]
    seconds = rows[-1]["time"] - rows[warmup - 1]["time"]
    return {
        "tokens_per_s": batch_tokens * (len(rows) - warmup) / seconds,
        "losses": [row["loss"] for row in rows],
    }


def run_layouts(args) -> dict:
    """Same recipe and global batch on 1 process, 1 node x 2 processes (FSDP, `--nproc 2`) and
    2 "nodes" x 1 process (HSDP, two `fl train pretrain --nnodes 2` on localhost, gloo)."""
    import socket

    from frontload.config import dump_yaml
    from frontload.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="fl-bench-layouts-"))
    write_tokens(root, vocab=512, tokens=2_000_000)
    workspace = Workspace.resolve(root)
    seq_len, micro, warmup = args.seq_len, 2, 2
    base = make_recipe("one", "tiny", {}, seq_len, micro, 2, args.steps, world=2)
    batch = base.global_batch_tokens
    fl = [sys.executable, "-m", "frontload.cli", "train", "pretrain"]
    results = {}
    start = time.perf_counter()
    run = trainer_throughput(base, workspace, warmup)
    results["1 process"] = {"tokens_per_s": run["tokens_per_s"], "losses": run["losses"]}
    results["1 process"]["wall_s"] = time.perf_counter() - start
    for name, parallel in (("1x2", {}), ("2x1", {"strategy": "hsdp"})):
        recipe = base.model_copy(update={"name": name}, deep=True)
        recipe.parallel = recipe.parallel.model_copy(update=parallel)
        path = root / f"{name}.yaml"
        dump_yaml(recipe, path)
        start = time.perf_counter()
        if name == "1x2":
            subprocess.run([*fl, str(path), "--nproc", "2", "-w", str(root)], check=True)
        else:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            nodes = [
                subprocess.Popen(
                    [*fl, str(path), "--nnodes", "2", "--node-rank", str(rank), "--nproc", "1"]
                    + ["--rdzv-endpoint", f"127.0.0.1:{port}", "-w", str(root)]
                )
                for rank in range(2)
            ]
            assert all(node.wait() == 0 for node in nodes)
        results[name] = layout_tokens_per_s(root / "runs" / name, batch, warmup)
        results[name]["wall_s"] = time.perf_counter() - start
    return {
        "machine": "2-core CPU VM shared with other jobs (timings are noisy)",
        "shape": "tiny preset",
        "batch": {"seq_len": seq_len, "global_batch_tokens": batch, "steps": args.steps},
        "layouts": results,
    }


def run_gpu(args) -> dict:
    import torch

    from frontload.model import preset
    from frontload.model.kernels import kernels
    from frontload.workspace import Workspace

    device = torch.device("cuda")
    root = Path(tempfile.mkdtemp(prefix="fl-bench-pretrain-"))
    write_tokens(root, vocab=32768, tokens=50_000_000)
    workspace = Workspace.resolve(root)
    results = {"device": torch.cuda.get_device_name(), "kernels": kernels().describe(device)}
    cases = [
        ("866m", "1b", SHAPE_866M, 4096, 4, 1),
        ("1b@8192", "1b", {}, 8192, 2, 1),
    ]
    for name, base, overrides, seq_len, micro, accum in cases:
        overrides = {**overrides, "max_position_embeddings": seq_len}
        torch.cuda.reset_peak_memory_stats()
        recipe = make_recipe(
            name.replace("@", "-"),
            base,
            overrides,
            seq_len,
            micro,
            accum,
            args.steps,
            compile_=args.compile,
        )
        ours = trainer_throughput(recipe, workspace, warmup=3)
        ours["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        ours.pop("losses")
        case = {"batch": {"seq_len": seq_len, "micro_batch": micro, "grad_accum": accum}}
        case["frontload"] = ours
        if not args.skip_peer:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            config = preset(base, **overrides)
            try:
                peer = peer_throughput(config, seq_len, micro, accum, 5, 2, device, bf16=True)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                peer = peer_throughput(config, seq_len, 1, accum, 5, 2, device, bf16=True)
                peer["note"] = f"out of memory at micro batch {micro}; measured at 1"
            case["peer_nemotron_h"] = peer
            case["speedup_vs_peer"] = ours["tokens_per_s"] / peer["tokens_per_s"]
        results[name] = case
        torch.cuda.empty_cache()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpu", action="store_true", help="H200 mode: 866M and 1b@8192")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per measurement")
    parser.add_argument("--seq-len", type=int, default=256, help="CPU mode sequence length")
    parser.add_argument("--compile", action="store_true", help="GPU: torch.compile each block")
    parser.add_argument("--skip-fsdp", action="store_true", help="CPU: no 2-process check")
    parser.add_argument("--skip-peer", action="store_true", help="GPU: no NemotronH peer")
    parser.add_argument(
        "--layouts", action="store_true", help="CPU: tokens/s at 1 vs 1x2 vs 2x1 processes"
    )
    args = parser.parse_args()
    if args.layouts:
        print(json.dumps(run_layouts(args), indent=2))
        return
    result = run_gpu(args) if args.gpu else run_cpu(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
