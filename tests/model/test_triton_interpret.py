"""mamba_ssm's real Triton scan (forward and backward), run by Triton's CPU interpreter, against ours.

Runs only where mamba_ssm's source and triton are installed (they are not CPU dependencies of the
project); the figures measured while building are in benchmarks/results/model.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "model.py"


@pytest.mark.skipif(
    find_spec("triton") is None or find_spec("mamba_ssm") is None,
    reason="mamba_ssm and triton are not installed (optional GPU kernels)",
)
def test_triton_scan_matches_the_chunked_ssd() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1", "MAMBA_DETERMINISTIC": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--triton-interpret"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(done.stdout)["max_abs_diff_over_max_abs"]
    for case, diffs in result.items():
        for key, diff in diffs.items():
            assert diff < 1e-4, (case, key, diff)
