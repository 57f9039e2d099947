"""Quality scoring + token counting throughput vs bare fastText / tokenizers loops, and corpus
rebuild time from a synthetic pool. Prints JSON.

    python benchmarks/scoring.py --records 20000 --pool 200000

Per core: the tokenizers thread pool is pinned to one thread (RAYON_RS_NUM_CPUS=1) and DuckDB to
one thread for the rebuild, so the figures are per core on a shared machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_RS_NUM_CPUS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "at",
    "this",
    "are",
    "from",
    "we",
    "let",
    "x",
    "y",
    "n",
    "sum",
    "product",
    "prime",
    "integer",
    "equation",
    "solve",
    "therefore",
    "hence",
    "answer",
    "boxed",
    "total",
    "value",
    "step",
    "def",
    "return",
    "import",
    "class",
    "function",
    "list",
    "loop",
    "energy",
    "force",
    "mass",
    "velocity",
    "cell",
    "protein",
]


def synth(count: int, seed: int = 0) -> list[dict]:
    """Records with ~50-word prompts and 100-1500-word responses (reasoning-like lengths)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        prompt = " ".join(rng.choices(WORDS, k=rng.randint(20, 80)))
        lines = [" ".join(rng.choices(WORDS, k=12)) for _ in range(rng.randint(8, 120))]
        response = "\n".join(lines)
        kind = ("diverse", "curated", "general")[i % 3]
        out.append(
            {
                "id": f"r{i}",
                "text": f"{prompt}\n\n{response}",
                "prompt": prompt,
                "response": response,
                "tags": [kind],
                "domain": "math",
            }
        )
    return out


