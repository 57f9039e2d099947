"""benchmarks/gpu.sh parses, and the fused-vs-PyTorch section of its Python suite runs on CPU (the
whole suite: `bash benchmarks/gpu.sh --cpu-smoke`, minutes on a loaded VM, so not in the tests)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_gpu_script_syntax_and_mixer_section_on_cpu() -> None:
    subprocess.run(["bash", "-n", str(BENCHMARKS / "gpu.sh")], check=True)
    spec = importlib.util.spec_from_file_location("bench_model", BENCHMARKS / "model.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench._mixer_paths("cpu", smoke=True, steps=1)
    assert result["torch"]["ms"] > 0
    assert result["fused_split_conv_scan"] == "not importable here"  # no CUDA, no interpreter
