"""`fl allocate fit|solve|explain` and `fl report plan`: parse options, call frontload.allocate."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from

app = typer.Typer(help="Fit the response model, solve the allocation.", no_args_is_help=True)


@app.command()
def fit(
    experiments: Annotated[
        Path, typer.Argument(help="Experiments CSV (or the study's results.csv).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model YAML to write.")] = Path(
        "model.yaml"
    ),
    corpora: Annotated[
        Path | None,
        typer.Option(
            help="YAML whose `corpora` describe the table's corpora (default: the study's)."
        ),
    ] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the spread.")] = 50,
    workspace: WorkspaceOption = None,  # accepted by every command (see cli/common.py)
) -> None:
    """Fit coefficients (sign-constrained least squares + prior); report held-out error."""
    from frontload.allocate.fit import fit_model, read_corpora, read_experiments
    from frontload.allocate.study import study_corpora
    from frontload.config import dump_yaml

    rows = read_experiments(experiments)
    specs = read_corpora(corpora) if corpora else study_corpora()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fallbacks are printed below from the fit report
        model = fit_model(rows, specs, bootstrap=bootstrap)
    dump_yaml(model, out)
    report = model.fit
    typer.echo(f"wrote {out}: {report.runs} runs per category, settings {model.settings}")
    for cat in model.categories:
        rmse = report.loro_rmse.get(cat, float("nan"))
        rank = report.ranking_accuracy.get(cat, float("nan"))
        typer.echo(f"  {cat:<12} held-out RMSE {rmse:5.2f}  pairwise ranking {rank:.2f}")
    avg = "avg" if "avg" in model.categories else next(iter(model.categories))
    spread = report.spread.get(avg, {})
    typer.echo(f"  {avg} coefficients (bootstrap std):")
    for term, value in model.categories[avg].coefs.items():
        typer.echo(f"    {term:<16}{value:8.2f}  +- {spread.get(term, 0.0):.2f}")
    if report.unidentified:
        typer.echo(f"  pinned to the prior (not identified): {', '.join(report.unidentified)}")
    for warning in report.warnings:
        typer.secho(f"  warning: {warning}", fg="yellow")


@app.command()
def solve(
    config: Annotated[Path, typer.Argument(help="Allocate config YAML.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Plan YAML (default: plans/<name>.yaml).")
    ] = None,
    workspace: WorkspaceOption = None,
    solver: Annotated[
        str | None, typer.Option(help="conic, lp or milp (overrides the config).")
    ] = None,
) -> None:
    """Solve the allocation; write the plan (YAML + JSON twin) and print it."""
    from frontload.allocate.report import explain
    from frontload.allocate.solve import solve_file

    plan, path = solve_file(config, workspace_from(workspace), out, solver)
    typer.echo(explain(plan))
    typer.echo(f"\nwrote {path} and {path.with_suffix('.json')}")


@app.command("explain")
def explain_cmd(
    plan: Annotated[str, typer.Argument(help="Plan: a YAML/JSON file or a plan name.")],
    export: Annotated[
        str | None,
        typer.Option(
            help="Print a phase as `megatron` --data-path (token weights) or `hf` "
            "interleave_datasets probabilities (per example)."
        ),
    ] = None,
    phase: Annotated[str, typer.Option(help="Phase to export.")] = "pretrain",
    prefix: Annotated[
        str | None,
        typer.Option(
            help="Megatron path per corpus; {corpus} is replaced (default: the workspace's "
            "`fl data export megatron` files).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Print a plan as a table with a short explanation of why (or export one phase's blend)."""
    import json

    from frontload.allocate.plan import megatron_data_path, resolve_plan
    from frontload.allocate.report import explain
    from frontload.errors import ConfigError

    ws = workspace_from(workspace)
    loaded = resolve_plan(ws, plan)
    if export is None:
        typer.echo(explain(loaded))
    elif export == "megatron":
        from frontload.data.interop import megatron_prefix

        default = str(megatron_prefix(ws.tokens_dir / "{corpus}"))
        typer.echo(megatron_data_path(loaded.require_phase(phase), prefix or default))
    elif export == "hf":
        from frontload.data.interop import export_blend, sources_from_plan_phase

        sources, total = sources_from_plan_phase(loaded.require_phase(phase), ws)
        exported = export_blend(sources, total)
        rows = exported["sources"]
        payload = {
            "datasets": [r["name"] for r in rows],
            "probabilities": exported["hf_probabilities"],
            "probabilities_are": exported["hf_probabilities_are"],
            "token_weights": [r["token_weight"] for r in rows],
        }
        typer.echo(json.dumps(payload))
    else:
        raise ConfigError(f"--export {export}: unknown format", "use megatron or hf")


def report_plan(
    config: Annotated[Path, typer.Argument(help="Allocate config YAML to sweep.")],
    workspace: WorkspaceOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder (default: reports/).")
    ] = None,
    points: Annotated[int, typer.Option(min=2, help="Points per sweep (at least 2).")] = 9,
) -> None:
    """PNG sweeps of the predicted score vs SFT budget and vs pretraining reasoning share."""
    from frontload.allocate.report import sweeps
    from frontload.allocate.solve import load_config

    cfg = load_config(config)
    ws = workspace_from(workspace)
    for path in sweeps(cfg, ws if cfg.workspace_corpora else None, out or ws.reports_dir, points):
        typer.echo(f"wrote {path}")
