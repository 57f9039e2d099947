"""Curation with `executor.kind: slurm` where Slurm is missing: a one-line error before any work,
and nothing written to the pool."""

from __future__ import annotations

from tests.curate.helpers import sample_recipe, write_recipe
from typer.testing import CliRunner

from frontload.cli import app
from frontload.quickstart.sample import generate_sample


def test_sbatch_missing_is_one_line_before_any_work(tmp_path, monkeypatch):
    sample = tmp_path / "sample"
    generate_sample(sample, records=40, seed=2)
    executor = {"kind": "slurm", "tasks": 2, "slurm": {"partition": "cpu"}}
    recipe = write_recipe(tmp_path / "r.yaml", sample_recipe(sample, executor=executor))
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    result = CliRunner().invoke(app, ["curate", "run", str(recipe), "-w", str(tmp_path / "ws")])
    assert result.exit_code != 0
    assert "`sbatch` is not on PATH" in str(result.exception)
    assert not list((tmp_path / "ws").glob("pool/*.parquet"))
    assert not (tmp_path / "ws" / "curate" / "runs").exists()
