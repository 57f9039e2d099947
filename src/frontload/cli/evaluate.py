"""`fl evaluate`: run, score, add-benchmark, benchmarks, tasks: parse options, call frontload.evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from frontload import benchdata
from frontload.cli.common import WorkspaceOption, refresh_catalog, workspace_from
from frontload.config import validate
from frontload.evaluate.report import LIKELIHOOD_HEADERS, likelihood_cells
from frontload.evaluate.runner import EvalSettings, run_evaluation
from frontload.evaluate.score import score_predictions, write_rows
from frontload.evaluate.tasks import REGISTRY, get_task
from frontload.evaluate.tasks.files import add_benchmark as store_benchmark
from frontload.evaluate.tasks.files import parse_fields, parse_limits, parse_pairs
from frontload.evaluate.tasks.sources import (
    BenchFiles,
    read_tasks_manifest,
    store_folder,
    where_tasks_read,
)
from frontload.grading.sandbox import allow_weak_sandbox

app = typer.Typer(help="Benchmarks, grading, avg@k and pass@k.", no_args_is_help=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder with benchmark files, searched first; then the workspace's store "
        "(`fl evaluate add-benchmark`), $FL_BENCH_DIR and the files shipped with fl.",
        show_default=False,
    ),
]
TaskFileOption = Annotated[
    list[str] | None,
    typer.Option(
        "--task-file",
        help="TASK=PATH: read this file for the task instead of its default (repeatable).",
        show_default=False,
    ),
]
FieldOption = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        help="TASK.FIELD=SOURCE: the file's field holding what the task reads, e.g. "
        "gsm8k.question=prompt (repeatable; dotted SOURCE reaches nested fields).",
        show_default=False,
    ),
]
SandboxLimitOption = Annotated[
    list[str] | None,
    typer.Option(
        "--sandbox-limit",
        help="TASK.LIMIT=VALUE for code tasks, e.g. mbpp.timeout_s=30 or mbpp_plus.memory_mb=8192 "
        "(repeatable).",
        show_default=False,
    ),
]
WeakSandboxOption = Annotated[
    bool,
    typer.Option(
        "--weak-sandbox",
        help="Run untrusted code without bubblewrap (rlimits and an audit hook only) where "
        "bubblewrap cannot run. Unsafe: the program can read your files.",
    ),
]


def _print_scores(rows: list[dict]) -> None:

    view = Table(title="scores (avg@k, 95% bootstrap CI) and likelihoods of the gold answer")
    for name in ("task", "category", "problems", "k", "score", "CI", "pass@k", *LIKELIHOOD_HEADERS):
        view.add_column(name)
    for row in rows:
        k = row.get("samples_per_problem", 1)
        pass_k = row.get(f"pass_at_{k}")
        view.add_row(
            row["task"],
            row.get("category", ""),
            str(row.get("problems", "")),
            str(k),
            f"{100 * row['avg_at_k']:.1f}",
            f"{100 * row['ci_low']:.1f}-{100 * row['ci_high']:.1f}",
            "" if pass_k is None else f"{100 * pass_k:.1f}",
            *likelihood_cells(row),
        )
    Console().print(view)


@app.command("run")
def run(
    model: Annotated[
        Path, typer.Option("--model", help="Local model folder (Hugging Face format).")
    ],
    tasks: Annotated[str, typer.Option("--tasks", help="Comma-separated, e.g. gsm8k,math500.")],
    mode: Annotated[str, typer.Option("--mode", help="base (few-shot) or chat.")] = "base",
    samples: Annotated[int, typer.Option("--samples", help="Completions per problem (k).")] = 1,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    max_new_tokens: Annotated[
        int | None, typer.Option("--max-new-tokens", help="Default: per task.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    limit: Annotated[int | None, typer.Option("--limit", help="First N problems per task.")] = None,
    draw_seed: Annotated[
        int | None,
        typer.Option("--draw-seed", help="Draw the --limit problems at random with this seed."),
    ] = None,
    shots: Annotated[int | None, typer.Option("--shots", help="Default: the study's.")] = None,
    data_dir: DataDirOption = None,
    hub: Annotated[
        bool, typer.Option("--hub", help="Load datasets from the Hugging Face hub (hf: names).")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default: <workspace>/evals/<name>).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Run name (default: model-mode).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Grading processes.")] = 2,
    task_file: TaskFileOption = None,
    field: FieldOption = None,
    sandbox_limit: SandboxLimitOption = None,
    weak_sandbox: WeakSandboxOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Generate, grade and score; resumable (rerun the same command after an interruption)."""

    ws = workspace_from(workspace)
    allow_weak_sandbox(weak_sandbox)
    settings = validate(
        EvalSettings,
        {
            "model": str(model.resolve()),
            "tasks": [t.strip() for t in tasks.split(",") if t.strip()],
            "mode": mode,
            "samples": samples,
            "temperature": temperature,
            "top_p": top_p,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
            "batch_size": batch_size,
            "limit": limit,
            "draw_seed": draw_seed,
            "shots": shots,
            "data_dir": str(data_dir) if data_dir else None,
            "benchmark_store": str(store_folder(ws.root)),
            "workers": workers,
            "hub": hub,
            "task_files": parse_pairs(task_file, "--task-file"),
            "fields": parse_fields(field),
            "sandbox_limits": parse_limits(sandbox_limit),
        },
        "fl evaluate run",
    )
    run_dir = out or ws.ensure().evals_dir / (name or f"{model_label(model)}-{mode}")
    rows = run_evaluation(settings, run_dir)
    _print_scores(rows)
    typer.echo(f"samples and summary in {run_dir}")
    _refresh_catalog(ws, run_dir)


