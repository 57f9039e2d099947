"""`fl report eval`: the study's table (rows models; columns overall, categories, benchmarks) as
markdown, plus a grouped bar chart (PNG) of the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

from frontload.errors import InputError
from frontload.evaluate.metrics import category_means

CATEGORY_ORDER = ("math", "code", "science", "general")
LIKELIHOOD_HEADERS = ("bpb", "answer logp", "choice p")


def likelihood_cells(row: dict) -> list[str]:
    """A summary row's likelihood metrics as table cells ('-' where the task has none)."""
    formats = (("bpb", "{:.3f}"), ("answer_logprob", "{:.2f}"), ("choice_prob", "{:.3f}"))
    return ["-" if row.get(name) is None else fmt.format(row[name]) for name, fmt in formats]


def find_run(spec: str, evals_dir: Path) -> Path:
    """A run folder given as a path or as a name under the workspace's evals/."""
    for candidate in (Path(spec), evals_dir / spec):
        if (candidate / "summary.json").is_file():
            return candidate
    known = (
        sorted(p.name for p in evals_dir.glob("*") if (p / "summary.json").is_file())
        if evals_dir.is_dir()
        else []
    )
    raise InputError(
        f"no evaluation run {spec!r} (no summary.json)",
        hint=f"runs in {evals_dir}: {', '.join(known) or 'none yet; run fl evaluate run first'}",
    )


def load_rows(run: Path) -> list[dict]:
    try:
        rows = json.loads((run / "summary.json").read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{run / 'summary.json'}: not valid JSON ({error.msg})") from None
    return rows if isinstance(rows, list) else [rows]


def table(runs: list[Path]) -> tuple[list[str], list[list[str]], dict[str, dict[str, float]]]:
    """Header, markdown cells and the numbers (model -> column -> score in percent)."""
    per_model: dict[str, dict[str, float]] = {}
    categories: dict[str, str] = {}
    tasks: list[str] = []
    for run in runs:
        rows = load_rows(run)
        label = run.name  # run names are unique; model folders are often all called `hf`
        scores = {}
        for row in rows:
            scores[row["task"]] = 100.0 * float(row["score"])
            categories[row["task"]] = row["category"]
            if row["task"] not in tasks:
                tasks.append(row["task"])
        means, overall = category_means(scores, {t: categories[t] for t in scores})
        per_model[label] = {"Overall": overall, **means, **scores}
    present = [c for c in CATEGORY_ORDER if c in categories.values()]
    present += sorted(set(categories.values()) - set(present))
    first_seen = list(tasks)
    tasks.sort(key=lambda t: (present.index(categories[t]), first_seen.index(t)))
    header = ["Model", "Overall", *[c.capitalize() for c in present], *tasks]
    cells = []
    for label, values in per_model.items():
        cols = ["Overall", *present, *tasks]
        cells.append([label, *[f"{values[c]:.1f}" if c in values else "-" for c in cols]])
    return header, cells, per_model


def write_report(runs: list[Path], out_dir: Path, name: str = "eval") -> tuple[Path, Path]:
    """Write `<name>.md` and `<name>.png` under out_dir; returns both paths."""
    header, cells, numbers = table(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    note = "\nScores in percent (avg@k). Category = mean of its benchmarks; Overall = mean of categories.\n"
    note += likelihood_table(runs)
    markdown = out_dir / f"{name}.md"
    markdown.write_text("\n".join(lines) + "\n" + note, encoding="utf-8")
    chart = out_dir / f"{name}.png"
    _chart(header[1:], numbers, chart)
    return markdown, chart


def likelihood_table(runs: list[Path]) -> str:
    """Markdown: per run and task, accuracy next to the likelihood metrics of the gold answer."""
    lines = [
        "",
        "## Likelihood of the gold answer",
        "",
        "| Model | Task | score (%) | " + " | ".join(LIKELIHOOD_HEADERS) + " |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        for row in load_rows(run):
            cells = [run.name, row["task"], f"{100 * float(row['score']):.1f}"]
            lines.append("| " + " | ".join(cells + likelihood_cells(row)) + " |")
    lines.append(
        "\nbpb: bits per byte of the gold solution given the prompt (lower is better); answer logp: "
        "log-probability of the gold final answer; choice p: probability of the correct option "
        "renormalised over the options.\n"
    )
    return "\n".join(lines)


def _chart(columns: list[str], numbers: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [c if c == "Overall" or c.lower() not in CATEGORY_ORDER else c.lower() for c in columns]
    width = 0.8 / max(1, len(numbers))
    figure, axis = plt.subplots(figsize=(max(6, 1.0 * len(columns) + 2), 4))
    for offset, (label, values) in enumerate(numbers.items()):
        xs = [i + offset * width for i in range(len(keys))]
        axis.bar(xs, [values.get(k, 0.0) for k in keys], width=width, label=label)
    axis.set_xticks([i + width * (len(numbers) - 1) / 2 for i in range(len(keys))])
    axis.set_xticklabels(columns, rotation=30, ha="right")
    axis.set_ylabel("score (%)")
    axis.set_ylim(0, 100)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
