"""The nano study and the nano loop: wall time per stage, metric signal-to-noise, decision accuracy.

    python benchmarks/loop.py run -w WS [--study recipes/nano/study.yaml] [--loop recipes/nano/loop.yaml]
            [--transfer recipes/micro/transfer.yaml --source NANO_WS]
        runs the pipeline files (resumable: stages already done are timed as skipped) and times
        every stage, grouped by kind (data, design, pretrain, sft, evaluate, fit, solve, verify),
        with the CPU-seconds of the process and its children and the load average before and
        after (the machine is shared: wall time alone says little);
    python benchmarks/loop.py transfer NANO_WS MICRO_WS
        the transfer figures (rank agreement with intervals, the findings at both scales) with the
        machine and the date;
    python benchmarks/loop.py measure -w WS
        on a workspace where runs finished: for each metric (accuracy, bits per byte, answer
        log-prob, choice probability) the signal-to-noise across arms (std of arm means over the
        mean std across seeds), and the out-of-fold decision accuracy of the structured model
        against the linear and log-linear baselines (nested CV, folds hold out whole points);
    python benchmarks/loop.py synthetic
        the same decision accuracies on runs drawn from a known model at several seed-noise levels
        (no training: checks that nested CV and the baselines behave);
    python benchmarks/loop.py ladder -w WS [--metric bpb] [--repeats 20] [--table CSV]
        the ladder of `fl allocate fit` on the workspace's runs, or on a saved experiments table
        such as the loop's own pipeline/<loop>/experiments.csv (every rung, estimates with 90%
        intervals, the best rung), with the fit's wall and CPU time, the machine and the date.

Prints JSON (one object per mode). Results and the machine go in benchmarks/results/loop.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

METRICS = ("score", "bpb", "answer_logprob", "choice_prob")
KINDS = ("sample", "curate", "tokenizer", "tokenize", "allocate", "design", "pretrain", "sft")
KINDS += ("rl", "evaluate", "fit", "solve")


def _kind(stage: str) -> str:
    for part in stage.split("/"):
        if part in KINDS:
            return part
    return stage.split("/")[0]


def cpu_seconds() -> float:
    """User + system time of this process and its finished children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine() -> dict:
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def run(args) -> dict:
    """Run the pipeline files with every StageState.run timed."""
    from frontload.study import pipeline
    from frontload.workspace import Workspace

    times: dict[str, dict[str, float]] = {}
    current: dict[str, float] = defaultdict(float)
    original = pipeline.StageState.run

    def timed(self, stage, key, work, outputs):
        start = time.perf_counter()
        try:
            return original(self, stage, key, work, outputs)
        finally:
            label = ("verify/" if stage.startswith("verify/") else "") + _kind(stage)
            current[label] += time.perf_counter() - start

    pipeline.StageState.run = timed
    ws = Workspace.resolve(args.workspace)
    out: dict = {"mode": "run", "seconds": times, "cpu_seconds": {}, "machine_before": machine()}
    for name, path in (("study", args.study), ("loop", args.loop), ("transfer", args.transfer)):
        if not path:
            continue
        current.clear()
        start, cpu = time.perf_counter(), cpu_seconds()
        if name == "study":
            pipeline.run_pipeline(path, ws)
        elif name == "loop":
            from frontload.study.sweep import run_loop

            print(run_loop(path, ws).summary(), file=sys.stderr)
        else:
            from frontload.study.transfer import run_transfer
            from frontload.study.transfer_report import format_transfer, transfer

            source = Workspace.resolve(args.source)
            run_transfer(path, ws, source)
            print(format_transfer(transfer(source, ws)), file=sys.stderr)
        times[name] = {k: round(v, 1) for k, v in current.items()}
        times[name]["total"] = round(time.perf_counter() - start, 1)
        out["cpu_seconds"][name] = round(cpu_seconds() - cpu, 1)
    out["machine_after"] = machine()
    return out


def transfer_figures(args) -> dict:
    """The transfer between two workspaces, as `fl report transfer` computes it."""
    from frontload.study.transfer_report import transfer
    from frontload.workspace import Workspace

    data = transfer(Workspace.resolve(args.nano), Workspace.resolve(args.micro))
    return {"mode": "transfer", "machine": machine(), **data}


def _snr(rows: list[dict]) -> dict:
    by_point: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row["category"] == "avg":
            by_point[row["point"]].append(float(row["score"]))
    means = [np.mean(v) for v in by_point.values()]
    noise = [np.std(v, ddof=1) for v in by_point.values() if len(v) > 1]
    spread = float(np.std(means, ddof=1)) if len(means) > 1 else float("nan")
    seed_sd = float(np.mean(noise)) if noise else float("nan")
    return {
        "arms": len(means),
        "spread_across_arms": spread,
        "spread_across_seeds": seed_sd,
        "snr": spread / seed_sd if seed_sd and seed_sd > 0 else float("nan"),
    }


