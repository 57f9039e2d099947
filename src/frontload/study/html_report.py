"""`fl report html`: one self-contained page per workspace, `reports/report.html`.

Sections, each from the files that hold it (absent files leave their section out):
- curation funnel: the `curate_steps` view (`curate/stats/*.jsonl`) of the run in pool/, kept,
  removed and flagged per step with the removal reasons;
- corpora: `corpora/*/manifest.json`;
- per pipeline folder `pipeline/<name>/`: the plan (`plan.yaml`, predicted intervals, binding
  constraints, shadow prices, baselines), the study (`models.json`) and the loop (`model.yaml`,
  `verify.json`, `transfer.json`); see `study.html_results`.
`fl run` writes the page at the end of a study or a loop.
"""

from __future__ import annotations

from pathlib import Path

from frontload.errors import StageNotReady
from frontload.study.html import arrow_table, escape, page, svg, table
from frontload.study.html_results import (
    ladder_section,
    study_section,
    transfer_section,
    verify_section,
)
from frontload.workspace import Workspace


def write_html(workspace: Workspace, out: Path | None = None) -> Path:
    """Write reports/report.html (or `out`) for the workspace, atomically; returns its path."""
    out = out or workspace.reports_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(f".{out.name}.tmp")
    staged.write_text(page(workspace, workspace_sections(workspace)), encoding="utf-8")
    staged.replace(out)
    return out


def workspace_sections(workspace: Workspace) -> list[tuple[str, str, str]]:
    """(anchor, title, html) of every section the workspace has data for, in pipeline order."""
    sections = []
    for anchor, title, build in (
        ("curation", "Curation funnel", curation_section),
        ("corpora", "Corpora", corpora_section),
    ):
        body = build(workspace)
        if body:
            sections.append((anchor, title, body))
    pipelines = workspace.root / "pipeline"
    folders = sorted(p for p in pipelines.iterdir() if p.is_dir()) if pipelines.is_dir() else []
    for folder in folders:
        for kind, title, body in (
            ("plan", "plan", plan_section(folder / "plan.yaml")),
            ("study", "study", study_section(folder, workspace)),
            ("ladder", "model ladder", ladder_section(folder)),
            ("verify", "verify", verify_section(folder)),
            ("transfer", "transfer", transfer_section(folder)),
        ):
            if body:
                sections.append((f"{folder.name}-{kind}", f"{folder.name}: {title}", body))
    return sections


def curation_section(workspace: Workspace) -> str | None:
    """Kept / removed / flagged per step of the run in pool/, with the reasons and a funnel."""
    from frontload.curate.stats import summarize

    try:
        summary = summarize(workspace)
    except StageNotReady:
        return None
    steps = summary.steps.to_pylist()
    parts = [funnel_plot(steps)] if steps else []
    parts.append(arrow_table(summary.steps))
    parts.append(
        f'<p class="note">Curation run {escape(summary.run_id or "?")}: every removed record is '
        "in <code>removed/&lt;step&gt;/</code> with its reason "
        '(<code>fl stats "SELECT step, reason, count(*) FROM removed GROUP BY ALL"</code>).</p>'
    )
    parts.append("<h3>Pool by source</h3>" + arrow_table(summary.sources))
    parts.append("<h3>Pool by domain</h3>" + arrow_table(summary.domains))
    return "".join(parts)


def funnel_plot(steps: list[dict]) -> str:
    """Records kept after each counting step (bars), removed ones beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counted = [s for s in steps if (s.get("kept") or 0) + (s.get("removed") or 0) > 0]
    if not counted:
        return ""
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(counted) + 1.2))
    names = [s["step"] for s in counted]
    kept = [s.get("kept") or 0 for s in counted]
    removed = [s.get("removed") or 0 for s in counted]
    ax.barh(names, kept, color="#4a6fa5", label="kept")
    ax.barh(names, removed, left=kept, color="#d08c60", label="removed")
    for y, (k, r) in enumerate(zip(kept, removed, strict=True)):
        ax.annotate(f"{k} kept, {r} removed", (k + r, y), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)  # fmt: skip
    ax.invert_yaxis()
    ax.set_xlabel("records")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return svg(fig)


def corpora_section(workspace: Workspace) -> str | None:
    """The corpus manifests side by side (`fl stats compare`)."""
    from frontload.curate.report import compare_table, load_manifests

    try:
        manifests = load_manifests(workspace, None)
    except StageNotReady:
        return None
    return arrow_table(compare_table(manifests)) if manifests else None


def plan_section(path: Path) -> str | None:
    """Tokens per corpus and phase, predicted scores with intervals, binding constraints,
    shadow prices and the baselines scored by the same model."""
    if not path.is_file():
        return None
    from frontload.plan import load_plan

    plan = load_plan(path)
    parts = [
        f'<p class="note">{escape(path)} · solver {escape(plan.solver)} · model '
        f"{escape(plan.model)}</p>"
    ]
    for phase in plan.phases:
        rows = [
            [e.corpus, e.tokens, f"{e.epochs:.2f}", f"{e.weight:.3f}", f"{e.effective_tokens:.4g}"]
            for e in sorted(phase.entries, key=lambda e: -e.tokens)
        ]
        if phase.general_corpus and phase.general_tokens:
            share = phase.general_tokens / max(phase.budget_tokens, 1)
            rows.append([phase.general_corpus, phase.general_tokens, "", f"{share:.3f}", ""])
        parts.append(f"<h3>{escape(phase.name)}: budget {phase.budget_tokens} tokens</h3>")
        parts.append(table(["corpus", "tokens", "epochs", "weight", "effective tokens"], rows))
    if plan.predicted:
        rows = [
            [c, f"{p.score:.2f}", f"[{p.low:.2f}, {p.high:.2f}]"] for c, p in plan.predicted.items()
        ]
        parts.append("<h3>Predicted</h3>" + table(["category", "predicted", "interval"], rows))
    binding = ", ".join(plan.binding_constraints) or "nothing (interior optimum)"
    parts.append(f"<h3>Why</h3><p>Binding constraints: {escape(binding)}</p>")
    if plan.shadow_prices:
        rows = [[name, f"{value:.4g}"] for name, value in plan.shadow_prices.items()]
        parts.append(table(["constraint", "shadow price"], rows))
    if plan.baselines:
        rows = [
            [b.name, "-" if b.objective is None else f"{b.objective:.3f}", "yes" if b.feasible else "no",
             b.description]
            for b in plan.baselines
        ]  # fmt: skip
        rows.append(["this plan", f"{plan.objective:.3f}", "yes", ""])
        parts.append(table(["baseline", "objective", "feasible", "what"], rows))
    if plan.notes:
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in plan.notes) + "</ul>")
    return "".join(parts)
