"""Shared fixtures: a fresh workspace per test, and the real benchmark files when present."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Two xdist workers on two cores: one thread each. Oversubscribed torch threads made the tiny
# training tests ~8x slower on a loaded machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT.parent / "shared" / "data" / "bench"
PAPER_DIR = REPO_ROOT.parent / "shared" / "data" / "paper"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """An empty workspace, also exported as FL_WORKSPACE for CLI calls."""
    from frontload.workspace import Workspace

    root = tmp_path / "ws"
    monkeypatch.setenv("FL_WORKSPACE", str(root))
    return Workspace.resolve(root).ensure()


@pytest.fixture(scope="session")
def bench_dir() -> Path:
    """../shared/data/bench, or a clean skip when this checkout has no shared/ beside it."""
    if not BENCH_DIR.is_dir():
        pytest.skip(
            f"benchmark files not found at {BENCH_DIR} (shared/ is not beside the checkout)"
        )
    return BENCH_DIR


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Keep torch single-threaded in tests that imported it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    yield
