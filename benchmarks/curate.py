"""Throughput and memory of `fl curate run` against a hand-written datatrove pipeline with the same
steps, in the same run, on generated dumps (records/s, MB/s, peak RSS of the process tree).

    python benchmarks/curate.py --records 50000,200000 --workers 2
    python benchmarks/curate.py --signature --records 10000 --repeats 2
    python benchmarks/curate.py --records 5000 --tasks 4 --workers 2 --peer-max 0 --ray

Prints JSON. `peer` builds the same datatrove steps by hand, without frontload's orchestration
(recipe validation, mapping checks, run ids, stats collection, publishing, catalog refresh).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.curate.helpers import sample_recipe  # noqa: E402


def measure(command: list[str]) -> dict:
    """Wall time and peak RSS (sum over the process tree, sampled every 0.2 s)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, stop = [0], threading.Event()

    def sample() -> None:
        parent = psutil.Process(process.pid)
        while not stop.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            stop.wait(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, err = process.communicate()
    stop.set()
    watcher.join()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{err.decode()[-3000:]}")
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak[0] / 2**20}


def peer(recipe_path: str, workspace: str) -> None:
    """The same steps as `fl curate run`, wired by hand on datatrove's LocalPipelineExecutor."""
    from datatrove.executor.local import LocalPipelineExecutor

    from frontload.curate import dedup
    from frontload.curate.clean import CleanFilter
    from frontload.curate.decontam import DecontamFilter, build_index
    from frontload.curate.length import ensure_tokenizer
    from frontload.curate.length_step import length_steps
    from frontload.curate.readers import resolve_sources
    from frontload.curate.recipe import load_recipe
    from frontload.curate.steps import Normalise, RecordWriter, SourceReader, StagedReader
    from frontload.workspace import Workspace

    recipe = load_recipe(recipe_path)
    ws = Workspace.resolve(workspace).ensure()
    work, tasks, workers = ws.root / "peer", recipe.executor.tasks, recipe.executor.workers
    files = resolve_sources(recipe.sources, ws.root)
    work.mkdir(parents=True)
    build_index(recipe.decontam, ws.root).save(work / "index.npz")
    tokenizer = ensure_tokenizer(recipe.length, ws, [])  # the benchmark pre-trains it
    near, removed = recipe.near_dedup, work / "removed"

    def run(name, steps, count):
        LocalPipelineExecutor(
            steps, tasks=count, workers=min(workers, count), logging_dir=str(work / "logs" / name)
        ).run()

    run("ingest", [SourceReader(files, removed / "malformed"), Normalise(recipe.normalise),
                   CleanFilter(recipe.clean, RecordWriter(removed / "clean", "clean")),
                   RecordWriter(work / "a"), dedup.exact_signature(work / "es")], tasks)  # fmt: skip
    run("exact", [dedup.exact_find(work / "es", work / "ed")], 1)
    run("near", [StagedReader(work / "a"),
                 dedup.exact_filter(work / "ed", RecordWriter(removed / "exact", "exact")),
                 RecordWriter(work / "b"), dedup.near_signature(work / "ms", near)], tasks)  # fmt: skip
    run("buckets", [dedup.near_buckets(work / "ms", work / "mb", near)], near.num_buckets)
    run("clusters", [dedup.near_cluster(work / "mb", work / "mc", near, filter_tasks=tasks)], 1)
    run("final", [StagedReader(work / "b"),
                  dedup.near_filter(work / "mc", RecordWriter(removed / "near", "near")),
                  dedup.ClusterLabel(),
                  DecontamFilter(work / "index.npz", recipe.decontam.action,
                                 RecordWriter(removed / "decontam", "decontam")),
                  *length_steps(recipe.length, ws, tokenizer),
                  RecordWriter(work / "pool")], tasks)  # fmt: skip


def prepare(folder: Path, records: int, tasks: int, workers: int) -> tuple[Path, int]:
    """Generate the dump and the recipe; returns the recipe path and the dump's size in bytes."""
    from frontload.quickstart.sample import generate_sample

    sample = folder / "sample"
    generate_sample(sample, records=records, seed=11)
    recipe = sample_recipe(sample, tasks=tasks, workers=workers)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    size = sum(p.stat().st_size for p in sample.glob("*.*") if p.is_file())
    return path, size


