"""`fl report study RUN_DIR`: the study's tables (base, after SFT, after RL) for the user's runs,
next to the published numbers where the design matches (same pretraining arm, SFT data, stage),
and the study's four findings as paired differences across seeds with a verdict.

Scores are percentages; a category is the mean of its benchmarks, overall the mean of the
category means (design.md section 8). Next to accuracy each table shows gold-solution bits per
byte (bpb), the metric with signal at small scale. A model trained with several seeds is one row:
the mean over seeds and its standard error. The published rows come from the study's results.csv.
The terminal printers live here too, so `fl run`, `fl report study` and `make demo` print the same.
"""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from statistics import mean

from frontload.errors import StageNotReady
from frontload.evaluate import metrics as eval_metrics
from frontload.study.findings import judge_findings
from frontload.workspace import Workspace

CATEGORIES = {
    "base": ["math", "science", "code", "general"],
    "sft": ["math", "science", "code", "instruction"],
    "rl": ["math", "science", "code", "instruction"],
}
TITLES = {"base": "Base models", "sft": "After SFT", "rl": "After RL"}
# The study's post-training benchmarks by category (Table 3 reports benchmarks, not categories).
BENCHMARK_CATEGORY = {
    "gsm8k": "math",
    "math500": "math",
    "aime24": "math",
    "aime25": "math",
    "mmlu": "science",
    "mmlu_pro": "science",
    "gpqa_diamond": "science",
    "livecodebench": "code",
    "ifeval": "instruction",
}


def published_rows() -> list[dict]:
    """The study's published scores (shipped with the allocation prior)."""
    text = resources.files("frontload.allocate").joinpath("data/paper_results.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def published_match(model: dict, rows: list[dict]) -> dict[str, float]:
    """Category -> published score for the same arm, SFT data and stage (standard SFT budget)."""
    found: dict[str, float] = {}
    for row in rows:
        same = (
            row["stage"] == model["stage"]
            and row["pt_reasoning"] == model["pt_reasoning"]
            and row["sft_data"] == model["sft_data"]
            and int(row["rl"]) == model["rl"]
            and int(row["sft_scale"])
            == int(model.get("sft_scale", 0 if model["stage"] == "base" else 1))
        )
        if same:
            found.setdefault(row["category"], float(row["score"]))
    by_category: dict[str, list[float]] = {}
    for benchmark, score in found.items():
        if benchmark in BENCHMARK_CATEGORY:
            by_category.setdefault(BENCHMARK_CATEGORY[benchmark], []).append(score)
    for category, scores in by_category.items():
        found.setdefault(category, mean(scores))
    return found


def eval_values(workspace: Workspace, eval_run: str) -> dict[str, dict[str, float]]:
    """metric -> category (and `avg`) -> value for one evaluation run: accuracy as a percentage,
    likelihood metrics as they are (categories without the metric are left out). Each task's own
    value sits beside its category's under the task's name (`gsm8k`, `math500`): per source."""
    path = workspace.evals_dir / eval_run / "summary.json"
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text())
    out: dict[str, dict[str, float]] = {}
    for metric in ("score", *eval_metrics.LIKELIHOOD_METRICS):
        by_category: dict[str, list[float]] = {}
        for row in rows:
            value = row.get(metric)
            if value is not None:
                scale = 100.0 if metric == "score" else 1.0
                by_category.setdefault(row["category"], []).append(scale * float(value))
        values = {category: mean(v) for category, v in by_category.items()}
        if values:
            values["avg"] = mean(values.values())
            for row in rows:
                if row.get(metric) is not None and row["task"] not in values:
                    scale = 100.0 if metric == "score" else 1.0
                    values[row["task"]] = scale * float(row[metric])
            out[metric] = values
    return out


def load_models(folder: Path) -> list[dict]:
    models_path = folder / "models.json"
    if not models_path.is_file():
        raise StageNotReady(
            f"{folder} has no models.json", "run the pipeline first: fl run PIPELINE.yaml"
        )
    return json.loads(models_path.read_text())


def seed_stats(per_seed: list[dict[str, dict[str, float]]], metric: str) -> tuple[dict, dict]:
    """Mean and standard error over seeds of each category of one metric."""
    categories = sorted({c for values in per_seed for c in values.get(metric, {})})
    means, errors = {}, {}
    for category in categories:
        found = [v[metric][category] for v in per_seed if category in v.get(metric, {})]
        means[category], errors[category] = eval_metrics.mean_and_se(found)
    return means, errors


