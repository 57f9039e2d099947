"""Shared fixtures: a fresh workspace per test, and the real benchmark files shipped with fl."""

from __future__ import annotations

import os
import sys

import pytest

# Two xdist workers on two cores: one thread each. Oversubscribed torch threads made the tiny
# training tests ~8x slower on a loaded machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """An empty workspace, also exported as FL_WORKSPACE for CLI calls."""
    from frontload.workspace import Workspace

    root = tmp_path / "ws"
    monkeypatch.setenv("FL_WORKSPACE", str(root))
    return Workspace.resolve(root).ensure()


@pytest.fixture(scope="session")
def bench_files():
    """The benchmark files shipped with fl (package data), and nothing else: no store, no
    $FL_BENCH_DIR, so every test reads the same files in any checkout."""
    from frontload.evaluate.tasks.sources import BenchFiles

    return BenchFiles.shipped()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Keep torch single-threaded in tests that imported it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    yield
