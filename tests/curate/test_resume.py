"""Killing `fl curate run` midway and running it again gives exactly the uninterrupted output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.curate.helpers import read_folder, sample_recipe, write_recipe

from frontload.curate.pipeline import run_curation
from frontload.curate.recipe import load_recipe
from frontload.quickstart.sample import generate_sample
from frontload.workspace import Workspace


def wait_for_completions(root, stage: str, count: int, process, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        done = list(root.glob(f"curate/runs/*/logs/{stage}/completions/*"))
        if len(done) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{stage} did not reach {count} completed tasks (rc={process.poll()})")


def outputs(workspace: Workspace) -> dict:
    removed = {
        step.name: sorted(
            row.get("id") or f"{row['file']}:{row['line']}" for row in read_folder(step)
        )
        for step in sorted(workspace.removed_dir.iterdir())
    }
    return {"pool": read_folder(workspace.pool_dir), "removed": removed}


def test_killed_run_resumes_to_identical_output(tmp_path):
    sample = tmp_path / "sample"
    generate_sample(sample, records=800, seed=5)
    recipe = write_recipe(tmp_path / "recipe.yaml", sample_recipe(sample, tasks=4, workers=1))
    whole, killed = Workspace.resolve(tmp_path / "whole"), Workspace.resolve(tmp_path / "killed")
    run_curation(load_recipe(recipe), whole)

    command = [sys.executable, "-m", "frontload.cli", "curate", "run", str(recipe)]
    process = subprocess.Popen(
        [*command, "-w", str(killed.root)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_completions(killed.root, "near_signatures", 1, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    (run,) = (killed.root / "curate" / "runs").iterdir()
    assert not (run / "DONE").exists()
    assert len(list((run / "logs" / "near_signatures" / "completions").iterdir())) < 4

    result = run_curation(load_recipe(recipe), killed)
    assert result.resumed
    expected, got = outputs(whole), outputs(killed)
    assert got["pool"] == expected["pool"] and len(got["pool"]) > 500
    assert got["removed"] == expected["removed"]
    timing = ("finished", "seconds")  # when and how long differ between runs; counts may not
    strip = [{k: v for k, v in row.items() if k not in timing} for row in result.steps]
    rerun = run_curation(load_recipe(recipe), whole)
    assert strip == [{k: v for k, v in row.items() if k not in timing} for row in rerun.steps]
