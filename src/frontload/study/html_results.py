"""The result sections of the HTML report: a study's tables and findings, a loop's model ladder,
verify table and transfer table. Each function reads one documented file of a pipeline folder
(`<workspace>/pipeline/<name>/`) and returns an HTML fragment, or None when the file is absent:

- study: `models.json` (+ `evals/<run>/summary.json`, `report.json`), the inputs of
  `fl report study`, rendered with the same cell strings as its terminal tables;
- ladder: `model.yaml`, the fitted response model; its `fit.cross_validation` is
  {model family: {score name: value}} (out-of-fold RMSE, Spearman, decision accuracy, regret ...),
  every family a row and every score a column, whatever the fit writes;
- verify: `verify.json`, the rows `allocate.verify.verify_plan` returns
  ({arm, predicted, low, high, realized, sem, seeds, rank, ...}), one row per arm;
- transfer: `transfer.json`, a list of rows or {"rows": [...], "note": "..."}; shown when present.
"""

from __future__ import annotations

import json
from pathlib import Path

from frontload.study import report as study_report
from frontload.study.findings import HIGHER_IS_BETTER
from frontload.study.html import escape, svg, table
from frontload.workspace import Workspace

VERDICT_COLOURS = {
    "reproduced": "#1f7a35",
    "reversed": "#b3261e",
    "inconclusive": "#8a7300",
    "not run": "#888888",
}


def study_section(folder: Path, workspace: Workspace) -> str | None:
    """The study's tables (base, after SFT, after RL), findings with their interval plot, and the
    signal-to-noise table: what `fl report study` prints, as HTML."""
    if not (folder / "models.json").is_file():
        return None
    _, _, tables = study_report.write_report(folder, workspace)
    parts = [
        '<p class="note">Accuracy in percent, ours | the study\'s 8B models where the design '
        "matches; bpb: bits per byte of the gold solution (lower is better); ± is the standard "
        "error across seeds. Same numbers as <code>fl report study</code>.</p>"
    ]
    for stage in ("base", "sft", "rl"):
        if stage in tables:
            rows = [study_report.stage_cells(stage, row) for row in tables[stage]]
            parts.append(f"<h3>{escape(study_report.TITLES[stage])}</h3>")
            parts.append(table(study_report.stage_headers(stage), rows))
    findings = tables.get("findings") or []
    if findings:
        parts.append("<h3>Findings: ours against the study's 8B numbers</h3>")
        parts.append(findings_plot(findings))
        rows, classes = [], []
        for finding in findings:
            for result in finding["results"]:
                rows.append(study_report.finding_cells(finding, result))
                classes.append(result["verdict"].replace(" ", "-"))
        parts.append(table(study_report.FINDING_HEADERS, rows, classes))
        parts.append(
            '<p class="note">* the metric the verdict uses. Differences are paired by seed, in '
            "the metric's own units; the interval is a t interval over the seeds' differences. "
            "Reproduced: the interval excludes 0 on the study's side; reversed: on the other "
            "side; inconclusive: it contains 0.</p>"
        )
    if tables.get("noise"):
        parts.append("<h3>Signal and noise per metric</h3>")
        rows = [study_report.noise_cells(row) for row in tables["noise"]]
        parts.append(table(study_report.NOISE_HEADERS, rows))
    return "".join(parts)


