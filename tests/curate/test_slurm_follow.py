"""Following a Slurm run without a cluster: completion markers on disk and a stand-in for squeue
drive `slurm.follow`, which must wait while jobs are queued, stop when every task is done, and
report a failure (confirmed by a second look) with the failed task's log and its last line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from frontload.curate import slurm
from frontload.errors import DataError


def submission() -> slurm.Submission:
    stages = [{"name": "ingest", "tasks": 2}, {"name": "finalize", "tasks": 2}]
    return slurm.Submission("run", {}, stages, {"ingest": "11", "finalize": "12"})


def complete(logs: Path, stage: str, *ranks: int) -> None:
    folder = logs / stage / "completions"
    folder.mkdir(parents=True, exist_ok=True)
    for rank in ranks:
        (folder / f"{rank:05d}").touch()


def test_follow_waits_for_queued_jobs_and_returns_when_every_task_is_done(tmp_path):
    looks: list[list[str]] = []

    def squeue() -> dict[str, str]:
        if len(looks) == 1:
            complete(tmp_path, "ingest", 0, 1)
        if len(looks) == 2:
            complete(tmp_path, "finalize", 0, 1)
            return {}
        return {"11": "RUNNING", "12": "PENDING"}

    def report(states):
        looks.append([state.status for state in states])

    slurm.follow(submission(), tmp_path, 0.01, report, squeue)
    assert looks == [
        ["running (job 11)", "pending (job 12)"],
        ["done", "pending (job 12)"],
        ["done", "done"],
    ]


def test_a_failure_is_confirmed_then_names_the_tasks_slurm_log(tmp_path):
    complete(tmp_path, "ingest", 0, 1)
    complete(tmp_path, "finalize", 0)
    stage = tmp_path / "finalize"
    (stage / "ranks_to_run.json").write_text(json.dumps([0, 1]))
    (stage / "slurm_logs").mkdir()
    (stage / "slurm_logs" / "12_1.out").write_text(
        "+ srun -l -n 1 launch_pickled_pipeline x\n0: Traceback (most recent call last):\n"
        "0: ValueError: bad shard\n\n"
    )
    looks = []
    with pytest.raises(DataError) as error:
        slurm.follow(submission(), tmp_path, 0.01, looks.append, lambda: {})
    assert len(looks) == 2, "one look at a failure is not enough to believe it"
    message = str(error.value)
    assert "curation stage finalize: 1 of 2 tasks failed (Slurm job 12)" in message
    assert str(stage / "slurm_logs" / "12_1.out") in message
    assert "it ends with: ValueError: bad shard; the pool is unchanged" in message
    assert "only the unfinished tasks" in error.value.hint


def test_without_slurms_log_the_error_names_datatroves_task_log(tmp_path):
    complete(tmp_path, "ingest", 0)
    with pytest.raises(DataError, match=r"logs/task_00001\.log"):
        slurm.follow(submission(), tmp_path, 0.01, lambda states: None, lambda: {})


def test_a_controller_that_never_answers_is_an_error_after_some_tries(tmp_path):
    calls = []

    def squeue():
        calls.append(1)
        raise subprocess.CalledProcessError(1, "squeue")

    with pytest.raises(DataError, match="squeue did not answer"):
        slurm.follow(submission(), tmp_path, 0.01, lambda states: None, squeue)
    assert len(calls) == slurm.SQUEUE_FAILURES_TOLERATED


def test_the_submission_survives_a_round_trip(tmp_path):
    written = submission()
    written.save(tmp_path)
    assert slurm.Submission.load(tmp_path) == written
    assert slurm.Submission.load(tmp_path / "elsewhere") is None
