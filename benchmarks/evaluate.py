"""Evaluation benchmarks: math-grading fidelity and throughput, fl against plain Math-Verify used
the way lighteval uses it (on the fidelity suite built from the answer keys); code grading through
the sandbox (HumanEval canonical solutions, judged in a separate process); the sandbox's overhead
per program against a bare `python -c` and, in the same run, against the sandbox at an earlier git
ref; evalplus MBPP+ reference solutions against their plus tests (when an MbppPlus.jsonl is given). Prints JSON. Reads the benchmark
files from --data-dir, else $FL_BENCH_DIR, else the files shipped with fl.

    .venv/bin/python benchmarks/evaluate.py [--data-dir DIR] [--per-file 40]
        [--limit 40] [--workers 2] [--repeats 10] [--mbpp-plus MbppPlus.jsonl]
        [--baseline-ref 5a12b07] [--only sandbox]
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

from frontload.evaluate.tasks import get_task
from frontload.evaluate.tasks.files import load_task_records
from frontload.evaluate.tasks.sources import BenchFiles
from frontload.grading.sandbox import run_program, run_programs, run_tests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.evaluate.fidelity import (  # noqa: E402  (the suite lives with the tests)
    build_cases,
    gold_answers,
    grade_with_fl,
    grade_with_math_verify,
    solution_cases,
    tally,
)


def _rates(counts: dict[str, dict[str, int]]) -> dict:
    positives = sum(c["cases"] for k, c in counts.items() if not k.startswith("near"))
    negatives = sum(c["cases"] for k, c in counts.items() if k.startswith("near"))
    fn = sum(c["fn"] for c in counts.values())
    fp = sum(c["fp"] for c in counts.values())
    return {
        "false_negative_rate": round(fn / max(1, positives), 4),
        "false_positive_rate": round(fp / max(1, negatives), 4),
        "fn": fn,
        "fp": fp,
    }


def fidelity(data_dir: BenchFiles, per_file: int, workers: int, solutions: bool = False) -> dict:
    """The fidelity suite graded by fl (extraction + fast path + Math-Verify pool) and by plain
    Math-Verify in-process (lighteval's extraction configs), with cases/s for each. With
    `solutions`, worked MATH-500/GSM8K solutions against their answers instead."""
    if solutions:
        cases = solution_cases(data_dir, per_file)
    else:
        cases = build_cases(gold_answers(data_dir, per_file))
    grade_with_fl(cases[:2], workers=workers)  # start the warm pool outside the timing
    start = time.perf_counter()
    ours = grade_with_fl(cases, workers=workers)
    ours_s = time.perf_counter() - start
    logging.disable(logging.WARNING)
    grade_with_math_verify(cases[:2])  # imports outside the timing
    start = time.perf_counter()
    peer = grade_with_math_verify(cases)
    peer_s = time.perf_counter() - start
    ours_counts, peer_counts = tally(cases, ours), tally(cases, peer)
    disagreements = [
        {"category": c.category, "response": c.response[-80:], "gold": c.gold, "fl": a, "mv": b}
        for c, a, b in zip(cases, ours, peer, strict=True)
        if a != b
    ]
    return {
        "cases": len(cases),
        "golds_per_file": per_file,
        "fl": {**_rates(ours_counts), "cases_per_s": round(len(cases) / ours_s, 1)},
        "math_verify": {**_rates(peer_counts), "cases_per_s": round(len(cases) / peer_s, 1)},
        "per_category": {
            name: {"fl": ours_counts[name], "math_verify": peer_counts[name]}
            for name in ours_counts
        },
        "disagreements": disagreements[:40],
    }


def code_throughput(
    data_dir: Path, limit: int, workers: int, baseline_ref: str | None = None
) -> dict:
    """HumanEval canonical solutions through the sandbox pool (judge + candidate processes); with
    `baseline_ref`, also through the sandbox at that git ref, alternating passes in one run."""
    import tempfile

    task = get_task("humaneval")
    _, records = load_task_records(task, data_dir)
    records = records[:limit]
    samples = task.build(records, "base", None, data_dir)
    jobs = [task.job(s, r["canonical_solution"])[0] for s, r in zip(samples, records, strict=True)]
    passes = {"ours": lambda: run_programs(jobs, workers=workers)}
    with tempfile.TemporaryDirectory() as folder:
        if baseline_ref:
            old = load_baseline(baseline_ref, Path(folder))
            old_jobs = [
                old.Job(
                    j.source, tests=j.tests, entry=j.entry, limits=old.Limits(j.limits.timeout_s)
                )
                for j in jobs
            ]
            passes["baseline"] = lambda: old.run_programs(old_jobs, workers=workers)
        seconds: dict[str, list[float]] = {name: [] for name in passes}
        passed: dict[str, int] = {}
        for _ in range(2 if baseline_ref else 1):  # alternating, so load drift hits both
            for name, run in passes.items():
                start = time.perf_counter()
                results = run()
                seconds[name].append(time.perf_counter() - start)
                passed[name] = sum(r.verdict == "passed" for r in results)
    report = {
        "programs": len(jobs),
        "passed": passed["ours"],
        "programs_per_s": round(len(jobs) / statistics.mean(seconds["ours"]), 2),
    }
    if baseline_ref:
        report.update(
            baseline_ref=baseline_ref,
            baseline_passed=passed["baseline"],
            baseline_programs_per_s=round(len(jobs) / statistics.mean(seconds["baseline"]), 2),
            seconds_vs_baseline=round(
                statistics.mean(seconds["ours"]) / statistics.mean(seconds["baseline"]), 2
            ),
        )
    return report


def mbpp_plus(path: Path | None, limit: int, workers: int) -> dict:
    """evalplus MBPP+ reference solutions against base + plus inputs (expected outputs from the
    reference itself, as evalplus does): pass rate, programs/s and the problems that fail."""
    if path is None or not path.is_file():
        return {"status": "no MbppPlus.jsonl given (not available offline here)"}
    task = get_task("mbpp_plus")
    records = task.load(None, str(path))[:limit]
    samples = task.build(records, "base", None, None)
    start = time.perf_counter()
    graded = task.grade(samples, [r["canonical_solution"] for r in records], workers=workers)
    seconds = time.perf_counter() - start
    return {
        "problems": len(samples),
        "pass_rate": round(sum(g.correct for g in graded) / max(1, len(graded)), 4),
        "programs_per_s": round(len(samples) / seconds, 2),
        "failures": [
            {"task": s.id, "verdict": g.verdict, "detail": g.detail[:160]}
            for s, g in zip(samples, graded, strict=True)
            if not g.correct
        ],
    }


def _median_ms(action, repeats: int) -> float:
    action()
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        walls.append(time.perf_counter() - start)
    return round(1000 * statistics.median(walls), 1)


BASELINE_REF = "5a12b07"  # main before issue 22: code_exec.py + sandbox_boot.py
BASELINE_PATHS = ("src/frontload/grading", "src/frontload/evaluate")  # where they lived


def load_baseline(ref: str, folder: Path):
    """The sandbox as it was at git `ref` (code_exec.py and sandbox_boot.py), as a module of its
    own in `folder`, so today's and that code run in the same process, on the same load."""
    import importlib

    repo = Path(__file__).resolve().parents[1]
    for where in BASELINE_PATHS:
        shown = [
            subprocess.run(
                ["git", "-C", str(repo), "show", f"{ref}:{where}/{name}"],
                capture_output=True,
                text=True,
            )
            for name in ("code_exec.py", "sandbox_boot.py")
        ]
        if all(done.returncode == 0 for done in shown):
            break
    else:
        raise SystemExit(f"no code_exec.py/sandbox_boot.py at {ref}")
    package = folder / "fl_baseline_sandbox"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = where.replace("src/", "").replace("/", ".") + ".sandbox_boot"
    code = shown[0].stdout.replace(module, "fl_baseline_sandbox.sandbox_boot")
    (package / "code_exec.py").write_text(code)
    (package / "sandbox_boot.py").write_text(shown[1].stdout)
    sys.path.insert(0, str(folder))
    return importlib.import_module("fl_baseline_sandbox.code_exec")


def sandbox_overhead(repeats: int, baseline_ref: str | None = BASELINE_REF) -> dict:
    """Median wall time of a trivial program: sandboxed stdin/stdout program and judged tests,
    against a bare `python -c` subprocess (the peer) and, in the same run with the runs
    interleaved, against the sandbox as it was at `baseline_ref` (today's code must stay within
    1.5x of it)."""
    import tempfile

    from frontload.grading.sandbox import isolation_summary

    program_source, tests = "print(1)", ("def f(x):\n    return x\n", "assert f(1) == 1\n")
    runs = {
        "bare": lambda: subprocess.run(
            [sys.executable, "-c", "print(1)"], capture_output=True, check=True
        ),
        "program": lambda: run_program(program_source),
        "judged": lambda: run_tests(*tests),
    }
    with tempfile.TemporaryDirectory() as folder:
        if baseline_ref:
            old = load_baseline(baseline_ref, Path(folder))
            runs["baseline_program"] = lambda: old.run_program(program_source)
            runs["baseline_judged"] = lambda: old.run_tests(*tests)
        for action in runs.values():
            action()  # probes, caches and imports outside the timing
        walls: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeats):  # interleaved: a change of load hits both the same
            for name, action in runs.items():
                start = time.perf_counter()
                action()
                walls[name].append(time.perf_counter() - start)
    ms = {name: round(1000 * statistics.median(w), 1) for name, w in walls.items()}
    report = {
        "repeats": repeats,
        "peer_bare_subprocess_ms": ms["bare"],
        "sandboxed_program_ms": ms["program"],
        "sandboxed_judged_tests_ms": ms["judged"],
        "program_vs_bare": round(ms["program"] / ms["bare"], 2),
        "layers": isolation_summary(),
    }
    if baseline_ref:
        report.update(
            baseline_ref=baseline_ref,
            baseline_program_ms=ms["baseline_program"],
            baseline_judged_tests_ms=ms["baseline_judged"],
            program_vs_baseline=round(ms["program"] / ms["baseline_program"], 2),
            judged_vs_baseline=round(ms["judged"] / ms["baseline_judged"], 2),
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-file", type=int, default=40, help="gold answers per answer key")
    parser.add_argument("--limit", type=int, default=40, help="programs per code benchmark")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--mbpp-plus", type=Path, default=None, help="an evalplus MbppPlus.jsonl")
    parser.add_argument("--solutions", type=int, default=200, help="worked solutions per file")
    parser.add_argument(
        "--baseline-ref",
        default=BASELINE_REF,
        help="git ref of the sandbox to compare with in the same run ('' for none)",
    )
    parser.add_argument("--only", choices=("fidelity", "solutions", "code", "sandbox", "mbpp_plus"))
    args = parser.parse_args()
    data_dir = BenchFiles.for_run(args.data_dir)  # then $FL_BENCH_DIR, then the shipped files
    sections = {
        "fidelity": lambda: fidelity(data_dir, args.per_file, args.workers),
        "solutions": lambda: fidelity(data_dir, args.solutions, args.workers, solutions=True),
        "code": lambda: code_throughput(
            data_dir, args.limit, args.workers, args.baseline_ref or None
        ),
        "sandbox": lambda: sandbox_overhead(args.repeats, args.baseline_ref or None),
        "mbpp_plus": lambda: mbpp_plus(args.mbpp_plus, args.limit, args.workers),
    }
    report: dict = {"workers": args.workers}
    for name, run in sections.items():
        if args.only in (None, name):
            report[name] = run()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
