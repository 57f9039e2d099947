"""`fl evaluate score`: grade completions produced elsewhere with the same graders as a run."""

from __future__ import annotations

from pathlib import Path

from frontload.errors import InputError
from frontload.evaluate import metrics
from frontload.evaluate.runner import grade_rows, write_part
from frontload.evaluate.tasks import get_task
from frontload.evaluate.tasks.base import read_records


def score_predictions(
    task_name: str, predictions: Path, data_dir: Path | None, mode: str = "chat", workers: int = 2
) -> tuple[list[dict], dict]:
    """Grade completions made elsewhere: rows with `problem` (a sample id) and `completion`."""
    task = get_task(task_name)
    if predictions.suffix == ".parquet":
        import pyarrow.parquet as pq

        records = pq.read_table(predictions).to_pylist()
    else:
        records = read_records(predictions)
    samples = {s.id: s for s in task.build(task.load(data_dir), mode, None, data_dir)}
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
        items.append((samples[problem], int(record.get("sample") or 0)))
        prompts.append(samples[problem].prompt)
        completions.append(str(record["completion"] or ""))
    rows = grade_rows(task, items, prompts, completions, workers) if items else []
    per_problem = metrics.group_by_problem((r["problem"], r["verdict"] == "passed") for r in rows)
    k = min((len(v) for v in per_problem.values()), default=1)
    return rows, {"task": task.name, **metrics.task_scores(per_problem, ks=(1, k))}


def write_rows(rows: list[dict], path: Path) -> None:
    """Graded rows as parquet (written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_part(rows, path)