def model_label(model: Path) -> str:
    """`runs/tiny/hf` -> `tiny`: exported checkpoints share generic folder names."""
    folder = model.resolve()
    generic = folder.name in {"hf", "export", "final", "model"} or folder.name.startswith(
        "checkpoint"
    )
    return folder.parent.name if generic else folder.name


def _refresh_catalog(ws, run_dir: Path) -> None:
    if ws.evals_dir.resolve() in run_dir.resolve().parents:
        refresh_catalog(ws)


@app.command("score")
def score(
    task: Annotated[str, typer.Option("--task", help="Task name, e.g. gsm8k.")],
    predictions: Annotated[
        Path, typer.Option("--predictions", help="JSONL/JSON/parquet rows: problem, completion.")
    ],
    mode: Annotated[
        str, typer.Option("--mode", help="Prompt style the completions used.")
    ] = "chat",
    data_dir: DataDirOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write graded rows (parquet).")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Grading processes.")] = 2,
    task_file: TaskFileOption = None,
    field: FieldOption = None,
    sandbox_limit: SandboxLimitOption = None,
    weak_sandbox: WeakSandboxOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Grade completions produced elsewhere with the same graders as `run`."""

    allow_weak_sandbox(weak_sandbox)
    rows, scores = score_predictions(
        task,
        predictions,
        BenchFiles.for_run(data_dir, store_folder(workspace_from(workspace).root)),
        mode,
        workers,
        task_files=parse_pairs(task_file, "--task-file"),
        fields=parse_fields(field),
        sandbox_limits=parse_limits(sandbox_limit),
    )
    _print_scores([scores])
    if out:
        write_rows(rows, out)
        typer.echo(f"graded rows in {out}")


@app.command("add-benchmark")
def add_benchmark(
    name: Annotated[str, typer.Argument(help="Task name, e.g. gsm8k, math, mbpp_plus.")],
    path: Annotated[
        str,
        typer.Argument(help="The benchmark file (or folder, for mmlu), or hf:NAME to pull it."),
    ],
    field: Annotated[
        list[str] | None,
        typer.Option("--field", help="FIELD=SOURCE mapping for this file (repeatable)."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Store a benchmark file in the workspace; runs without --data-dir read it from there."""

    ws = workspace_from(workspace).ensure()
    task = get_task(name)
    source = path if path.startswith("hf:") else Path(path)
    stored = store_benchmark(store_folder(ws.root), task, source, parse_pairs(field, "--field"))
    typer.echo(f"stored {task.name} as {stored}")


@app.command("benchmarks")
def benchmarks(
    data_dir: DataDirOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """What is shipped with fl, what this workspace stores, and where each task will read from."""

    store = store_folder(workspace_from(workspace).root)
    files = BenchFiles.for_run(data_dir, store)
    console = Console(width=160)
    shipped = Table(title=f"shipped with fl ({benchdata.FOLDER})")
    for column in ("name", "kind", "records", "MB", "licence", "recipe path"):
        shipped.add_column(column)
    for name, entry in benchdata.datasets().items():
        size = sum(f["bytes"] for f in entry["files"]) / 1e6
        licence = entry["license"] if len(entry["license"]) < 20 else "see LICENSES.md"
        shipped.add_row(
            name, entry["kind"], str(entry["records"]), f"{size:.2f}", licence, f"shipped:{name}"
        )
    console.print(shipped)
    for name, reason in benchdata.manifest()["left_out"].items():
        console.print(f"not shipped: {name}: {reason}")
    stored = read_tasks_manifest(store)
    table = Table(title=f"stored in this workspace ({store})")
    for column in ("task", "file", "source"):
        table.add_column(column)
    for task, entry in stored.items():
        table.add_row(task, entry.get("file", ""), entry.get("source", ""))
    console.print(table if stored else f"stored in this workspace ({store}): nothing")
    order = Table(title=f"where each task reads (searched: {files.describe()})")
    for column in ("task", "from", "file"):
        order.add_column(column)
    locations = where_tasks_read(files, {name: get_task(name).filename for name in REGISTRY})
    for task, location in locations.items():
        if location is None:
            order.add_row(
                task, "[yellow]missing[/yellow]", "--task-file, --data-dir or add-benchmark"
            )
        else:
            order.add_row(task, location.label, location.path)
    console.print(order)


@app.command("tasks")
def list_tasks(
    workspace: WorkspaceOption = None,  # accepted by every command (see cli/common.py)
) -> None:
    """List the available tasks with their category and default file."""

    for name in REGISTRY:
        task = get_task(name)
        typer.echo(f"{name:14s} {task.category:8s} {task.filename}")
