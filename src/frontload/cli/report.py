"""`fl report`: tables and PNG charts of corpora, plan sweeps, evaluations and the study, and the
workspace's self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.allocate.solve import load_config
from frontload.allocate.sweeps import sweeps
from frontload.cli.common import WorkspaceOption, workspace_from
from frontload.curate.report import draw_histograms
from frontload.evaluate.report import find_run
from frontload.evaluate.report import write_report as write_eval_report
from frontload.study.html_report import write_html
from frontload.study.report import print_tables
from frontload.study.report import write_report as write_study_report
from frontload.study.transfer_report import format_transfer, transfer

app = typer.Typer(
    help="Tables and PNG charts of corpora, plans, evaluations and the study.",
    no_args_is_help=True,
)


@app.command("corpora")
def corpora(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Corpora to draw (default: every built corpus).", show_default=False),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the PNGs (default: <workspace>/reports).", show_default=False
        ),
    ] = None,
    bins: Annotated[int, typer.Option(min=2, help="Histogram bins.")] = 40,
    workspace: WorkspaceOption = None,
) -> None:
    """Answer-length and quality histograms per corpus (PNG) and a markdown comparison."""
    for path in draw_histograms(workspace_from(workspace), names, out, bins):
        typer.echo(str(path))


@app.command("plan")
def plan(
    config: Annotated[Path, typer.Argument(help="Allocate config YAML to sweep.")],
    workspace: WorkspaceOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder (default: reports/).")
    ] = None,
    points: Annotated[int, typer.Option(min=2, help="Points per sweep (at least 2).")] = 9,
) -> None:
    """PNG sweeps of the predicted score vs SFT budget and vs pretraining reasoning share."""
    cfg = load_config(config)
    ws = workspace_from(workspace)
    for path in sweeps(cfg, ws if cfg.workspace_corpora else None, out or ws.reports_dir, points):
        typer.echo(f"wrote {path}")


@app.command("eval")
def eval_(
    runs: Annotated[list[str], typer.Argument(help="Run names under evals/ or run folders.")],
    name: Annotated[str, typer.Option("--name", help="Report file name (no suffix).")] = "eval",
    workspace: WorkspaceOption = None,
) -> None:
    """The study's table (rows models; columns categories and benchmarks) as markdown + PNG."""
    ws = workspace_from(workspace)
    folders = [find_run(run, ws.evals_dir) for run in runs]
    markdown, chart = write_eval_report(folders, ws.ensure().reports_dir, name)
    typer.echo(markdown.read_text())
    typer.echo(f"wrote {markdown} and {chart}")


@app.command("study")
def study(
    run_dir: Annotated[
        Path, typer.Argument(help="Pipeline folder: <workspace>/pipeline/<name> (or its name).")
    ],
    workspace: WorkspaceOption = None,
) -> None:
    """Study-style tables (base, after SFT, after RL) next to the study's published numbers."""
    ws = workspace_from(workspace)
    folder = run_dir if run_dir.is_dir() else ws.root / "pipeline" / str(run_dir)
    md_path, png_path, tables = write_study_report(folder, ws)
    print_tables(tables)
    typer.echo(f"wrote {md_path} and {png_path}")


@app.command("html")
def html(
    out: Annotated[
        Path | None, typer.Option("--out", help="Page to write (default: reports/report.html).")
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """One self-contained HTML page for the workspace: curation funnel, corpora, plan, the study's
    tables and findings, the loop's model ladder, verify and transfer tables (no network needed)."""
    typer.echo(f"wrote {write_html(workspace_from(workspace), out)}")


@app.command("transfer")
def transfer_(
    nano: Annotated[Path, typer.Argument(help="Workspace of the loop (e.g. the nano loop).")],
    micro: Annotated[
        Path | None,
        typer.Argument(help="Workspace of its transfer (default: -w, the current workspace)."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Do the loop's decisions hold at the second scale? Rank agreement of the arms both scales
    trained (Spearman, pairwise decision accuracy, bootstrap intervals) and the four findings'
    verdicts at both scales; writes MICRO/reports/transfer.json."""
    target = workspace_from(micro if micro is not None else workspace)
    data = transfer(workspace_from(nano), target)
    typer.echo(format_transfer(data))
    typer.echo(f"wrote {target.reports_dir / 'transfer.json'}")