def study_tables(folder: Path, workspace: Workspace) -> dict[str, list[dict]]:
    """stage -> rows {model, seeds, ours, ours_se, bpb, bpb_se, paper}: one row per model, its
    seeds pooled (mean and standard error; `ours` is accuracy in percent by category)."""
    published = published_rows()
    grouped: dict[tuple[str, str], list[dict]] = {}
    for model in load_models(folder):
        grouped.setdefault((model["stage"], model["model"]), []).append(model)
    tables: dict[str, list[dict]] = {"base": [], "sft": [], "rl": []}
    for (stage, label), models in grouped.items():
        per_seed = [eval_values(workspace, m["eval"]) for m in models]
        ours, ours_se = seed_stats(per_seed, "score")
        bpb, bpb_se = seed_stats(per_seed, "bpb")
        tables[stage].append(
            {
                "model": label,
                "seeds": [m.get("seed") for m in models],
                "ours": ours,
                "ours_se": ours_se,
                "bpb": bpb,
                "bpb_se": bpb_se,
                "per_seed": per_seed,
                "paper": published_match(models[0], published),
            }
        )
    return {stage: rows for stage, rows in tables.items() if rows}


def sources(tables: dict[str, list[dict]], category: str) -> list[str]:
    """The category, then each of its benchmarks that the runs were evaluated on."""
    tasks = {
        key
        for models in tables.values()
        for model in models
        for values in model["per_seed"]
        for metric in values.values()
        for key in metric
        if BENCHMARK_CATEGORY.get(key) == category
    }
    return [category, *sorted(tasks)]


def noise_table(tables: dict[str, list[dict]], category: str) -> list[dict]:
    """Per stage, metric and source (the category, then each of its benchmarks): the spread of the
    arms, the seeds' standard error and their ratio (signal-to-noise; above 1 the metric separates
    arms by more than reseeding moves one)."""
    rows = []
    for stage, models in tables.items():
        for metric, source in (
            (m, s)
            for m in ("score", *eval_metrics.LIKELIHOOD_METRICS)
            for s in sources(tables, category)
        ):
            per_arm = {
                model["model"]: [
                    v[metric][source] for v in model["per_seed"] if source in v.get(metric, {})
                ]
                for model in models
            }
            per_arm = {arm: values for arm, values in per_arm.items() if values}
            if len(per_arm) < 2:
                continue
            errors = [
                eval_metrics.mean_and_se(values)[1]
                for values in per_arm.values()
                if len(values) > 1
            ]
            rows.append(
                {
                    "stage": stage,
                    "metric": metric,
                    "source": source,
                    "arms": len(per_arm),
                    "seeds": max(len(v) for v in per_arm.values()),
                    "mean_se": mean(errors) if errors else None,
                    "snr": eval_metrics.signal_to_noise(per_arm),
                }
            )
    return rows


def cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def pm(value: float | None, error: float | None, digits: int = 1) -> str:
    """`12.3 ± 0.4` (the ± part only when the noise was measured)."""
    if value is None:
        return "-"
    return cell(value, digits) + ("" if error is None else f" ± {error:.{digits}f}")