def findings_plot(findings: list[dict]) -> str:
    """Each finding's verdict metric as a paired difference with its interval, oriented so right
    means the contrast's first side is better, beside the study's 8B difference (accuracy points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [next(r for r in f["results"] if r["primary"]) for f in findings]
    labels = [f"{f['id']}. {f['title'][:48]}" for f in findings]
    fig, (ours_ax, paper_ax) = plt.subplots(
        1, 2, figsize=(11, 0.75 * len(findings) + 1.4), sharey=True, width_ratios=[3, 2]
    )
    for y, result in enumerate(results):
        sign = 1.0 if HIGHER_IS_BETTER.get(result["metric"], True) else -1.0
        colour = VERDICT_COLOURS.get(result["verdict"], "#888888")
        if result["diff"] is None:
            ours_ax.annotate("not run", (0, y), ha="center", va="center", color=colour)
            continue
        x = sign * result["diff"]
        if result["low"] is not None:
            low, high = sorted((sign * result["low"], sign * result["high"]))
            ours_ax.errorbar(x, y, xerr=[[x - low], [high - x]], fmt="o", color=colour, capsize=4)
        else:
            ours_ax.plot(x, y, "o", color=colour)
        ours_ax.annotate(result["verdict"], (x, y), xytext=(0, 7), textcoords="offset points",
                         ha="center", fontsize=8, color=colour)  # fmt: skip
    metric = results[0]["metric"]
    ours_ax.axvline(0, color="#444", lw=0.8)
    ours_ax.set_xlabel(f"ours: paired difference in {metric}, 95% CI (right = better)")
    paper = [f["paper"] for f in findings]
    paper_ax.barh(
        range(len(findings)), paper, color=["#4a6fa5" if p >= 0 else "#a5574a" for p in paper]
    )
    paper_ax.axvline(0, color="#444", lw=0.8)
    paper_ax.set_xlabel("study 8B: difference in math accuracy (points)")
    for y, value in enumerate(paper):
        paper_ax.annotate(f"{value:+.2f}", (value, y), xytext=(3 if value >= 0 else -3, 0),
                          textcoords="offset points", va="center",
                          ha="left" if value >= 0 else "right", fontsize=8)  # fmt: skip
    ours_ax.set_yticks(range(len(findings)), labels, fontsize=8)
    ours_ax.invert_yaxis()
    fig.tight_layout()
    return svg(fig)


def ladder_section(folder: Path) -> str | None:
    """The model ladder: out-of-fold scores of every model family the fit compared."""
    path = folder / "model.yaml"
    if not path.is_file():
        return None
    from frontload.allocate.model import load_model

    model = load_model(path)
    scores = model.fit.cross_validation
    if not scores:
        return f'<p class="note">{escape(path)}: no cross-validation scores recorded.</p>'
    columns = sorted({name for values in scores.values() for name in values})
    rows = [
        [family, *(_number(values.get(c)) for c in columns)] for family, values in scores.items()
    ]
    parts = [table(["model family", *columns], rows)]
    parts.append(
        f'<p class="note">Fitted on {escape(model.metric)} ({model.fit.runs} runs per category), '
        f"out-of-fold over grouped folds; from {escape(path.name)}.</p>"
    )
    if model.fit.warnings:
        parts.append(
            "<ul>" + "".join(f"<li>{escape(w)}</li>" for w in model.fit.warnings) + "</ul>"
        )
    return "".join(parts)


def verify_section(folder: Path) -> str | None:
    """Predicted (interval) against realized (± standard error) for the plan and its anchors."""
    return _rows_section(folder / "verify.json", "arm")


def transfer_section(folder: Path) -> str | None:
    """The second-scale check: rank agreement and which findings keep their verdict."""
    path = folder / "transfer.json"
    body = _rows_section(path, "arm")
    if body is None:
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    findings = data.get("findings", []) if isinstance(data, dict) else []
    rows = [
        [f"{f['id']}. {f['title']}", f["nano"]["verdict"], f["micro"]["verdict"], f["kept"]]
        for f in findings
    ]
    return body + (table(["finding", "nano", "micro", "kept"], rows) if rows else "")


def _rows_section(path: Path, first: str | None) -> str | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = data.get("rows", []) if isinstance(data, dict) else data
    note = data.get("note", "") if isinstance(data, dict) else ""
    if not rows:
        return f'<p class="note">{escape(path.name)}: no rows.</p>'
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if first in columns:
        columns.remove(first)
        columns.insert(0, first)
    body = table(columns, [[_number(row.get(c)) for c in columns] for row in rows])
    return body + (f'<p class="note">{escape(note)}</p>' if note else "")


def _number(value: object) -> object:
    """Floats with four significant digits, everything else as it is."""
    return f"{value:.4g}" if isinstance(value, float) else value