def timed(functions: dict, repeats: int = 3) -> dict[str, dict[str, float]]:
    """Best wall and CPU seconds of each function, runs interleaved so load changes hit all alike."""
    best = {name: {"wall": float("inf"), "cpu": float("inf")} for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            best[name]["wall"] = min(best[name]["wall"], time.perf_counter() - wall)
            best[name]["cpu"] = min(best[name]["cpu"], time.process_time() - cpu)
    return best


def scoring(records: int, batch: int, work: Path) -> dict:
    from datatrove.data import Document

    from frontload.curate.length import TokenCounter, ensure_tokenizer
    from frontload.curate.length_step import length_steps
    from frontload.curate.quality import Scorer, train_classifier
    from frontload.curate.quality_step import quality_steps
    from frontload.curate.recipe import LengthConfig, QualityConfig, QualityTrainConfig
    from frontload.workspace import Workspace

    workspace = Workspace.resolve(work / "ws").ensure()
    data = synth(records)
    texts = [r["text"] for r in data]
    train_classifier(
        [r["text"] for r in data[1::3][:3000]],
        [r["text"] for r in data[0::3][:3000]],
        workspace.models_dir / "quality.bin",
        QualityTrainConfig(epochs=2),
    )
    tokenizer = ensure_tokenizer(LengthConfig(vocab_size=8192), workspace, iter(texts[:5000]))
    model = Scorer.load(workspace.models_dir / "quality.bin").model
    bare_tok = TokenCounter(tokenizer).tokenizer

    def bare_fasttext():
        for i in range(0, records, batch):
            model.predict([t.replace("\n", " ") for t in texts[i : i + batch]], k=2)

    responses = [r["response"] for r in data]

    def bare_tokenizers():
        for i in range(0, records, batch):
            bare_tok.encode_batch_fast(
                texts[i : i + batch] + responses[i : i + batch], add_special_tokens=False
            )

    config = QualityConfig(
        model=workspace.models_dir / "quality.bin", batch_size=batch, verify=False
    )
    steps = quality_steps(config, workspace)
    steps += length_steps(LengthConfig(batch_size=batch), workspace, tokenizer)

    def ours():
        docs = (
            Document(
                text=r["text"], id=r["id"], metadata={"response": r["response"], "tags": r["tags"]}
            )
            for r in data
        )
        for step in steps:
            docs = step.run(docs)
        for _ in docs:
            pass

    def documents_only():
        for r in data:
            Document(
                text=r["text"], id=r["id"], metadata={"response": r["response"], "tags": r["tags"]}
            )

    times = timed(
        {
            "bare_fasttext": bare_fasttext,
            "bare_tokenizers": bare_tokenizers,
            "steps": ours,
            "document_creation": documents_only,
        }
    )
    tokens = sum(len(e.ids) for e in bare_tok.encode_batch_fast(texts, add_special_tokens=False))
    result = {"records": records, "tokens": tokens, "batch_size": batch}
    for clock in ("cpu", "wall"):
        bare = times["bare_fasttext"][clock] + times["bare_tokenizers"][clock]
        ours_s = times["steps"][clock]
        result[clock] = {
            **{f"{name}_s": round(t[clock], 3) for name, t in times.items()},
            "overhead": round(ours_s / bare - 1, 3),
            "steps_records_per_s": round(records / ours_s),
            "steps_tokens_per_s": round(tokens / ours_s),
            "bare_records_per_s": round(records / bare),
            "bare_tokens_per_s": round(tokens / bare),
        }
    return result


def write_pool(count: int, folder: Path, parts: int = 8) -> None:
    """A synthetic pool in RECORD_SCHEMA: three tag groups, lengths up to ~10k answer tokens."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from frontload.curate.schema import RECORD_SCHEMA

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = np.array(WORDS)
    step = count // parts
    for part in range(parts):
        n = step
        base = part * step
        kinds = np.array(["diverse", "curated", "general"])[(np.arange(base, base + n)) % 3]
        answer = np.where(kinds == "curated", rng.integers(500, 12000, n), rng.integers(20, 900, n))
        answer = np.where(kinds == "general", 0, answer).astype(np.int32)
        quality = np.where(kinds == "curated", rng.uniform(0.4, 1, n), rng.uniform(0, 0.6, n))
        words = vocabulary[rng.integers(0, len(vocabulary), (n, 30))]
        text = [" ".join(row) for row in words]
        domains = np.array(["math", "code", "science", "general"])[rng.integers(0, 4, n)]
        table = pa.table(
            {
                "id": [f"p{base + i:08d}" for i in range(n)],
                "source": [f"{k}_src" for k in kinds],
                "domain": domains,
                "tags": [[k] for k in kinds],
                "prompt": text,
                "response": text,
                "reference": [None] * n,
                "text": text,
                "messages": [None] * n,
                "quality": quality.astype(np.float32),
                "answer_tokens": answer,
                "total_tokens": (answer + 40).astype(np.int32),
                "dup_cluster": [None if i % 5 else f"c{i % 1000}" for i in range(base, base + n)],
                "contaminated": [["gsm8k"] if i % 97 == 0 else [] for i in range(base, base + n)],
                "verified": [None if i % 2 else bool(i % 3) for i in range(base, base + n)],
            },
            schema=RECORD_SCHEMA,
        )
        pq.write_table(table, folder / f"part-{part:05d}.parquet")


def rebuild(pool: int, work: Path) -> dict:
    from frontload.curate.corpora import CorporaConfig
    from frontload.curate.corpus_build import build_corpora
    from frontload.workspace import Workspace

    workspace = Workspace.resolve(work / "pool_ws").ensure()
    write_pool(pool, workspace.pool_dir)
    results = {}
    for threads in (1, 2):
        config = CorporaConfig(dalf_plus_fraction=0.5, threads=threads)
        start = time.perf_counter()
        manifests = build_corpora(config, workspace)
        results[f"rebuild_s_{threads}_threads"] = round(time.perf_counter() - start, 2)
    results["pool_records"] = pool
    results["corpus_records"] = {name: m["records"] for name, m in manifests.items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000, help="records to score")
    parser.add_argument("--batch", type=int, default=1024, help="records per batch")
    parser.add_argument("--pool", type=int, default=200_000, help="pool size for the rebuild")
    args = parser.parse_args()
    from loguru import logger

    logger.remove()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        result = {"scoring": scoring(args.records, args.batch, work)}
        if args.pool:
            result["corpus_rebuild"] = rebuild(args.pool, work)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
