"""Curation on Slurm: what was submitted, how far it got, and why it stopped.

datatrove's `SlurmPipelineExecutor` submits a stage's tasks as one job array and returns at once;
the stages are chained with `afterok` dependencies. fl writes what it submitted to
`curate/runs/<run>/slurm.json` (the job ids, the stages, the recipe) and follows the jobs with two
sources of truth that every Slurm cluster has: datatrove's completion markers (a task is done when
its marker exists) and `squeue` (a stage whose job is still queued or running is not over). A stage
with unfinished tasks and no job left in the queue has failed. Publishing the pool is left to the
caller, once every stage is done, so a failed or unfinished run never touches the pool.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from frontload.errors import DataError

SUBMISSION_FILE = "slurm.json"
SQUEUE_FAILURES_TOLERATED = 5  # consecutive polls without an answer before giving up


@dataclass
class Submission:
    """The jobs of one curation run on Slurm (the last job id per stage; "" when it had no work)."""

    run_id: str
    recipe: dict[str, Any]
    stages: list[dict[str, Any]]  # name, tasks, labels, kinds (pipeline.StageLayout)
    jobs: dict[str, str]
    submitted: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def save(self, run_root: Path) -> None:
        path = run_root / SUBMISSION_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, run_root: Path) -> Submission | None:
        path = run_root / SUBMISSION_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None


@dataclass
class StageState:
    """One stage as seen at one poll."""

    name: str
    tasks: int
    done: int
    job: str  # the stage's last job id ("" when it had nothing to run)
    queue: str  # the job's state in squeue (PENDING, RUNNING, ...), "" when not in the queue

    @property
    def complete(self) -> bool:
        return self.done >= self.tasks

    @property
    def failed(self) -> bool:
        return not self.complete and not self.queue

    @property
    def status(self) -> str:
        if self.complete:
            return "done"
        if self.failed:
            return "failed"
        return f"{self.queue.lower()} (job {self.job})"


def completed_ranks(stage_logs: Path) -> set[int]:
    """Ranks with datatrove's completion marker (`<stage logs>/completions/<rank>`)."""
    folder = stage_logs / "completions"
    if not folder.is_dir():
        return set()
    return {int(path.name) for path in folder.iterdir() if path.name.isdigit()}


def queued_jobs() -> dict[str, str]:
    """Array job id -> state of this user's jobs that Slurm still holds (pending, running, ...)."""
    output = subprocess.run(
        ["squeue", "-h", "-u", getpass.getuser(), "-o", "%F %T"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    states: dict[str, str] = {}
    for line in output.splitlines():
        job, _, state = line.strip().partition(" ")
        if job and (states.get(job) != "RUNNING"):  # an array counts as running if any task runs
            states[job] = state
    return states


def queue_now() -> dict[str, str]:
    """`queued_jobs`, with a failing squeue as a one-line error (no retries: for single looks)."""
    try:
        return queued_jobs()
    except (OSError, subprocess.SubprocessError) as error:
        raise DataError(
            f"squeue failed ({error}); cannot tell which jobs of the run are still queued",
            "check the Slurm controller (`sinfo`) and try again",
        ) from error


def poll(submission: Submission, logs: Path, queue: dict[str, str]) -> list[StageState]:
    """Every stage's progress: completion markers under `logs/<stage>/`, job state from `queue`."""
    states = []
    for stage in submission.stages:
        job = submission.jobs.get(stage["name"], "")
        done = len(completed_ranks(logs / stage["name"]))
        states.append(StageState(stage["name"], stage["tasks"], done, job, queue.get(job, "")))
    return states


def cancel(submission: Submission) -> None:
    """Cancel the run's jobs still in the queue (after a failure, `afterok` dependents would wait
    forever)."""
    jobs = [job for job in submission.jobs.values() if job]
    if jobs:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["scancel", *jobs], capture_output=True, check=False, timeout=60)


def failure(stage: StageState, logs: Path) -> DataError:
    """The error for a failed stage: which tasks, which job, the log to read and its last line."""
    stage_logs = logs / stage.name
    ranks_file = stage_logs / "ranks_to_run.json"
    submitted = json.loads(ranks_file.read_text()) if ranks_file.exists() else []
    finished = completed_ranks(stage_logs)
    unfinished = [rank for rank in range(stage.tasks) if rank not in finished]
    first = unfinished[0]
    log = stage_logs / "logs" / f"task_{first:05d}.log"  # datatrove's own log of the task
    if first in submitted:  # Slurm's log of the array task also has what failed before Python
        slurm_log = stage_logs / "slurm_logs" / f"{stage.job}_{submitted.index(first)}.out"
        log = slurm_log if slurm_log.exists() else log
    last = last_line(log)
    return DataError(
        f"curation stage {stage.name}: {len(unfinished)} of {stage.tasks} tasks failed "
        f"(Slurm job {stage.job or '?'}); task {first}'s log: {log}"
        + (f" -- it ends with: {last}" if last else "")
        + "; the pool is unchanged",
        "fix the cause and rerun `fl curate run` with the same recipe: only the unfinished tasks "
        "are submitted again",
    )


def last_line(log: Path) -> str:
    """The log's last line that says something (an exception's message, usually)."""
    if not log.exists():
        return ""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    lines = [re.sub(r"^\d+: ", "", line) for line in lines]  # srun -l's task label
    lines = [line for line in lines if line and not line.startswith(("+", "srun: error"))]
    return lines[-1][:300] if lines else ""


def look(
    submission: Submission,
    logs: Path,
    squeue: Callable[[], dict[str, str]] = queue_now,
    confirm_seconds: float = 2.0,
) -> list[StageState]:
    """One look at the run (for `fl curate status`). A failure is looked at again before it is
    believed; then the run's other jobs are cancelled and the error names the failed task's log."""
    states = poll(submission, logs, squeue())
    if any(state.failed for state in states):
        time.sleep(confirm_seconds)
        states = poll(submission, logs, squeue())
        failed = next((state for state in states if state.failed), None)
        if failed is not None:
            cancel(submission)
            raise failure(failed, logs)
    return states


def follow(
    submission: Submission,
    logs: Path,
    poll_seconds: float,
    report: Callable[[list[StageState]], None],
    squeue: Callable[[], dict[str, str]] = queued_jobs,
) -> None:
    """Poll until every stage is done, calling `report` with each poll's states.

    A failure is confirmed by a second poll before it is reported: on shared filesystems a
    completion marker can show up after the job has left the queue. On a failure the run's other
    jobs are cancelled and the error names the failed task's log.
    """
    suspect, silent = "", 0
    while True:
        try:
            queue = squeue()
            silent = 0
        except (OSError, subprocess.SubprocessError) as error:
            silent += 1
            if silent >= SQUEUE_FAILURES_TOLERATED:
                raise DataError(
                    f"squeue did not answer {silent} times in a row ({error})",
                    "check the Slurm controller (`sinfo`); the jobs may still run: "
                    "`fl curate status` reports on them later",
                ) from error
            time.sleep(poll_seconds)
            continue
        states = poll(submission, logs, queue)
        report(states)
        if all(state.complete for state in states):
            return
        failed = next((state for state in states if state.failed), None)
        if failed is not None and suspect == failed.name:
            cancel(submission)
            raise failure(failed, logs)
        suspect = failed.name if failed is not None else ""
        time.sleep(poll_seconds)