def bench_size(
    records: int, tasks: int, workers: int, repeats: int, with_peer: bool, with_ray: bool = False
) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"fl-bench-{records}-"))
    try:
        recipe, size = prepare(folder, records, tasks, workers)
        on_ray = folder / "recipe-ray.yaml"  # the same recipe on a local Ray cluster
        ray_recipe = yaml.safe_load(recipe.read_text())
        ray_recipe["executor"].update(kind="ray", ray={"mem_per_cpu_gb": 0.5})
        on_ray.write_text(yaml.safe_dump(ray_recipe, sort_keys=False))
        python = sys.executable
        # Both sides count tokens with the same tokenizer, trained once up front.
        warm = folder / "tokenizer-ws"
        subprocess.run(
            [python, "-c", "from frontload.curate.length import ensure_tokenizer as e;"
             "from frontload.curate.stages import sample_texts;"
             "from frontload.curate.readers import resolve_sources as r;"
             "from frontload.curate.recipe import load_recipe as l;"
             "from frontload.workspace import Workspace as W;"
             f"c=l('{recipe}');w=W.resolve('{warm}').ensure();"
             "e(c.length,w,sample_texts(r(c.sources,w.root),c.length.sample_records))"],
            check=True,
        )  # fmt: skip
        sides = ("fl", "peer") if with_peer else ("fl",)
        sides += ("ray",) if with_ray else ()
        runs: dict[str, list[dict]] = {name: [] for name in sides}
        for repeat in range(repeats):
            for name in sides if repeat % 2 == 0 else sides[::-1]:
                ws = folder / f"ws-{name}-{repeat}"
                shutil.copytree(warm / "tokenizer", ws / "tokenizer")
                if name in ("fl", "ray"):
                    path = on_ray if name == "ray" else recipe
                    command = [python, "-m", "frontload.cli", "curate", "run", str(path)]
                    command += ["-w", str(ws)]
                else:
                    command = [python, __file__, "--peer", str(recipe), str(ws)]
                runs[name].append(measure(command))
        best = {name: min(r["seconds"] for r in items) for name, items in runs.items()}
        rss = {name: max(r["peak_rss_mb"] for r in items) for name, items in runs.items()}
        result = {
            "records": records,
            "input_mb": round(size / 2**20, 1),
            "fl_seconds": round(best["fl"], 1),
            "fl_records_per_s": round(records / best["fl"], 1),
            "fl_mb_per_s": round(size / 2**20 / best["fl"], 3),
            "fl_peak_rss_mb": round(rss["fl"], 1),
            "runs": runs,
        }
        if with_ray:
            result["ray_seconds"] = round(best["ray"], 1)
            result["ray_records_per_s"] = round(records / best["ray"], 1)
        if with_peer:
            result["peer_seconds"] = round(best["peer"], 1)
            result["overhead"] = round(best["fl"] / best["peer"] - 1, 3)
            result["peer_peak_rss_mb"] = round(rss["peer"], 1)
        print(json.dumps(result), file=sys.stderr, flush=True)
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_read_formats(rows: int, repeats: int = 3) -> dict:
    """Read throughput (rows, records and MB per second through the reader and field mapping) of
    the ShareGPT `conversations` path and the `explode` path (4 generations per row, `<think>`
    traces split off) against the plain question/answer reader, on synthetic dumps of `rows`
    rows of the same arithmetic reasoning (~1.2 kB per trace)."""
    from frontload.curate.readers import resolve_sources
    from frontload.curate.recipe import SourceConfig
    from frontload.curate.steps import SourceReader

    def reasoning(i: int) -> str:
        return " ".join(f"step {k}: {i} plus {k} is {i + k}." for k in range(40))

    def qa(i: int) -> dict:
        return {"question": f"What is {i} plus 40?", "answer": f"{reasoning(i)}\n#### {i + 40}"}

    def conversations(i: int) -> dict:
        answer = f"<|begin_of_thought|>\n{reasoning(i)}\n<|end_of_thought|>\n\n"
        answer += f"<|begin_of_solution|>\n{i + 40}\n<|end_of_solution|>"
        turns = [{"from": "user", "value": f"What is {i} plus 40?"}]
        return {
            "system": "Think first.",
            "conversations": turns + [{"from": "assistant", "value": answer}],
        }

    def explode(i: int) -> dict:
        generations = [f"<think>\n{reasoning(i + g)}\n</think>\n\n{i + 40}" for g in range(4)]
        return {"problem": f"What is {i} plus 40?", "answer": str(i + 40), "uuid": str(i),
                "generations": generations, "correctness_math_verify": [True, False, True, True]}  # fmt: skip

    cases = {"question_answer": (qa, "gsm8k"), "conversations": (conversations, "openthoughts"),
             "explode": (explode, "openr1_math")}  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="fl-bench-read-"))
    results = {}
    try:
        for name, (make, preset) in cases.items():
            path = folder / f"{name}.jsonl"
            path.write_text("".join(json.dumps(make(i)) + "\n" for i in range(rows)))
            files = resolve_sources([SourceConfig(name=name, path=str(path), preset=preset)], None)
            seconds = float("inf")
            for _ in range(repeats):  # best of `repeats`: the machine is shared
                start = time.perf_counter()
                records = sum(1 for _ in SourceReader(files, folder / "malformed").run(None, 0, 1))
                seconds = min(seconds, time.perf_counter() - start)
            mb = path.stat().st_size / 2**20
            results[name] = {"rows": rows, "records": records, "input_mb": round(mb, 1),
                             "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
                             "records_per_s": round(records / seconds),
                             "mb_per_s": round(mb / seconds, 1)}  # fmt: skip
        plain = results["question_answer"]["mb_per_s"]
        for result in results.values():
            result["mb_per_s_vs_question_answer"] = round(result["mb_per_s"] / plain, 2)
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def signature_texts(bench: Path, records: int) -> dict[str, list[str]]:
    """Real GSM8K train problems (question + answer) when the shared files are there, and pool-like
    texts from a generated dump."""
    from frontload.curate.readers import iter_raw, map_record, resolve_sources
    from frontload.curate.recipe import load_recipe

    sets: dict[str, list[str]] = {}
    gsm8k = bench / "gsm8k_train.jsonl"
    if gsm8k.exists():
        rows = map(json.loads, gsm8k.read_text().splitlines())
        sets["gsm8k_train"] = [f"{row['question']}\n\n{row['answer']}" for row in rows]
    folder = Path(tempfile.mkdtemp(prefix="fl-sig-"))
    try:
        recipe = load_recipe(prepare(folder, records, 1, 1)[0])
        texts = []
        for file in resolve_sources(recipe.sources, folder):
            for _, raw in iter_raw(file):
                if isinstance(raw, dict):
                    with contextlib.suppress(ValueError):
                        texts.append(map_record(raw, file.source.mapping())["text"])
        sets["generated"] = texts
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return sets


