"""Curation on a real Ray cluster: a head and a worker node started as separate processes on this
machine (`ray start --head`, `ray start --address`), `fl curate run` with `executor.kind: ray`,
and a pool byte-identical to the local executor's. An unreachable cluster is a one-line error
that leaves the previous pool alone."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.curate.helpers import sample_recipe, write_recipe
from typer.testing import CliRunner

from frontload.cli import app
from frontload.quickstart.sample import generate_sample

pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pool_bytes(workspace: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((workspace / "pool").glob("*.parquet"))}


def start_node(*args: str) -> subprocess.Popen:
    ray = str(Path(sys.executable).parent / "ray")
    command = [ray, "start", "--block", "--num-cpus", "1", *args]
    command += ["--object-store-memory", str(80 * 2**20), "--disable-usage-stats"]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for_nodes(address: str, count: int, timeout: float = 180) -> None:
    script = (
        "import ray,time,sys\n"
        f"ray.init(address='{address}', log_to_driver=False)\n"
        f"end = time.time() + {timeout}\n"
        f"while sum(n['Alive'] for n in ray.nodes()) < {count} and time.time() < end:\n"
        "    time.sleep(0.5)\n"
        f"sys.exit(0 if sum(n['Alive'] for n in ray.nodes()) >= {count} else 1)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], timeout=timeout + 60, check=False)
    assert result.returncode == 0, f"the Ray cluster at {address} never had {count} nodes"


@pytest.fixture
def ray_cluster(monkeypatch):
    """A head node and a worker node, each its own `ray start --block` process tree.

    Ray 2.60 turns token authentication on whenever a token file exists (~/.ray/auth_token, left by
    any earlier local `ray.init()`), so the nodes, this test and `fl curate run` share one token
    given in the environment rather than depending on what an earlier run left behind."""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp = Path(f"/tmp/fl-ray-{os.getpid()}-{port}")
    nodes = [start_node("--head", "--port", str(port), "--temp-dir", str(temp))]
    try:
        wait_for_nodes(address, 1)  # the worker joins a head that is up, however loaded the machine
        nodes.append(start_node("--address", address))
        wait_for_nodes(address, 2)
        yield address
    finally:
        for node in reversed(nodes):
            with_signal(node, signal.SIGTERM)
        for node in nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with_signal(node, signal.SIGKILL)
                node.wait()
        shutil.rmtree(temp, ignore_errors=True)


def with_signal(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)  # the node's own session: its raylet, GCS and workers


@pytest.mark.timeout(900)
def test_ray_cluster_pool_is_byte_identical_to_local(ray_cluster, tmp_path, monkeypatch):
    sample = tmp_path / "sample"
    generate_sample(sample, records=300, seed=5)
    local = write_recipe(tmp_path / "local.yaml", sample_recipe(sample, tasks=2, workers=2))
    executor = {"kind": "ray", "tasks": 2, "workers": 2, "ray": {"mem_per_cpu_gb": 0.1}}
    on_ray = write_recipe(
        tmp_path / "ray.yaml", sample_recipe(sample, tasks=2, workers=2, executor=executor)
    )
    runner = CliRunner()
    result = runner.invoke(app, ["curate", "run", str(local), "-w", str(tmp_path / "local")])
    assert result.exit_code == 0, result.output
    expected = pool_bytes(tmp_path / "local")
    assert expected

    # an unreachable cluster: one line naming it, and the local pool stays as it was
    dead = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", dead)
    result = runner.invoke(app, ["curate", "run", str(on_ray), "-w", str(tmp_path / "local")])
    assert result.exit_code != 0 and dead in str(result.exception), result.output
    assert pool_bytes(tmp_path / "local") == expected

    environment = {**os.environ, "RAY_ADDRESS": ray_cluster}
    command = [sys.executable, "-m", "frontload.cli", "curate", "run", str(on_ray)]
    command += ["-w", str(tmp_path / "ray")]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stderr[-3000:]
    assert pool_bytes(tmp_path / "ray") == expected