def markdown(
    tables: dict[str, list[dict]],
    name: str,
    findings: list[dict] | None = None,
    noise: list[dict] | None = None,
) -> str:
    """One markdown table per stage (ours | study for avg and each category, bpb beside
    accuracy), then the findings' verdicts and the signal-to-noise of each metric."""
    lines = [f"# Study report: {name}", ""]
    lines.append(
        "Accuracy in percent (ours at this scale | the study's 8B models, where the design "
        "matches) and bits per byte of the gold solution (bpb, lower is better); ± is the "
        "standard error across seeds."
    )
    for stage, rows in tables.items():
        categories = CATEGORIES[stage]
        lines += ["", f"## {TITLES[stage]}", ""]
        header = ["model", "seeds", "avg (ours)", "avg (study)", "bpb avg"] + [
            f"{c} (ours / study)" for c in categories
        ]
        header += [f"{c} bpb" for c in categories]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in rows:
            ours, se, paper = row["ours"], row["ours_se"], row["paper"]
            cells = [row["model"], str(len(row["seeds"])), pm(ours.get("avg"), se.get("avg"))]
            cells += [
                cell(paper.get("avg")),
                pm(row["bpb"].get("avg"), row["bpb_se"].get("avg"), 3),
            ]
            cells += [f"{pm(ours.get(c), se.get(c))} / {cell(paper.get(c))}" for c in categories]
            cells += [pm(row["bpb"].get(c), row["bpb_se"].get(c), 3) for c in categories]
            lines.append("| " + " | ".join(cells) + " |")
    if findings:
        lines += ["", "## Findings", ""]
        lines += findings_markdown(findings)
    if noise:
        lines += ["", "## Signal and noise", ""]
        lines.append(
            "| stage | metric | source | arms | seeds | mean SE across seeds | signal / noise |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        for row in noise:
            lines.append(
                f"| {row['stage']} | {row['metric']} | {row.get('source', '')} | {row['arms']} | "
                f"{row['seeds']} | "
                f"{cell(row['mean_se'], 4)} | {cell(row['snr'], 2)} |"
            )
        lines.append(
            "\nsignal / noise: standard deviation of the arms' means over the pooled standard "
            "deviation across seeds."
        )
    return "\n".join(lines) + "\n"


def findings_markdown(findings: list[dict]) -> list[str]:
    """Each finding: the study's 8B difference and ours per metric with its interval and verdict."""
    lines = [
        "| finding | study 8B (math, points) | metric | ours: paired difference [95% CI] | seeds "
        "| verdict |",
        "|---|---|---|---|---|---|",
    ]
    for finding in findings:
        for result in finding["results"]:
            interval = (
                "-" if result["low"] is None else f"[{result['low']:+.4g}, {result['high']:+.4g}]"
            )
            ours = "-" if result["diff"] is None else f"{result['diff']:+.4g} {interval}"
            metric = result["metric"] + (" (verdict)" if result["primary"] else "")
            lines.append(
                f"| {finding['id']}. {finding['title']} | {finding['paper']:+.2f} | {metric} | "
                f"{ours} | {result['n']} | {result['verdict']} |"
            )
    lines.append(
        "\nDifferences are ours minus the comparison, paired by seed, in the metric's own units "
        "(bpb: lower is better, so a finding reproduces with a negative bpb difference where the "
        "study's accuracy difference is positive). Interval: t interval over the seeds' paired "
        "differences. Verdict: reproduced when the interval excludes 0 on the study's side, "
        "reversed when it excludes 0 on the other side, inconclusive otherwise."
    )
    return lines


def chart(tables: dict[str, list[dict]], path: Path) -> None:
    """Bars of the overall score per model and stage, ours beside the study's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(tables)
    fig, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 4), squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=True):
        rows = tables[stage]
        x = range(len(rows))
        ours = [row["ours"].get("avg", 0.0) for row in rows]
        paper = [row["paper"].get("avg", 0.0) for row in rows]
        ax.bar([i - 0.2 for i in x], ours, width=0.4, label="ours")
        ax.bar([i + 0.2 for i in x], paper, width=0.4, label="study (8B)")
        ax.set_xticks(list(x), [row["model"] for row in rows], rotation=30, ha="right", fontsize=7)
        ax.set_title(TITLES[stage])
        ax.set_ylabel("overall score (%)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report_settings(folder: Path) -> dict:
    """The pipeline's `report:` section (metric, category, level) saved by `fl run`."""
    path = folder / "report.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_report(folder: Path, workspace: Workspace) -> tuple[Path, Path, dict]:
    """reports/study_<name>.md and .png; returns their paths and the tables (with the findings
    under `findings` and the noise table under `noise`)."""
    tables = study_tables(folder, workspace)
    settings = report_settings(folder)
    category = settings.get("category", "math")
    findings = judge_findings(
        load_models(folder),
        lambda run: eval_values(workspace, run),
        published_rows(),
        metric=settings.get("metric", "bpb"),
        category=category,
        level=settings.get("level", 0.95),
    )
    noise = noise_table(tables, category)
    name = folder.name
    md_path = workspace.reports_dir / f"study_{name}.md"
    png_path = workspace.reports_dir / f"study_{name}.png"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown(tables, name, findings, noise), encoding="utf-8")
    chart(tables, png_path)
    return md_path, png_path, {**tables, "findings": findings, "noise": noise}


