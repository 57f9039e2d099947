"""`fl report study RUN_DIR`: the study's tables (base, after SFT, after RL) for the user's runs,
next to the published numbers where the design matches (same pretraining arm, SFT data, stage).

Scores are percentages; a category is the mean of its benchmarks, overall the mean of the
category means (design.md section 8). The published rows come from the study's results.csv.
"""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from statistics import mean

from frontload.errors import StageNotReady
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
            and row["sft_scale"] in ("0", "1")
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


def our_scores(workspace: Workspace, eval_run: str) -> dict[str, float]:
    """Category means and `avg` (mean of categories) of one evaluation run, in percent."""
    path = workspace.evals_dir / eval_run / "summary.json"
    if not path.is_file():
        return {}
    by_category: dict[str, list[float]] = {}
    for row in json.loads(path.read_text()):
        by_category.setdefault(row["category"], []).append(100 * float(row["score"]))
    scores = {category: mean(values) for category, values in by_category.items()}
    if scores:
        scores["avg"] = mean(scores.values())
    return scores


def study_tables(folder: Path, workspace: Workspace) -> dict[str, list[dict]]:
    """stage -> rows {model, ours: {category: score}, paper: {category: score}}."""
    models_path = folder / "models.json"
    if not models_path.is_file():
        raise StageNotReady(
            f"{folder} has no models.json", "run the pipeline first: fl run PIPELINE.yaml"
        )
    published = published_rows()
    tables: dict[str, list[dict]] = {"base": [], "sft": [], "rl": []}
    for model in json.loads(models_path.read_text()):
        tables[model["stage"]].append(
            {
                "model": model["model"],
                "ours": our_scores(workspace, model["eval"]),
                "paper": published_match(model, published),
            }
        )
    return {stage: rows for stage, rows in tables.items() if rows}


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown(tables: dict[str, list[dict]], name: str) -> str:
    """One markdown table per stage: ours | study for avg and each category."""
    lines = [f"# Study report: {name}", ""]
    lines.append(
        "Scores in percent (ours at this scale | the study's 8B models, where the design matches)."
    )
    for stage, rows in tables.items():
        categories = CATEGORIES[stage]
        lines += ["", f"## {TITLES[stage]}", ""]
        header = ["model", "avg (ours)", "avg (study)"] + [
            f"{c} (ours / study)" for c in categories
        ]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in rows:
            ours, paper = row["ours"], row["paper"]
            cells = [row["model"], cell(ours.get("avg")), cell(paper.get("avg"))]
            cells += [f"{cell(ours.get(c))} / {cell(paper.get(c))}" for c in categories]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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


def write_report(folder: Path, workspace: Workspace) -> tuple[Path, Path, dict]:
    """reports/study_<name>.md and .png; returns their paths and the tables."""
    tables = study_tables(folder, workspace)
    name = folder.name
    md_path = workspace.reports_dir / f"study_{name}.md"
    png_path = workspace.reports_dir / f"study_{name}.png"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown(tables, name), encoding="utf-8")
    chart(tables, png_path)
    return md_path, png_path, tables
