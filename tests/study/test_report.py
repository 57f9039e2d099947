"""The study report: category means and overall from evaluation summaries, published numbers
matched by arm, SFT data and stage, markdown + PNG written."""

from __future__ import annotations

import json

import pytest

from frontload.errors import StageNotReady
from frontload.study.report import published_match, published_rows, write_report


def write_eval(workspace, run: str, scores: dict[str, tuple[str, float]]) -> None:
    folder = workspace.evals_dir / run
    folder.mkdir(parents=True)
    rows = [{"task": t, "category": c, "score": s} for t, (c, s) in scores.items()]
    (folder / "summary.json").write_text(json.dumps(rows))


def test_report_tables_match_the_study_layout(workspace):
    folder = workspace.root / "pipeline" / "toy"
    folder.mkdir(parents=True)
    models = [
        {"model": "M_LMQ", "pt_reasoning": "LMQ", "sft_data": "", "rl": 0, "stage": "base"}
        | {"run": "r0", "eval": "e0"},
        {"model": "M_LMQ+SFT_SHQ", "pt_reasoning": "LMQ", "sft_data": "SHQ", "rl": 0}
        | {"stage": "sft", "run": "r1", "eval": "e1"},
        {"model": "M_LMQ+SFT_SHQ+RL", "pt_reasoning": "LMQ", "sft_data": "SHQ", "rl": 1}
        | {"stage": "rl", "run": "r2", "eval": "e2"},
    ]
    (folder / "models.json").write_text(json.dumps(models))
    write_eval(
        workspace,
        "e0",
        {"gsm8k": ("math", 0.5), "math500": ("math", 0.3), "mmlu": ("science", 0.2)},
    )
    write_eval(workspace, "e1", {"gsm8k": ("math", 0.6)})
    md_path, png_path, tables = write_report(folder, workspace)
    base = tables["base"][0]
    assert base["ours"]["math"] == pytest.approx(40.0)
    assert base["ours"]["avg"] == pytest.approx(30.0)  # mean of category means, not of tasks
    assert base["paper"]["avg"] == pytest.approx(64.07)  # T1 M_LMQ
    assert tables["sft"][0]["paper"]["avg"] == pytest.approx(50.95)  # T4 M_LMQ+SFT_SHQ
    assert tables["rl"][0]["paper"]["avg"] == pytest.approx(56.66)  # T3
    t3_math = (45.21 + 33.96 + 87.13 + 93.07) / 4  # T3 lists benchmarks: category = their mean
    assert tables["rl"][0]["paper"]["math"] == pytest.approx(t3_math)
    assert tables["rl"][0]["ours"] == {}  # not evaluated: shown as '-'
    text = md_path.read_text()
    assert "## Base models" in text and "## After SFT" in text and "## After RL" in text
    assert png_path.stat().st_size > 1000


def test_no_published_numbers_where_the_design_differs():
    rows = published_rows()
    model = {"stage": "sft", "pt_reasoning": "SHQ", "sft_data": "LDQ", "rl": 0}
    assert published_match(model, rows) == {}


def test_report_before_the_pipeline_ran_is_a_clear_error(workspace):
    with pytest.raises(StageNotReady, match="fl run"):
        write_report(workspace.root / "pipeline" / "none", workspace)


def test_signal_to_noise_per_source(workspace):
    """The math category's signal-to-noise, and GSM8K's and MATH-500's each beside it."""
    folder = workspace.root / "pipeline" / "toy"
    folder.mkdir(parents=True)
    models = []
    bpb = {("M_LDQ", 0): (3.0, 4.0), ("M_LDQ", 1): (3.1, 4.1)}
    bpb |= {("M_base", 0): (3.5, 4.0), ("M_base", 1): (3.6, 4.2)}
    for (arm, seed), (gsm8k, math500) in bpb.items():
        run = f"{arm}-{seed}"
        models.append(
            {"model": arm, "pt_reasoning": arm[2:], "sft_data": "", "rl": 0, "stage": "base"}
            | {"run": run, "eval": run, "seed": seed}
        )
        (workspace.evals_dir / run).mkdir(parents=True)
        rows = [
            {"task": "gsm8k", "category": "math", "score": 0.0, "bpb": gsm8k},
            {"task": "math500", "category": "math", "score": 0.0, "bpb": math500},
        ]
        (workspace.evals_dir / run / "summary.json").write_text(json.dumps(rows))
    (folder / "models.json").write_text(json.dumps(models))
    md_path, _, tables = write_report(folder, workspace)
    noise = {(r["metric"], r["source"]): r for r in tables["noise"]}
    assert {("bpb", "math"), ("bpb", "gsm8k"), ("bpb", "math500")} <= set(noise)
    # GSM8K separates the arms (0.5 apart, seeds 0.1), MATH-500 hardly (0.05 apart, seeds 0.1-0.2)
    assert noise["bpb", "gsm8k"]["snr"] > 4 > noise["bpb", "math500"]["snr"]
    assert "| base | bpb | gsm8k |" in md_path.read_text()
