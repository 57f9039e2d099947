"""Load and build a task from one folder of benchmark files, as a run with --data-dir would
(without the store, $FL_BENCH_DIR or shipped fallbacks, so a test sees only its own files)."""

from __future__ import annotations

from pathlib import Path

from frontload.evaluate.tasks.base import Sample, Task
from frontload.evaluate.tasks.files import load_task_records
from frontload.evaluate.tasks.sources import BenchFiles


def load(task: Task, folder: Path) -> list[dict]:
    return load_task_records(task, BenchFiles.of(folder))[1]


def build(task: Task, folder: Path, mode: str, shots: int | None = None) -> list[Sample]:
    files = BenchFiles.of(folder)
    return task.build(load_task_records(task, files)[1], mode, shots, files)
