"""What `fl run LOOP.yaml` prints at the end (and writes to loop.txt and signal.json).

Stage times; the signal-to-noise of every metric and source across the sweep's design points, and
of the SFT phase alone (points sharing a pretraining allocation: only their SFT data differs); the
fit's table; the study's four findings on the design's study arms; the verify table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from frontload.allocate.ladder import format_ladder
from frontload.allocate.model import load_model
from frontload.allocate.verify import format_table
from frontload.evaluate import metrics as eval_metrics
from frontload.study.findings import judge_findings
from frontload.study.report import eval_values, published_rows
from frontload.workspace import Workspace

SFT_MEASURABLE = 2.0  # the SFT phase's signal-to-noise below which the loop says it cannot see it
METRICS = ("bpb", "answer_logprob", "score")


def run_values(ws: Workspace, eval_run: str) -> dict[str, dict[str, float]]:
    """metric -> source (each task, and `avg` over the run's tasks) -> value of one evaluation."""
    path = ws.evals_dir / eval_run / "summary.json"
    if not path.is_file():
        return {}
    out: dict[str, dict[str, float]] = {}
    for row in json.loads(path.read_text()):
        for metric in METRICS:
            if row.get(metric) is not None:
                out.setdefault(metric, {})[row["task"]] = float(row[metric])
    for values in out.values():
        values["avg"] = sum(values.values()) / len(values)
    return out


def sweep_signal(ws: Workspace, rows: list[dict]) -> dict[str, Any]:
    """From the sweep's experiments rows (one per run and category): per metric and source, the
    signal-to-noise across design points, and the SFT phase's (within pretraining allocations)."""
    runs = {r["run"]: r for r in rows}
    across: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    within: dict[tuple[str, str], dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for row in runs.values():
        for metric, by_source in run_values(ws, row["eval"].split(",")[0]).items():
            for source, value in by_source.items():
                across[metric, source][row["point"]].append(value)
                within[metric, source][row["pretrain"]][row["point"]].append(value)
    table = []
    for (metric, source), per_point in sorted(across.items()):
        table.append(
            {
                "metric": metric,
                "source": source,
                "points": len(per_point),
                "seeds": max(len(v) for v in per_point.values()),
                "snr": eval_metrics.signal_to_noise(per_point),
                "sft_snr": eval_metrics.within_group_signal_to_noise(within[metric, source]),
                "sft_groups": sum(1 for g in within[metric, source].values() if len(g) > 1),
            }
        )
    return {"rows": table}


def sft_verdict(signal: dict[str, Any], metric: str) -> str:
    """One line: the SFT phase's signal-to-noise on the fit metric, and whether it is measurable."""
    row = next((r for r in signal["rows"] if r["metric"] == metric and r["source"] == "avg"), None)
    if row is None or row["sft_snr"] is None:
        return (
            "SFT phase: not measurable (no two design points share a pretraining allocation "
            "with two seeds)"
        )
    snr = row["sft_snr"]
    if snr >= SFT_MEASURABLE:
        return (
            f"SFT phase: signal-to-noise {snr:.2f} on {metric} (>= {SFT_MEASURABLE:g}: SFT choices "
            f"move the metric by more than reseeding, over {row['sft_groups']} pretraining groups)"
        )
    return (
        f"SFT phase: signal-to-noise {snr:.2f} on {metric} < {SFT_MEASURABLE:g}: the SFT phase is "
        "not measurable at this budget (its effects are within the seed noise)"
    )


def signal_lines(signal: dict[str, Any]) -> list[str]:
    lines = [f"  {'metric':<16}{'source':<10}{'points':>7}{'seeds':>6}{'all':>8}{'SFT':>8}"]
    for r in signal["rows"]:
        snr = "-" if r["snr"] is None else f"{r['snr']:.2f}"
        sft = "-" if r["sft_snr"] is None else f"{r['sft_snr']:.2f}"
        lines.append(
            f"  {r['metric']:<16}{r['source']:<10}{r['points']:>7}{r['seeds']:>6}{snr:>8}{sft:>8}"
        )
    return lines


def fit_lines(model_path) -> list[str]:
    """The fit's ladder (every rung out of fold, the best rung, the paired verdicts) as the model
    file records it."""

    fitted = load_model(model_path)
    return [format_ladder(fitted.ladder)] if fitted.ladder is not None else []


def findings_lines(loop) -> list[str]:

    cfg = loop.config.report
    judged = judge_findings(
        loop.models,
        lambda run: eval_values(loop.ws, run),
        published_rows(),
        metric=cfg.metric,
        category=cfg.category,
        level=cfg.level,
    )
    lines = [f"findings on the design's study arms ({cfg.metric}, {cfg.category}, paired):"]
    for finding in judged:
        result = next(r for r in finding["results"] if r["primary"])
        if result["diff"] is None:
            lines.append(f"  {finding['id']}. not run")
            continue
        interval = (
            "" if result["low"] is None else f" [{result['low']:+.4f}, {result['high']:+.4f}]"
        )
        lines.append(
            f"  {finding['id']}. {result['diff']:+.4f}{interval} n={result['n']}  "
            f"{result['verdict']}  (study 8B {finding['paper']:+.2f})"
        )
    return lines


def loop_report(loop) -> str:
    """The loop's closing report (see module doc); writes signal.json beside it."""
    done_before = set(loop.state.skipped) - set(loop.state.ran)  # not the shared ones
    lines = [
        f"loop {loop.config.name}: ran {len(loop.state.ran)} stages, "
        f"skipped {len(done_before)} up to date"
    ]
    lines += [f"  {stage:<9}{seconds:8.1f} s" for stage, seconds in loop.timings.items()]
    metric = loop.config.fit.metric
    if (loop.folder / "design" / "sweep.yaml").is_file():
        signal = sweep_signal(loop.ws, loop.sweep_rows(metric))
        (loop.folder / "signal.json").write_text(json.dumps(signal, indent=2))
        lines.append("signal-to-noise over the sweep (all points; SFT: within pretraining groups):")
        lines += signal_lines(signal)
        lines.append(sft_verdict(signal, metric))
    model = loop.folder / "model.yaml"
    if model.is_file():
        lines += fit_lines(model)
    if loop.models:
        lines += findings_lines(loop)
    if loop.verify_result is not None:
        lines.append(format_table(loop.verify_result))
    return "\n".join(lines)
