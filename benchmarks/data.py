"""Data stage benchmarks: tokenize throughput vs a bare `encode_batch` loop, loader throughput,
and loader memory against corpus size. Prints JSON.

Each measurement runs in its own process so the tokenizer's thread pool can be pinned
(RAYON_NUM_THREADS) and peak RSS is per measurement. `--docs` scales the corpus.

    python benchmarks/data.py --docs 50000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYLLABLES = [
    "ka",
    "to",
    "ri",
    "men",
    "sa",
    "lo",
    "ve",
    "nu",
    "the",
    "and",
    "of",
    "in",
    "is",
    "to",
    "pro",
    "of",
    "ing",
    "tion",
    "ly",
    "er",
]


def _make_texts(docs: int, seed: int = 0) -> list[str]:
    """Zipf-ish pseudo-words with digits and punctuation: realistic merge statistics."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))) for _ in range(5000)]
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    texts = []
    for _ in range(docs):
        words = rng.choices(vocab, weights=weights, k=rng.randint(40, 200))
        for _ in range(len(words) // 15):
            words[rng.randrange(len(words))] = rng.choice([str(rng.randint(0, 9999)), ".", ",\n"])
        texts.append(" ".join(words))
    return texts


def _prepare(root: Path, docs: int) -> None:
    """Corpus `bench` (RECORD_SCHEMA, 4 files) and a 16k tokenizer in workspace `root`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from frontload.curate.schema import RECORD_SCHEMA
    from frontload.data.tokenizer import train_tokenizer
    from frontload.workspace import Workspace

    ws = Workspace.resolve(root).ensure()
    texts = _make_texts(docs)
    train_tokenizer(texts[:5000], 16384, ws.tokenizer_dir)
    folder = ws.corpus_dir("bench")
    folder.mkdir(parents=True)
    per_file = -(-docs // 4)
    for index in range(4):
        chunk = texts[index * per_file : (index + 1) * per_file]
        rows = [
            {
                **dict.fromkeys(RECORD_SCHEMA.names),
                "id": str(i),
                "source": "b",
                "domain": "g",
                "text": t,
            }
            for i, t in enumerate(chunk)
        ]
        table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
        pq.write_table(table, folder / f"part-{index:05d}.parquet", row_group_size=2_000)


def _child(argv: list[str], threads: int | None = None) -> dict:
    env = dict(os.environ)
    if threads is not None:
        env["RAYON_NUM_THREADS"] = str(threads)
    out = subprocess.run(
        [sys.executable, __file__, *argv], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _clock() -> tuple[float, float]:
    """Wall time and CPU time of this process, its threads and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    return time.perf_counter(), cpu


def _rates(tokens: int, start: tuple[float, float]) -> dict:
    wall, cpu = (now - then for now, then in zip(_clock(), start, strict=True))
    return {
        "tokens": tokens,
        "seconds": wall,
        "tokens_per_s": tokens / wall,
        "cpu_seconds": cpu,
        "tokens_per_cpu_s": tokens / cpu,
    }


def child_bare(root: Path) -> dict:
    """The peer: `encode_batch_fast` over the same texts, already in memory, batches of 1024."""
    import pyarrow.parquet as pq

    from frontload.data.tokenizer import load_tokenizer
    from frontload.workspace import Workspace

    ws = Workspace.resolve(root)
    texts = [
        t
        for f in sorted(ws.corpus_dir("bench").glob("*.parquet"))
        for t in pq.read_table(f)["text"].to_pylist()
    ]
    backend = load_tokenizer(ws.tokenizer_dir).backend_tokenizer
    start = _clock()
    tokens = 0
    for i in range(0, len(texts), 1024):
        tokens += sum(
            len(e.ids)
            for e in backend.encode_batch_fast(texts[i : i + 1024], add_special_tokens=False)
        )
    return _rates(tokens, start)


def child_tokenize(root: Path, workers: int) -> dict:
    """`tokenize_corpus` end to end (parquet read, encode, shard write) into a fresh tokens/."""
    from frontload.data.tokenize import tokenize_corpus
    from frontload.data.tokenizer import load_tokenizer
    from frontload.workspace import Workspace

    ws = Workspace.resolve(root)
    shutil.rmtree(ws.tokens_dir, ignore_errors=True)
    start = time.perf_counter()
    load_tokenizer(ws.tokenizer_dir)  # imports transformers: a fixed cost the peer does not time
    startup = time.perf_counter() - start
    start = _clock()
    manifest = tokenize_corpus(
        ws, "bench", ws.tokenizer_dir, workers=workers, rows_per_shard=5000, progress=False
    )
    tokens = manifest["tokens"] - manifest["documents"]  # EOS is not text the peer encodes
    return {**_rates(tokens, start), "workers": workers, "startup_seconds_not_timed": startup}


def child_loader(root: Path, seq_len: int, batch: int, seconds: float) -> dict:
    """Tokens/s served by a two-source Blend (packing, labels, seq_idx), one process."""
    from frontload.data.blend import Blend, BlendSource
    from frontload.workspace import Workspace

    ws = Workspace.resolve(root)
    path = ws.tokens_dir / "bench"
    blend = Blend([BlendSource(path, weight=0.7), BlendSource(path, weight=0.3)], seq_len, seed=0)
    blend.next_batch(batch)
    start, served = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        served += blend.next_batch(batch)["input_ids"].size
    elapsed = time.perf_counter() - start
    return {"seq_len": seq_len, "batch": batch, "tokens_per_s": served / elapsed}


def _rss_mb() -> dict[str, float]:
    """Resident memory split into heap (anonymous) and mapped file pages (page cache, reclaimable)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def child_memory(folder: Path, batches: int) -> dict:
    """Resident memory growth from opening a blend and serving `batches` batches of 8 x 2048."""
    import numpy as np

    from frontload.data.blend import Blend, BlendSource

    base = _rss_mb()
    blend = Blend([BlendSource(folder, weight=1)], 2048, seed=0)
    opened = _rss_mb()
    for _ in range(batches):
        blend.next_batch(8)
    served = _rss_mb()
    dataset = blend.datasets[0]
    itemsize = np.dtype(dataset.manifest["dtype"]).itemsize
    return {
        "corpus_tokens": dataset.num_tokens,
        "documents": dataset.num_documents,
        "corpus_mb": round(dataset.num_tokens * itemsize / 2**20, 1),
        "heap_growth_open_mb": round(opened["RssAnon"] - base["RssAnon"], 1),
        "heap_growth_total_mb": round(served["RssAnon"] - base["RssAnon"], 1),
        "mapped_file_pages_mb": round(served["RssFile"] - base["RssFile"], 1),
    }


def _write_synthetic(folder: Path, tokens: int) -> None:
    """A token dataset of random ids (uint16), documents of ~500 tokens, in 8 shards."""
    import numpy as np

    from frontload.data.shards import FORMAT_VERSION, ShardWriter, atomic_write_json

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    shards = []
    for index in range(8):
        writer = ShardWriter(folder, f"shard-{index:05d}", np.dtype("<u2"), with_mask=False)
        left = tokens // 8
        while left > 0:
            chunk = min(left, 4_000_000)
            lengths = rng.integers(100, 900, size=chunk // 500 + 1)
            lengths = lengths[np.cumsum(lengths) <= chunk]
            writer.append(rng.integers(0, 16384, size=int(lengths.sum())), lengths, None)
            left -= int(lengths.sum()) if lengths.size else left
        shards.append(writer.close({"tokenizer_hash": "synthetic", "format": FORMAT_VERSION}))
    manifest = {
        "name": folder.name,
        "tokens": sum(s["tokens"] for s in shards),
        "documents": sum(s["documents"] for s in shards),
        "dtype": "uint16",
        "tokenizer_hash": "synthetic",
        "field": "text",
        "shards": shards,
    }
    atomic_write_json(folder / "manifest.json", manifest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=50_000, help="documents in the tokenize corpus")
    parser.add_argument(
        "--memory-tokens", type=int, default=25_000_000, help="smallest memory-test corpus"
    )
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats, best kept")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        root = Path(args.root)
        result = {
            "bare": lambda: child_bare(root),
            "tokenize": lambda: child_tokenize(root, args.workers),
            "loader": lambda: child_loader(root, 2048, 8, 5.0),
            "memory": lambda: child_memory(root, 200),
        }[args.child]()
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="fl-bench-data-") as tmp:
        root = Path(tmp) / "ws"
        _prepare(root, args.docs)
        ws = str(root)
        results: dict = {"docs": args.docs, "cpus": os.cpu_count()}
        runs: dict[str, list[dict]] = {"bare_all": [], "bare_one": [], "fl_1": [], "fl_2": []}
        for _ in range(args.repeats):  # interleaved, so load swings on the shared VM hit all alike
            runs["bare_all"].append(_child(["--child", "bare", "--root", ws]))
            runs["fl_1"].append(_child(["--child", "tokenize", "--root", ws, "--workers", "1"]))
            runs["bare_one"].append(_child(["--child", "bare", "--root", ws], threads=1))
            runs["fl_2"].append(_child(["--child", "tokenize", "--root", ws, "--workers", "2"]))
        best = {key: max(values, key=lambda r: r["tokens_per_s"]) for key, values in runs.items()}
        cpu = {key: max(r["tokens_per_cpu_s"] for r in values) for key, values in runs.items()}
        results["tokenize"] = {
            **best,
            "fl_1_vs_bare_all_threads_wall": best["fl_1"]["tokens_per_s"]
            / best["bare_all"]["tokens_per_s"],
            "fl_2_per_worker_vs_bare_1_thread_wall": best["fl_2"]["tokens_per_s"]
            / 2
            / best["bare_one"]["tokens_per_s"],
            "fl_1_vs_bare_per_cpu_second": cpu["fl_1"] / cpu["bare_all"],
            "fl_2_vs_bare_per_cpu_second": cpu["fl_2"] / cpu["bare_one"],
        }
        results["loader"] = _child(["--child", "loader", "--root", ws])
        memory = []
        for scale in (1, 4):
            folder = Path(tmp) / f"synthetic-{scale}"
            _write_synthetic(folder, args.memory_tokens * scale)
            memory.append(_child(["--child", "memory", "--root", str(folder)]))
            shutil.rmtree(folder)
        results["loader_memory"] = memory
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
