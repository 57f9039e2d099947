"""`fl evaluate score`: grade completions produced elsewhere with the same graders as a run."""

from __future__ import annotations

from pathlib import Path

from frontload.errors import InputError
from frontload.evaluate import metrics
from frontload.evaluate.runner import grade_rows, write_part
from frontload.evaluate.tasks import get_task
from frontload.evaluate.tasks.base import read_records
from frontload.evaluate.tasks.files import apply_limits, check_task_names, load_task_records
from frontload.evaluate.tasks.sources import BenchFiles
from frontload.grading.sandbox import sandbox_mode


def score_predictions(
    task_name: str,
    predictions: Path,
    files: BenchFiles | None = None,
    mode: str = "chat",
    workers: int = 2,
    task_files: dict[str, str] | None = None,
    fields: dict[str, dict[str, str]] | None = None,
    sandbox_limits: dict[str, dict[str, float]] | None = None,
) -> tuple[list[dict], dict]:
    """Grade completions made elsewhere: rows with `problem` (a sample id) and `completion`;
    the task's records come from `files` (default: $FL_BENCH_DIR, then the shipped files)."""
    task = get_task(task_name)
    check_task_names([task.name], task_file=task_files, field=fields, sandbox_limit=sandbox_limits)
    apply_limits(task, (sandbox_limits or {}).get(task.name, {}))
    if task.category == "code":
        sandbox_mode()  # no sandbox and no opt-in: refuse before grading anything
    records = _read_predictions(predictions)
    files = files or BenchFiles.for_run()
    _, items = load_task_records(task, files, None, task_files, fields)
    samples = {s.id: s for s in task.build(items, mode, None, files)}
    items, prompts, completions = [], [], []
    for number, record in enumerate(records, 1):
        if "problem" not in record or "completion" not in record:
            raise InputError(f"{predictions}: row {number} needs `problem` and `completion` fields")
        problem = str(record["problem"])
        if problem not in samples:
            raise InputError(
                f"{predictions}: row {number}: problem {problem!r} is not in task {task.name}",
                hint=f"ids look like {next(iter(samples))!r}",
            )
        sample = record.get("sample") or 0
        if (
            isinstance(sample, bool)
            or not isinstance(sample, int | str)
            or not str(sample).isdigit()
        ):
            raise InputError(
                f"{predictions}: row {number}: `sample` must be a whole number, got {sample!r}",
                hint="number the completions of one problem 0, 1, 2, ...",
            )
        items.append((samples[problem], int(sample)))
        prompts.append(samples[problem].prompt)
        completions.append(str(record["completion"] or ""))
    rows = grade_rows(task, items, prompts, completions, workers) if items else []
    per_problem = metrics.group_by_problem((r["problem"], r["verdict"] == "passed") for r in rows)
    k = min((len(v) for v in per_problem.values()), default=1)
    scores = metrics.task_scores(per_problem, ks=(1, k))
    return rows, {"task": task.name, "category": task.category, **scores}


def _read_predictions(path: Path) -> list[dict]:
    """Rows from parquet, JSONL or a JSON list; an empty or unreadable file is an InputError."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not path.is_file():
            raise InputError(f"{path} not found")
        try:
            records = pq.read_table(path).to_pylist()
        except (pa.ArrowException, OSError) as error:
            raise InputError(f"{path}: not a readable parquet file ({error})") from None
    else:
        records = read_records(path)
    if not records:
        raise InputError(f"{path}: no predictions", hint="one row per completion")
    return records


def write_rows(rows: list[dict], path: Path) -> None:
    """Graded rows as parquet (written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_part(rows, path)