# Cells shared by the terminal tables and the HTML page, so both show the same strings.


def stage_cells(stage: str, row: dict) -> list[str]:
    """One model's row: model, seeds, avg (ours | study), bpb, then each category."""
    ours, paper, se = row["ours"], row["paper"], row["ours_se"]
    cells = [row["model"], str(len(row["seeds"]))]
    cells.append(f"{pm(ours.get('avg'), se.get('avg'))} | {cell(paper.get('avg'))}")
    cells.append(pm(row["bpb"].get("avg"), row["bpb_se"].get("avg"), 3))
    cells += [f"{pm(ours.get(c), se.get(c))} | {cell(paper.get(c))}" for c in CATEGORIES[stage]]
    return cells


def stage_headers(stage: str) -> list[str]:
    return ["model", "seeds", "avg", "bpb", *CATEGORIES[stage]]


FINDING_HEADERS = ["finding", "study 8B", "metric", "ours [CI]", "seeds", "verdict"]


def finding_cells(finding: dict, result: dict) -> list[str]:
    """One finding x metric: the study's 8B value, ours with its interval, the verdict."""
    interval = "" if result["low"] is None else f" [{result['low']:+.3g}, {result['high']:+.3g}]"
    ours = "-" if result["diff"] is None else f"{result['diff']:+.3g}{interval}"
    return [
        f"{finding['id']}. {finding['title']}",
        f"{finding['paper']:+.2f}",
        result["metric"] + ("*" if result["primary"] else ""),
        ours,
        str(result["n"]),
        result["verdict"],
    ]


NOISE_HEADERS = ["stage", "metric", "source", "arms", "seeds", "mean SE", "signal/noise"]


def noise_cells(row: dict) -> list[str]:
    return [
        row["stage"],
        row["metric"],
        row.get("source", ""),
        str(row["arms"]),
        str(row["seeds"]),
        cell(row["mean_se"], 4),
        cell(row["snr"], 2),
    ]


# Terminal output, shared by `fl run`, `fl report study` and `make demo`.


def print_tables(tables: dict) -> None:
    """The study tables, the findings and the noise table on the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for stage in ("base", "sft", "rl"):
        if stage not in tables:
            continue
        view = Table(title=f"{TITLES[stage]}: accuracy % ours | study 8B; gold bpb ± SE over seeds")
        for name in stage_headers(stage):
            view.add_column(name)
        for row in tables[stage]:
            view.add_row(*stage_cells(stage, row))
        console.print(view)
    if tables.get("findings"):
        view = Table(title="Findings: ours (paired over seeds, 95% CI) vs the study's 8B (math)")
        for name in FINDING_HEADERS:
            view.add_column(name)
        for finding in tables["findings"]:
            for result in finding["results"]:
                view.add_row(*finding_cells(finding, result))
        console.print(view)
        console.print("* the metric the verdict uses (pipeline report.metric)")
    if tables.get("noise"):
        view = Table(title="Signal and noise per metric (spread across arms / across seeds)")
        for name in NOISE_HEADERS:
            view.add_column(name)
        for row in tables["noise"]:
            view.add_row(*noise_cells(row))
        console.print(view)


def print_arrow(table, title: str, max_rows: int = 200) -> None:
    """A pyarrow table on the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title)
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    for row in table.slice(0, max_rows).to_pylist():
        view.add_row(*("" if value is None else str(value) for value in row.values()))
    Console().print(view)


def print_stage_tables(workspace: Workspace, plan_path: Path) -> None:
    """What the data stages made: curation step counts, the corpora, and the allocation plan."""
    from frontload.curate.report import compare_table, load_manifests
    from frontload.curate.stats import summarize

    summary = summarize(workspace)
    print_arrow(summary.steps, f"curation steps (run {summary.run_id or '?'})")
    print_arrow(summary.sources, "pool by source")
    print_arrow(summary.domains, "pool by domain")
    print_arrow(summary.tokens, "token lengths")
    print_arrow(compare_table(load_manifests(workspace, None)), "corpora")
    if plan_path.is_file():
        from frontload.allocate.explain import explain
        from frontload.plan import load_plan

        print(explain(load_plan(plan_path)))
