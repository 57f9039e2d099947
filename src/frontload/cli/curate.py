"""`fl curate`: run (raw dumps -> pool), status of Slurm runs, corpora (SQL rules over the pool),
quality train (the fastText classifier)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer

from frontload.cli.common import WorkspaceOption, print_table, workspace_from
from frontload.config import validate
from frontload.curate.corpora import load_rules
from frontload.curate.corpus_build import build_corpora
from frontload.curate.finish import CurateResult
from frontload.curate.follow import curation_status
from frontload.curate.pipeline import run_curation
from frontload.curate.publish import published_run
from frontload.curate.quality import train_from_config
from frontload.curate.recipe import QualityTrainConfig, load_recipe
from frontload.progress import console

app = typer.Typer(help="Raw dumps -> pool -> corpora.", no_args_is_help=True)
quality_app = typer.Typer(
    help="fastText quality classifier (DCLM style): train it, see its held-out metrics.",
    no_args_is_help=True,
)
app.add_typer(quality_app, name="quality")


@app.command("run")
def run(
    recipe: Annotated[Path, typer.Argument(help="curation recipe (YAML)")],
    workspace: WorkspaceOption = None,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Slurm: return once the jobs are submitted; `fl curate status` publishes later",
        ),
    ] = False,
) -> None:
    """Read, normalise, clean, dedup and decontaminate the recipe's sources into the pool.

    Resumable: rerun the same command after an interruption and it finishes the same run. On
    Slurm it waits for the jobs (or detaches with --no-wait); a rerun after a failed job submits
    only the unfinished tasks.
    """
    config = load_recipe(recipe)
    ws = workspace_from(workspace)
    try:
        result = run_curation(config, ws, wait=not no_wait)
    except KeyboardInterrupt:
        if config.executor.kind != "slurm":
            raise
        typer.echo("stopped waiting; the Slurm jobs keep running: `fl curate status` follows them")
        raise typer.Exit(130) from None
    if result.submitted:
        jobs = ", ".join(f"{stage} {job}" for stage, job in result.jobs.items() if job)
        typer.echo(
            f"submitted run {result.run_id} to Slurm (jobs: {jobs or 'none left to run'}); "
            "`fl curate status` reports on them and publishes the pool once they finish"
        )
        return
    print_result(result, ws.pool_dir)


@app.command("status")
def status(
    workspace: WorkspaceOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="follow the jobs until they finish, then publish")
    ] = False,
) -> None:
    """Where submitted Slurm runs stand; publishes the pool of a run whose jobs all finished.

    A failed job is an error naming the failed task's log; rerun `fl curate run` to submit the
    unfinished tasks again.
    """
    ws = workspace_from(workspace)
    reports = curation_status(ws, wait=wait)
    if not reports:
        current = published_run(ws)
        typer.echo(
            "no curation run in flight; "
            + (f"the pool is from run {current}" if current else "nothing published yet")
        )
    for report in reports:
        if report.result is not None:
            print_result(report.result, ws.pool_dir)
            continue
        typer.echo(f"run {report.run_id} (submitted {report.submitted}): in flight")
        for state in report.states:
            typer.echo(f"  {state.name:<16} {state.done:>5}/{state.tasks:<5} {state.status}")


def print_result(result: CurateResult, pool_dir: Path) -> None:
    """The pool's size and the kept/removed counts and seconds of every step."""
    note = " (already complete)" if result.resumed and result.steps else ""
    typer.echo(f"run {result.run_id}{note}: {result.pool_records} records in {pool_dir}")
    width = max((len(row["step"]) for row in result.steps), default=0)
    for row in result.steps:
        seconds = f"{row['seconds']:>8.1f}s" if row.get("seconds") is not None else " " * 9
        if "kept" not in row:  # a step that only takes time (dedup signatures, buckets, ...)
            typer.echo(f"  {row['step']:<{width}} {seconds}")
            continue
        reasons = ", ".join(f"{r['reason']}={r['count']}" for r in row["reasons"])
        flagged = f" flagged {row['flagged']}" if row["flagged"] else ""
        typer.echo(
            f"  {row['step']:<{width}} {seconds} kept {row['kept']:>8} removed "
            f"{row['removed']:>7}{flagged}" + (f"  ({reasons})" if reasons else "")
        )
    if result.corpora:
        typer.echo(f"corpora: {', '.join(sorted(result.corpora))}")


SpecsOption = Annotated[
    list[str],
    typer.Option(
        help="Example spec, repeatable: a jsonl/parquet path or glob, 'sql:SELECT text FROM pool "
        "WHERE ...', or 'source:NAME' (a source of --recipe).",
        show_default=False,
    ),
]


