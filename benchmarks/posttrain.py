"""Post-training throughput: SFT tokens/s and GRPO rollouts/s through our TRL wiring, for our tiny
hybrid model against transformers' NemotronHForCausalLM of the same shape and weights.

    python benchmarks/posttrain.py                  # tiny preset, 30 SFT steps, 5 GRPO steps
    python benchmarks/posttrain.py --sft-steps 4 --rl-steps 2

Both models run the same `frontload.train.posttrain.sft.sft` / `frontload.train.posttrain.rl.rl` functions (TRL
SFTTrainer with packing, GRPOTrainer with the math reward) on a toy arithmetic corpus, one after
the other in the same process. Rates use the trainer's own train_runtime (setup excluded).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_corpus(folder: Path, n: int, seed: int) -> list[str]:
    from frontload.curate.schema import RECORD_SCHEMA

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        prompt, response = f"What is {a}+{b}?", f"{a}+{b}={a + b}. The answer is {a + b}."
        rows.append(
            {"id": f"r{i}", "source": "toy", "domain": "math", "prompt": prompt}
            | {"response": response, "reference": str(a + b), "text": f"{prompt}\n{response}"}
        )
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    pq.write_table(table, folder / "part-00000.parquet")
    return [r["text"] for r in rows]


def build_models(ws, vocab_size: int) -> None:
    """runs/ours/hf (HybridForCausalLM, tiny preset) and runs/peer/hf (NemotronH, same weights)."""
    import torch

    from frontload.model import HybridForCausalLM, preset
    from frontload.model.convert import to_nemotron_h

    torch.manual_seed(0)
    ours = HybridForCausalLM(preset("tiny", vocab_size=vocab_size))
    ours.save_pretrained(str(ws.runs_dir / "ours" / "hf"))
    to_nemotron_h(ours).save_pretrained(str(ws.runs_dir / "peer" / "hf"))


def measure(ws, which: str, sft_steps: int, rl_steps: int, packing: bool) -> dict:
    from frontload.train.posttrain.recipe import RLRecipe, SFTRecipe
    from frontload.train.posttrain.rl import rl
    from frontload.train.posttrain.sft import sft

    model = f"runs/{which}/hf"
    recipe = SFTRecipe(
        name=f"sft_{which}_{'packed' if packing else 'padded'}",
        model=model,
        tokenizer="tokenizer",
        corpora=[{"name": "toy"}],
        eval_fraction=0.0,
        lr=1e-3,
        global_batch_size=4,
        micro_batch_size=4,
        max_length=512,
        max_steps=sft_steps,
        packing=packing,
        logging_steps=1,
        save_steps=10_000,
    )
    start = time.perf_counter()
    sft(recipe, ws, resume=False)
    sft_s = time.perf_counter() - start
    metrics = [json.loads(x) for x in (ws.runs_dir / recipe.name / "metrics.jsonl").open()]
    tokens = max(float(m.get("num_tokens", 0)) for m in metrics)
    sft_train_s = next(m["train_runtime"] for m in metrics if "train_runtime" in m)
    rl_recipe = RLRecipe(
        name=f"rl_{which}_{recipe.name}",
        model=model,
        tokenizer="tokenizer",
        prompts=["toy"],
        max_prompts=64,
        lr=1e-5,
        num_generations=8,
        prompts_per_step=2,
        micro_batch_size=16,
        max_completion_length=32,
        max_steps=rl_steps,
        save_steps=10_000,
    )
    start = time.perf_counter()
    rl(rl_recipe, ws, resume=False)
    rl_s = time.perf_counter() - start
    rl_metrics = [json.loads(x) for x in (ws.runs_dir / rl_recipe.name / "metrics.jsonl").open()]
    rl_train_s = next(m["train_runtime"] for m in rl_metrics if "train_runtime" in m)
    rollouts = rl_steps * rl_recipe.prompts_per_step * rl_recipe.num_generations
    return {
        "sft_call_seconds": round(sft_s, 2),
        "sft_train_seconds": round(sft_train_s, 2),
        "sft_tokens": tokens,
        "sft_tokens_per_s": round(tokens / sft_train_s, 1),
        "rl_call_seconds": round(rl_s, 2),
        "rl_train_seconds": round(rl_train_s, 2),
        "rl_rollouts": rollouts,
        "rl_rollouts_per_s": round(rollouts / rl_train_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--rl-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from frontload.data.tokenizer import train_tokenizer
    from frontload.workspace import Workspace

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.resolve(Path(tmp) / "ws").ensure()
        texts = write_corpus(ws.corpus_dir("toy"), 400, seed=0)
        train_tokenizer(texts * 3, vocab_size=512, out_dir=ws.tokenizer_dir)
        build_models(ws, vocab_size=512)
        # transformers' NemotronH cannot keep packed documents apart without mamba_ssm (CUDA), so
        # the like-for-like comparison is padded batches; ours is also measured packed.
        results = {
            "ours_padded": measure(ws, "ours", args.sft_steps, args.rl_steps, packing=False),
            "peer_padded": measure(ws, "peer", args.sft_steps, args.rl_steps, packing=False),
            "ours_packed": measure(ws, "ours", args.sft_steps, args.rl_steps, packing=True),
        }
    ratio = {
        key: round(results["ours_padded"][key] / results["peer_padded"][key], 3)
        for key in ("sft_tokens_per_s", "rl_rollouts_per_s")
    }
    print(
        json.dumps(
            {
                "preset": "tiny",
                "device": "cpu",
                "threads": args.threads,
                **results,
                "ours_over_peer": ratio,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
