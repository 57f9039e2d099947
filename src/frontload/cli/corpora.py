"""`fl curate quality train`, `fl curate corpora`, `fl stats compare`, `fl report corpora`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from
from frontload.cli.stats import print_table

quality_app = typer.Typer(
    help="fastText quality classifier (DCLM style): train it, see its held-out metrics.",
    no_args_is_help=True,
)

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
    import pyarrow as pa

    from frontload.config import validate
    from frontload.curate.quality import QualityTrainConfig, train_from_config
    from frontload.progress import console

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
        from frontload.curate.recipe import load_recipe

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
    from frontload.curate.corpora import build_corpora, load_rules

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


def summary_table(manifests: dict[str, dict]):
    """One row per corpus: counts, medians, diversity."""
    import pyarrow as pa

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


def stats_compare(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Corpora to compare (default: every built corpus).", show_default=False
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Side-by-side table of corpus manifests, e.g. `fl stats compare dldq dshq`."""
    from frontload.curate.report import compare_table, load_manifests

    manifests = load_manifests(workspace_from(workspace), names)
    print_table(compare_table(manifests), title="corpora")


def report_corpora(
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
    from frontload.curate.report import draw_histograms

    for path in draw_histograms(workspace_from(workspace), names, out, bins):
        typer.echo(str(path))
