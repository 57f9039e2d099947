"""`fl curate run` end to end on the generated sample: pool schema, removed records with reasons,
dedup that keeps number-only variants, decontam flags, step statistics and `fl stats summary`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.curate.helpers import read_folder, sample_recipe, write_recipe
from typer.testing import CliRunner

from frontload.catalog import Catalog
from frontload.cli import app
from frontload.curate.schema import RECORD_SCHEMA
from frontload.quickstart.sample import generate_sample


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """One curation run of a small sample, shared read-only by the tests of this module."""
    from frontload.workspace import Workspace

    root = tmp_path_factory.mktemp("curated")
    sample = root / "sample"
    manifest = generate_sample(sample, records=600, seed=3)
    recipe = write_recipe(root / "recipe.yaml", sample_recipe(sample))
    workspace = Workspace.resolve(root / "ws")
    result = CliRunner().invoke(app, ["curate", "run", str(recipe), "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    return workspace, manifest, recipe, result.output


def test_pool_has_the_record_schema_and_unique_ids(curated):
    workspace, *_ = curated
    files = sorted(workspace.pool_dir.glob("*.parquet"))
    assert files
    for path in files:
        assert pq.read_schema(path).remove_metadata().equals(RECORD_SCHEMA)
    rows = read_folder(workspace.pool_dir)
    assert len({row["id"] for row in rows}) == len(rows)
    assert {row["source"] for row in rows} == {
        "math_qa",
        "math_long_cot",
        "code",
        "chat_science",
        "web",
    }
    tags = {row["source"]: row["tags"] for row in rows}
    assert tags["math_long_cot"] == ["curated"] and tags["web"] == ["general"]
    long_cot = [row for row in rows if row["source"] == "math_long_cot"]
    assert all(row["reference"] for row in long_cot)
    assert max(row["answer_tokens"] for row in long_cot) > 1024


def test_every_removal_has_a_step_and_reason(curated):
    workspace, manifest, *_ = curated
    steps = {p.name for p in workspace.removed_dir.iterdir()}
    assert {"malformed", "clean", "exact_dedup", "near_dedup"} <= steps
    malformed = read_folder(workspace.removed_dir / "malformed")
    assert len(malformed) == manifest["malformed_lines"]
    assert all(row["file"] and row["line"] > 0 and row["reason"] for row in malformed)
    for step in ("clean", "exact_dedup", "near_dedup"):
        rows = read_folder(workspace.removed_dir / step)
        assert rows and all(row["step"] == step and row["reason"] for row in rows)
    clean_reasons = {row["reason"] for row in read_folder(workspace.removed_dir / "clean")}
    assert {"empty_response", "truncated", "repetition"} <= clean_reasons


def test_dedup_keeps_number_variants_and_catches_near_duplicates(curated):
    workspace, manifest, *_ = curated
    pool_prompts = {row["prompt"] for row in read_folder(workspace.pool_dir)}
    for first, second in manifest["injected"]["numbers"]:
        assert first in pool_prompts and second in pool_prompts, (first, second)
    near = read_folder(workspace.removed_dir / "near_dedup")
    removed_texts = {row["prompt"] or row["text"] for row in near}
    caught = sum(
        1
        for original, copy in manifest["injected"]["near"]
        if copy in removed_texts or original in removed_texts
    )
    assert caught >= 0.9 * len(manifest["injected"]["near"])
    clusters = [row["dup_cluster"] for row in read_folder(workspace.pool_dir) if row["dup_cluster"]]
    assert clusters and all(c.startswith("mh-") for c in clusters)


def test_decontam_flags_the_leaked_questions(curated):
    workspace, manifest, *_ = curated
    flagged = [row for row in read_folder(workspace.pool_dir) if row["contaminated"]]
    verbatim = [
        item["text"] for item in manifest["injected"]["bench"] if item["edit"] == "verbatim"
    ]
    prompts = {row["prompt"] for row in flagged}
    removed = {row["prompt"] for row in read_folder(workspace.removed_dir / "near_dedup")}
    assert verbatim and all(text.strip() in prompts | removed for text in verbatim)
    assert {name for row in flagged for name in row["contaminated"]} == {"gsm8k", "humaneval"}


def test_step_stats_in_catalog_and_summary(curated):
    workspace, _, recipe, output = curated
    assert "near_dedup" in output and "exact_duplicate" in output
    with Catalog(workspace) as catalog:
        catalog.refresh()
        steps = catalog.query("SELECT step, kept, removed FROM curate_steps ORDER BY position")
        pool = catalog.query("SELECT count(*) AS n FROM pool").to_pylist()[0]["n"]
        removed = catalog.query("SELECT step, count(*) AS n FROM removed GROUP BY step").to_pylist()
    rows = {row["step"]: row for row in steps.to_pylist()}
    assert rows["write"]["kept"] == pool
    by_step = {row["step"]: row["n"] for row in removed}
    for step in ("clean", "exact_dedup", "near_dedup"):
        assert rows[step]["removed"] == by_step[step]
    assert rows["read"]["removed"] == by_step["malformed"]
    summary = CliRunner().invoke(app, ["stats", "summary", "-w", str(workspace.root)])
    assert summary.exit_code == 0, summary.output
    for expected in ("near_dedup", "math_long_cot", "answer_tokens", "science"):
        assert expected in summary.output
    again = CliRunner().invoke(app, ["curate", "run", str(recipe), "-w", str(workspace.root)])
    assert again.exit_code == 0 and "already complete" in again.output


def test_summary_before_any_run_says_what_to_do(tmp_path):
    result = CliRunner().invoke(app, ["stats", "summary", "-w", str(tmp_path / "empty")])
    assert result.exit_code != 0
    assert "fl curate run" in str(result.exception) or "fl curate run" in result.output


def test_bad_recipe_stops_before_work(tmp_path):
    recipe = sample_recipe(tmp_path / "nowhere")
    path = write_recipe(tmp_path / "r.yaml", recipe)
    result = CliRunner().invoke(app, ["curate", "run", str(path), "-w", str(tmp_path / "ws")])
    assert result.exit_code != 0
    assert "matches no files" in str(result.exception)
    assert not (tmp_path / "ws" / "pool").exists()


def test_recipe_mistake_found_late_keeps_the_previous_pool(curated, tmp_path):
    workspace, _, recipe, _ = curated
    root = tmp_path / "ws"
    shutil.copytree(workspace.root, root)
    before = sorted(p.name for p in (root / "pool").glob("*.parquet"))
    bad = sample_recipe(recipe.parent / "sample", quality={"model": str(tmp_path / "none.bin")})
    path = write_recipe(tmp_path / "bad.yaml", bad)
    result = CliRunner().invoke(app, ["curate", "run", str(path), "-w", str(root)])
    assert result.exit_code != 0 and "file not found" in str(result.exception)
    assert before and sorted(p.name for p in (root / "pool").glob("*.parquet")) == before


def test_executor_config_builds_slurm_and_ray(tmp_path):
    from frontload.curate.executors import make_executor
    from frontload.curate.recipe import ExecutorConfig
    from frontload.curate.stages import Stage

    stage = Stage("ingest", [lambda data, rank, world: data], 8, [None])
    slurm = ExecutorConfig(kind="slurm", tasks=8, slurm={"partition": "cpu", "cpus_per_task": 4})
    executor = make_executor(slurm, stage, tmp_path / "logs")
    assert type(executor).__name__ == "SlurmStageExecutor"  # datatrove's, less the merge job
    assert (executor.tasks, executor.partition, executor.cpus_per_task) == (8, "cpu", 4)
    assert executor.qos is None  # no `--qos=normal` that a cluster without that QOS refuses
    assert str(Path(sys.executable).parent) in executor.env_command  # the jobs find fl's Python
    ray = ExecutorConfig(kind="ray", workers=3, ray={"cpus_per_task": 2})
    executor = make_executor(ray, stage, tmp_path / "logs2", depends=executor)
    assert type(executor).__name__ == "RayPipelineExecutor"
    assert (executor.tasks, executor.workers, executor.cpus_per_task) == (8, 3, 2)
    json.dumps(slurm.model_dump())