@quality_app.command("train")
def train(
    positive: SpecsOption,
    negative: SpecsOption,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Model file (default: <workspace>/models/quality.bin).", show_default=False
        ),
    ] = None,
    recipe: Annotated[
        Path | None, typer.Option(help="Curation recipe whose sources 'source:NAME' names.")
    ] = None,
    text_field: Annotated[str, typer.Option(help="Field holding the text in files.")] = "text",
    bucket: Annotated[int, typer.Option(help="Hash buckets for word bigrams.")] = 200_000,
    dim: Annotated[int, typer.Option(help="Embedding size.")] = 64,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 5,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.1,
    max_per_class: Annotated[int, typer.Option(help="Examples per class (balanced).")] = 200_000,
    holdout: Annotated[float, typer.Option(help="Held-out fraction for the metrics.")] = 0.1,
    workspace: WorkspaceOption = None,
) -> None:
    """Train P(high quality) on balanced positive vs negative examples; print held-out metrics."""
    settings = validate(
        QualityTrainConfig,
        {
            "positive": positive,
            "negative": negative,
            "out": out,
            "text_field": text_field,
            "bucket": bucket,
            "dim": dim,
            "epochs": epochs,
            "lr": lr,
            "max_per_class": max_per_class,
            "holdout": holdout,
        },
        "options",
    )
    sources = None
    if recipe is not None:
        sources = load_recipe(recipe).sources
    with console.status("reading examples and training fastText"):
        record = train_from_config(settings, workspace_from(workspace).ensure(), sources)
    metrics = record["metrics"]
    print_table(
        pa.table(
            {
                "metric": list(metrics),
                "value": [f"{v:.4f}" if isinstance(v, float) else str(v) for v in metrics.values()],
            }
        ),
        title=f"held-out metrics of {record['model']}",
    )


@app.command("corpora")
def corpora(
    recipe: Annotated[
        Path | None,
        typer.Option(
            help="Recipe whose `corpora:` rules to use (default: the rules of the last build).",
            show_default=False,
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Build only this corpus (and what it needs); repeatable."),
    ] = None,
    quality_percentile: Annotated[
        float | None, typer.Option(help="DSHQ quality floor as a pool percentile (0-100).")
    ] = None,
    dshq_min_answer_tokens: Annotated[
        int | None, typer.Option(help="DSHQ answer_tokens floor.")
    ] = None,
    dalf_min_answer_tokens: Annotated[
        int | None, typer.Option(help="DALF keeps answer_tokens above this.")
    ] = None,
    dalf_plus_fraction: Annotated[
        float | None, typer.Option(help="Build dalf_plus = DALF + this fraction of DSHQ.")
    ] = None,
    keep_contaminated: Annotated[
        bool, typer.Option("--keep-contaminated", help="Keep records flagged as contaminated.")
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Rebuild the corpora from the existing pool with the recipe's SQL rules (seconds)."""
    ws = workspace_from(workspace)
    overrides = {
        "quality_percentile": quality_percentile,
        "dshq_min_answer_tokens": dshq_min_answer_tokens,
        "dalf_min_answer_tokens": dalf_min_answer_tokens,
        "dalf_plus_fraction": dalf_plus_fraction,
        "contaminated": "keep" if keep_contaminated else None,
    }
    config = load_rules(ws, recipe, {k: v for k, v in overrides.items() if v is not None})
    started = time.perf_counter()
    manifests = build_corpora(config, ws, names=only or None)
    elapsed = time.perf_counter() - started
    print_table(summary_table(manifests), title=f"corpora rebuilt in {elapsed:.1f}s")


def summary_table(manifests: dict[str, dict]) -> pa.Table:
    """One row per corpus: counts, medians, diversity."""

    def mix(manifest: dict) -> str:
        shares = sorted(manifest["domain_mix"].items(), key=lambda kv: -kv[1])
        return " ".join(f"{d} {s:.0%}" for d, s in shares)

    rows = list(manifests.values())
    return pa.table(
        {
            "corpus": [m["name"] for m in rows],
            "records": [m["records"] for m in rows],
            "tokens": [m["tokens"] for m in rows],
            "answer_tokens": [m["answer_tokens"] for m in rows],
            "answer p50": [m["answer_tokens_quantiles"]["p50"] for m in rows],
            "quality p50": [m["quality_quantiles"]["p50"] for m in rows],
            "clusters/1k": [m["diversity"]["clusters_per_1k"] for m in rows],
            "domains": [mix(m) for m in rows],
        }
    )
