"""Pretraining across "machines" on localhost (gloo, CPU, tiny model): 2 nodes x 1 process (HSDP
through `fl train pretrain --nnodes 2`) and 1 node x 2 processes (FSDP, launched from the recipe
as `fl run` does) reproduce the 1-process loss curve; a 2-node run killed mid-way and resumed
continues the curve exactly; a node alone at the rendezvous gets a timeout naming the endpoint."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frontload.cli import app
from frontload.config import dump_yaml
from frontload.train.checkpoint import CheckpointManager
from frontload.train.launch import launch_pretraining
from frontload.train.pretrain import pretrain
from frontload.train.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
STEPS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tiny_recipe(name: str, **parallel):
    recipe = load_recipe(RECIPES / "tiny" / "pretrain_ldq.yaml").model_copy(
        update={"seq_len": 64, "global_batch_tokens": 512, "total_tokens": 512 * STEPS}
    )
    recipe = recipe.model_copy(update={"name": name})
    recipe.log.interval_steps = 1
    recipe.checkpoint.interval_steps = 2
    recipe.data.validation_tokens = 0
    recipe.parallel = recipe.parallel.model_copy(update=parallel)
    return recipe


def start_nodes(path: Path, workspace: Path, port: int, resume: bool = False) -> list:
    """Two `fl train pretrain --nnodes 2` processes, as two machines would run them."""
    processes = []
    for rank in range(2):
        command = [sys.executable, "-m", "frontload.cli", "train", "pretrain", str(path)]
        command += ["--nnodes", "2", "--node-rank", str(rank), "--nproc", "1"]
        command += ["--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-timeout", "120"]
        command += ["-w", str(workspace)] + (["--resume"] if resume else [])
        processes.append(
            subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # so the test can kill each node's whole process tree
            )
        )
    return processes


def wait_all(processes: list) -> None:
    for process in processes:
        _, err = process.communicate(timeout=500)
        assert process.returncode == 0, err.decode()[-3000:]


def losses(read_rows, run: Path) -> dict[int, float]:
    return {row["step"]: row["loss"] for row in read_rows(run) if row["kind"] == "train"}


@pytest.mark.timeout(900)
def test_two_nodes_and_two_processes_match_one_process_and_resume_exactly(
    token_workspace, read_rows, tmp_path
):
    one = losses(read_rows, pretrain(tiny_recipe("one"), token_workspace))
    assert list(one) == list(range(1, STEPS + 1)) and one[STEPS] < one[1]

    # 1 node x 2 processes: the recipe asks for it, the launcher starts torchrun (`fl run`'s path)
    launch_pretraining(tiny_recipe("procs", nproc_per_node=2), token_workspace)
    procs = losses(read_rows, token_workspace.runs_dir / "procs")
    assert procs == pytest.approx(one, rel=1e-4)

    # 2 nodes x 1 process, HSDP (2 replicas x 1 shard)
    path = tmp_path / "nodes.yaml"
    dump_yaml(tiny_recipe("nodes", strategy="hsdp"), path)
    wait_all(start_nodes(path, token_workspace.root, free_port()))
    nodes = losses(read_rows, token_workspace.runs_dir / "nodes")
    assert nodes == pytest.approx(one, rel=1e-4)

    # the same 2-node run killed after its first checkpoint, then resumed on both nodes
    path = tmp_path / "killed.yaml"
    dump_yaml(tiny_recipe("killed", strategy="hsdp"), path)
    processes = start_nodes(path, token_workspace.root, free_port())
    checkpoints = CheckpointManager(token_workspace.runs_dir / "killed" / "checkpoints")
    deadline = time.monotonic() + 400
    while checkpoints.latest() is None and time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), "a node stopped before its checkpoint"
        time.sleep(0.05)
    for process in processes:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_at = checkpoints.latest()
    assert killed_at is not None and int(killed_at.name.split("_")[-1]) < STEPS
    wait_all(start_nodes(path, token_workspace.root, free_port(), resume=True))
    assert losses(read_rows, token_workspace.runs_dir / "killed") == nodes


@pytest.mark.timeout(300)
def test_a_node_alone_at_the_rendezvous_times_out_naming_the_endpoint(token_workspace, tmp_path):
    path = tmp_path / "alone.yaml"
    dump_yaml(tiny_recipe("alone"), path)
    endpoint = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app,
        ["train", "pretrain", str(path), "--nnodes", "2", "--node-rank", "0"]
        + ["--rdzv-endpoint", endpoint, "--rdzv-timeout", "5", "-w", str(token_workspace.root)],
    )
    assert result.exit_code != 0
    message = str(result.exception)
    assert endpoint in message and "timed out" in message, message
    assert not (token_workspace.runs_dir / "alone" / "checkpoints").exists()


def test_node_flags_are_checked_before_anything_starts(token_workspace, tmp_path):
    path = tmp_path / "r.yaml"
    dump_yaml(tiny_recipe("flags"), path)
    runner = CliRunner()
    result = runner.invoke(app, ["train", "pretrain", str(path), "--nnodes", "2"])
    assert result.exit_code != 0 and "--rdzv-endpoint" in str(result.exception)
    result = runner.invoke(
        app,
        ["train", "pretrain", str(path), "--nnodes", "2", "--node-rank", "2"]
        + ["--rdzv-endpoint", "127.0.0.1:1"],
    )
    assert result.exit_code != 0 and "--node-rank 2" in str(result.exception)
