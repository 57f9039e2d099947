"""Curation on a real Slurm cluster (`scripts/local-slurm.sh start` brings up one on this machine):
`fl curate run` submits the stages as dependent jobs, follows them and publishes a pool
byte-identical to the local executor's. A failed task is an error naming its log, leaves the pool
alone, and a rerun submits only the unfinished task.

Skipped when no Slurm cluster answers here (no `sinfo`, or no partition up)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.curate.helpers import sample_recipe, write_recipe
from typer.testing import CliRunner

from frontload.cli import app
from frontload.quickstart.sample import generate_sample


def default_partition() -> str | None:
    """The cluster's default partition when it is up (None without a cluster)."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return None
    try:
        listing = subprocess.run(
            ["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listing.splitlines():
        name, _, avail = line.partition(" ")
        if name.endswith("*") and avail.strip() == "up":
            return name.rstrip("*")
    return None


PARTITION = default_partition()
pytestmark = pytest.mark.skipif(
    PARTITION is None, reason="no Slurm cluster here (scripts/local-slurm.sh start brings one up)"
)


def pool_bytes(workspace: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((workspace / "pool").glob("*.parquet"))}


def fl(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(autouse=True)
def cancel_leftover_jobs(tmp_path):
    """A failing test must not leave held jobs in the cluster's queue."""
    yield
    for path in tmp_path.glob("ws/curate/runs/*/slurm.json"):
        jobs = [job for job in json.loads(path.read_text())["jobs"].values() if job]
        subprocess.run(["scancel", *jobs], check=False, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("slurm") / "sample"
    generate_sample(folder, records=60, seed=2)
    return folder


def recipe_for(sample: Path, path: Path, **slurm) -> Path:
    """The sample recipe on 2 tasks; on Slurm when `slurm` settings are given."""
    executor: dict = {"tasks": 2, "workers": 2}
    if slurm:
        settings = {"partition": PARTITION, "time": "00:10:00", "poll_seconds": 0.5, **slurm}
        executor |= {"kind": "slurm", "slurm": settings}
    near = {"num_buckets": 4, "hashes_per_bucket": 8}  # fewer bucket tasks: a faster test
    return write_recipe(path, sample_recipe(sample, executor=executor, near_dedup=near))


@pytest.fixture(scope="module")
def local_pool(sample, tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("local")
    result = fl("curate", "run", str(recipe_for(sample, folder / "r.yaml")), "-w", str(folder))
    assert result.exit_code == 0, result.output
    return pool_bytes(folder)


def test_slurm_run_waits_for_its_jobs_and_publishes_the_local_pool(sample, local_pool, tmp_path):
    recipe = recipe_for(sample, tmp_path / "r.yaml", job_name="fl-test-wait")
    result = fl("curate", "run", str(recipe), "-w", str(tmp_path / "ws"))
    assert result.exit_code == 0, result.output
    assert "records in" in result.output
    assert pool_bytes(tmp_path / "ws") == local_pool
    status = fl("curate", "status", "-w", str(tmp_path / "ws"))
    assert "no curation run in flight" in status.output


def submission(workspace: Path) -> dict:
    (path,) = (workspace / "curate" / "runs").glob("*/slurm.json")
    return json.loads(path.read_text())


def release(*jobs: str) -> None:
    subprocess.run(["scontrol", "release", ",".join(jobs)], check=True, timeout=30)


def wait_for_completions(stage_logs: Path, count: int, timeout: float = 240) -> None:
    end = time.time() + timeout
    while len(list((stage_logs / "completions").glob("*"))) < count:
        assert time.time() < end, f"{stage_logs.name}: {count} tasks never completed"
        time.sleep(0.5)


def test_a_failed_task_names_its_log_and_a_rerun_submits_only_that_task(
    sample, local_pool, tmp_path
):
    """Jobs are submitted held (`sbatch --hold`), so the test decides when each stage starts: the
    stages up to clustering run, one finalize task's input is then damaged, and that task fails."""
    workspace = tmp_path / "ws"
    recipe = recipe_for(
        sample, tmp_path / "r.yaml", job_name="fl-test-fail", sbatch_args={"hold": ""}
    )
    submitted = fl("curate", "run", str(recipe), "-w", str(workspace), "--no-wait")
    assert submitted.exit_code == 0, submitted.output
    assert "fl curate status" in submitted.output
    jobs = submission(workspace)["jobs"]
    assert set(jobs) == {
        "ingest",
        "exact_find",
        "near_signatures",
        "near_buckets",
        "near_clusters",
        "finalize",
    }
    again = fl("curate", "run", str(recipe), "-w", str(workspace), "--no-wait")
    assert again.exit_code == 0, again.output
    assert submission(workspace)["jobs"] == jobs, "jobs still queued are never submitted twice"
    in_flight = fl("curate", "status", "-w", str(workspace))
    assert in_flight.exit_code == 0, in_flight.output
    assert "in flight" in in_flight.output and "pending" in in_flight.output

    release(*(job for stage, job in jobs.items() if stage != "finalize"))
    (run,) = (workspace / "curate" / "runs").iterdir()
    wait_for_completions(run / "logs" / "near_clusters", 1)
    staged = run / "work" / "staged_near" / "00001.parquet"
    intact = staged.read_bytes()
    staged.write_bytes(b"not a parquet file")
    release(jobs["finalize"])

    failed = fl("curate", "status", "-w", str(workspace), "--wait")
    assert failed.exit_code != 0
    message = str(failed.exception)
    assert "curation stage finalize: 1 of 2 tasks failed" in message, message
    log = Path(message.split("task 1's log: ")[1].split(" -- ")[0].split(";")[0])
    assert log.exists() and "parquet" in log.read_text().lower()
    assert not list(workspace.glob("pool/*.parquet")), "a failed run must not publish"

    staged.write_bytes(intact)
    rerun = fl("curate", "run", str(recipe), "-w", str(workspace), "--no-wait")
    assert rerun.exit_code == 0, rerun.output
    again = submission(workspace)["jobs"]
    assert [stage for stage, job in again.items() if job] == ["finalize"]
    assert json.loads((run / "logs" / "finalize" / "ranks_to_run.json").read_text()) == [1]
    release(again["finalize"])
    published = fl("curate", "status", "-w", str(workspace), "--wait")
    assert published.exit_code == 0, published.output
    assert pool_bytes(workspace) == local_pool


def test_a_job_sbatch_refuses_is_one_line_and_publishes_nothing(sample, tmp_path):
    recipe = recipe_for(sample, tmp_path / "r.yaml", partition="no-such-partition")
    result = fl("curate", "run", str(recipe), "-w", str(tmp_path / "ws"))
    assert result.exit_code != 0
    assert "sbatch refused a job" in str(result.exception)
    assert "partition" in str(result.exception).lower()
    assert not list((tmp_path / "ws").glob("pool/*.parquet"))