def measure(args) -> dict:
    from frontload.allocate.crossval import check_signal, nested_cv, prepare
    from frontload.allocate.experiments import build_table, higher_is_better
    from frontload.allocate.pools import pools_from_workspace
    from frontload.allocate.rungs import ladder
    from frontload.errors import FrontloadError
    from frontload.workspace import Workspace

    ws = Workspace.resolve(args.workspace)
    out: dict = {"mode": "measure", "snr": {}, "decision_accuracy": {}}
    for metric in METRICS:
        try:
            rows = build_table(ws, metric)
        except FrontloadError as error:
            out["snr"][metric] = {"error": error.message}
            continue
        out["snr"][metric] = _snr(rows)
        avg = [r for r in rows if r["category"] == "avg"]
        names = sorted({c for r in avg for col in ("pretrain", "sft") for c in _names(r[col])})
        pools = pools_from_workspace({n: ws.corpus_dir(n) for n in names})
        data = prepare(avg, pools, 1.0 if higher_is_better(metric) else -1.0)
        try:
            check_signal(data, metric)
        except FrontloadError as error:
            out["decision_accuracy"][metric] = {"error": error.message}
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cv = nested_cv(data, ladder())
        out["decision_accuracy"][metric] = {f: r["scores"] for f, r in cv.items()}
    return out


def _names(cell: str) -> list[str]:
    from frontload.allocate.fit import parse_allocation

    return [c for a in parse_allocation(cell) for c in a]


def synthetic(args) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.allocate.test_loop_fit import GRID, known_runs

    from frontload.allocate.crossval import nested_cv, prepare
    from frontload.allocate.rungs import ladder

    out = {"mode": "synthetic", "points": args.points, "seeds": 2, "results": {}}
    for noise in (0.5, 2.0, 5.0):
        rows, truth, pools = known_runs(noise=noise, points=args.points)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cv = nested_cv(prepare(rows, pools, 1.0), ladder(GRID))
        out["results"][f"noise_sd_{noise}"] = {
            "true_spread_sd": float(np.std(truth)),
            **{f: {k: round(v, 3) for k, v in r["scores"].items()} for f, r in cv.items()},
            "seconds": round(time.perf_counter() - start, 1),
        }
    return out


def ladder_mode(args) -> dict:
    """`fl allocate fit --workspace`'s ladder, timed, with the machine and the date."""
    from frontload.allocate.experiments import build_table
    from frontload.allocate.fit import read_experiments
    from frontload.allocate.ladder import fit_runs
    from frontload.allocate.pools import pools_from_workspace
    from frontload.workspace import Workspace

    ws = Workspace.resolve(args.workspace)
    rows = read_experiments(args.table) if args.table else build_table(ws, args.metric)
    names = sorted({c for r in rows for col in ("pretrain", "sft") for c in _names(r[col])})
    pools = pools_from_workspace({n: ws.corpus_dir(n) for n in names})
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_runs(rows, pools, args.metric, bootstrap_draws=20, repeats=args.repeats)
    return {
        "mode": "ladder",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg()[0],
        "table": args.table or "catalog",
        "fit_seconds": {
            "wall": round(time.perf_counter() - wall, 1),
            "cpu": round(time.process_time() - cpu, 1),
        },
        "ladder": result.ladder.model_dump(mode="json"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("run")
    p.add_argument("-w", "--workspace", required=True)
    p.add_argument("--study")
    p.add_argument("--loop")
    p.add_argument("--transfer")
    p.add_argument("--source", help="the transfer's source workspace (the loop's)")
    p = sub.add_parser("transfer")
    p.add_argument("nano")
    p.add_argument("micro")
    p = sub.add_parser("measure")
    p.add_argument("-w", "--workspace", required=True)
    p = sub.add_parser("synthetic")
    p.add_argument("--points", type=int, default=16)
    p = sub.add_parser("ladder")
    p.add_argument("-w", "--workspace", required=True)
    p.add_argument("--metric", default="bpb")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--table", help="experiments CSV (default: built from the catalog)")
    args = parser.parse_args()
    modes = {"run": run, "measure": measure, "synthetic": synthetic, "ladder": ladder_mode}
    modes["transfer"] = transfer_figures
    result = modes[args.mode](args)
    print(json.dumps(_finite(result), indent=1))


def _finite(value):
    """NaN (no seeds to compare, no spread) as null, so the output stays valid JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value


if __name__ == "__main__":
    main()
