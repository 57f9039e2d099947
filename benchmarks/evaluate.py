"""Evaluation benchmarks: math grading throughput (fast path and Math-Verify pool), code grading
throughput (sandbox pool), and the sandbox's overhead per program against a bare subprocess.
Prints JSON. Needs the benchmark files (../shared/data/bench or --data-dir).

    .venv/bin/python benchmarks/evaluate.py [--limit 200] [--workers 2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

from frontload.evaluate.code_exec import Job, run_program, run_programs
from frontload.evaluate.extract import extract_answer
from frontload.evaluate.grade import grade_math_batch
from frontload.evaluate.runner import default_data_dir
from frontload.evaluate.tasks import get_task


def math_throughput(data_dir: Path, limit: int, workers: int) -> dict:
    """MATH-500 reference solutions: extraction + fast path, then the same answers forced
    through Math-Verify (wrapped in braces), against Math-Verify called in-process (the peer)."""
    task = get_task("math500")
    records = task.load(data_dir)[:limit]
    start = time.perf_counter()
    pairs = [(extract_answer(r["solution"]).answer, r["answer"]) for r in records]
    fast = grade_math_batch(pairs, workers=workers)
    fast_s = time.perf_counter() - start
    forced = [(f"{{{answer}}}", reference) for answer, reference in pairs]
    start = time.perf_counter()
    grade_math_batch([("{x}", "y")] * workers, workers=workers)  # start the warm pool
    startup_s = time.perf_counter() - start
    start = time.perf_counter()
    pooled = grade_math_batch(forced, workers=workers)
    pool_s = time.perf_counter() - start
    from frontload.evaluate.mv_worker import equivalent

    logging.disable(logging.WARNING)
    equivalent("1", "1")  # imports, outside the timing
    start = time.perf_counter()
    [equivalent(p, r) for p, r in forced]
    inline_s = time.perf_counter() - start
    return {
        "items": len(pairs),
        "fast_path_per_s": round(len(pairs) / fast_s, 1),
        "fast_path_correct": sum(fast),
        "pool_startup_s": round(startup_s, 2),
        "math_verify_pool_per_s": round(len(pairs) / pool_s, 1),
        "math_verify_pool_correct": sum(pooled),
        "peer_math_verify_inline_per_s": round(len(pairs) / inline_s, 1),
        "pool_vs_inline": round(inline_s / pool_s, 2),
    }


def code_throughput(data_dir: Path, limit: int, workers: int) -> dict:
    """HumanEval canonical solutions through the sandbox pool."""
    task = get_task("humaneval")
    records = task.load(data_dir)[:limit]
    samples = task.build(records, "base", None, data_dir)
    programs = [
        task.program(s, r["canonical_solution"])[0] for s, r in zip(samples, records, strict=True)
    ]
    start = time.perf_counter()
    results = run_programs([Job(p) for p in programs], workers=workers)
    seconds = time.perf_counter() - start
    return {
        "programs": len(programs),
        "passed": sum(r.verdict == "passed" for r in results),
        "programs_per_s": round(len(programs) / seconds, 1),
    }


def sandbox_overhead(repeats: int) -> dict:
    """Mean wall time of a trivial program: sandboxed vs a bare `python -c` subprocess (the peer)."""
    source = "print(1)"
    run_program(source)
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_program(source)
        walls.append(time.perf_counter() - start)
    bare = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", source], capture_output=True, check=True)
        bare.append(time.perf_counter() - start)
    sandboxed, plain = statistics.median(walls), statistics.median(bare)
    return {
        "repeats": repeats,
        "sandboxed_ms": round(1000 * sandboxed, 1),
        "peer_bare_subprocess_ms": round(1000 * plain, 1),
        "ratio": round(sandboxed / plain, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=200, help="items per benchmark")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or default_data_dir()
    if data_dir is None:
        sys.exit("benchmark files not found: pass --data-dir")
    report = {
        "workers": args.workers,
        "math": math_throughput(data_dir, args.limit, args.workers),
        "code": code_throughput(data_dir, args.limit, args.workers),
        "sandbox": sandbox_overhead(args.repeats),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