def bench_signatures(bench: Path, records: int, repeats: int) -> list[dict]:
    """CPU seconds of fl's MinHash signature step and datatrove's stock one on the same texts, in
    the same process, alternating; MB/s per core = text MB / CPU seconds of the step's run."""
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    from frontload.curate import dedup
    from frontload.curate.recipe import NearDedupConfig

    near = NearDedupConfig()
    stock_config = MinhashConfig(
        n_grams=near.n_grams,
        num_buckets=near.num_buckets,
        hashes_per_bucket=near.hashes_per_bucket,
        # datatrove 0.10.1's default xxhash fails on the str shingles its own step passes it
        hash_config=HashConfig(hash_fc="sha1", precision=64),
    )
    results = []
    for name, texts in signature_texts(bench, records).items():
        size = sum(len(text.encode()) for text in texts) / 2**20
        seconds: dict[str, list[float]] = {"fl": [], "datatrove": []}
        for repeat in range(repeats):
            for side in ("fl", "datatrove") if repeat % 2 == 0 else ("datatrove", "fl"):
                folder = Path(tempfile.mkdtemp(prefix="fl-sig-run-"))
                if side == "fl":
                    step = dedup.near_signature(folder, near)
                else:
                    step = MinhashDedupSignature(output_folder=str(folder), config=stock_config)
                docs = [Document(text=text, id=str(i)) for i, text in enumerate(texts)]
                start = time.process_time()
                deque(step.run(iter(docs)) or (), maxlen=0)  # both steps run eagerly
                seconds[side].append(time.process_time() - start)
                shutil.rmtree(folder, ignore_errors=True)
        best = {side: min(values) for side, values in seconds.items()}
        row = {
            "texts": name,
            "records": len(texts),
            "mb": round(size, 2),
            "fl_mb_per_s_per_core": round(size / best["fl"], 2),
            "datatrove_mb_per_s_per_core": round(size / best["datatrove"], 2),
            "speedup": round(best["datatrove"] / best["fl"], 1),
            "cpu_seconds": seconds,
        }
        print(json.dumps(row), file=sys.stderr, flush=True)
        results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", default="5000", help="comma-separated dump sizes")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="runs per side (alternating)")
    parser.add_argument(
        "--peer-max", type=int, default=10**9, help="run the peer only up to this size"
    )
    parser.add_argument("--peer", nargs=2, metavar=("RECIPE", "WORKSPACE"), help=argparse.SUPPRESS)
    parser.add_argument("--read-formats", type=int, metavar="ROWS", help="reader throughput only")

    parser.add_argument(
        "--signature",
        action="store_true",
        help="only the MinHash signature step: fl vs datatrove's stock step, MB/s per core",
    )
    parser.add_argument(
        "--ray", action="store_true", help="also run on a local Ray cluster (executor.kind: ray)"
    )
    parser.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "data" / "bench")
    args = parser.parse_args()
    if args.read_formats:
        result = bench_read_formats(args.read_formats, max(args.repeats, 3))
        print(json.dumps({"machine": "2-core shared CPU VM", "read_formats": result}, indent=1))
        return
    if args.peer:
        peer(*args.peer)
        return
    if args.signature:
        results = bench_signatures(args.bench, int(args.records.split(",")[0]), args.repeats)
        print(json.dumps({"machine": "2-core shared CPU VM", "signature": results}, indent=1))
        return
    results = [
        bench_size(
            int(n), args.tasks, args.workers, args.repeats, int(n) <= args.peer_max, args.ray
        )
        for n in args.records.split(",")
    ]
    print(json.dumps({"machine": "2-core shared CPU VM", "results": results}, indent=1))


if __name__ == "__main__":
    main()
