"""Seeds, noise and the four findings: paired differences, t intervals and verdicts computed from
evaluation summaries with known numbers; the printers never need the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from frontload.study.report import write_report

ARMS = {"M_base": "none", "M_LDQ": "LDQ", "M_SHQ": "SHQ", "M_LMQ": "LMQ"}


def write_eval(workspace, run: str, bpb: float, score: float) -> None:
    folder = workspace.evals_dir / run
    folder.mkdir(parents=True)
    rows = [{"task": "gsm8k", "category": "math", "score": score, "bpb": bpb}]
    (folder / "summary.json").write_text(json.dumps(rows))


def study_folder(workspace, bpb_of) -> object:
    """models.json for 4 arms x SFT on SHQ/LDQ + 2xLDQ on M_LDQ, 3 seeds; bpb from `bpb_of`."""
    folder = workspace.root / "pipeline" / "toy"
    folder.mkdir(parents=True)
    models = []
    for seed in (0, 1, 2):
        for arm, pt in ARMS.items():
            entries = [("base", "", 0)] + [("sft", d, 1) for d in ("SHQ", "LDQ")]
            if arm == "M_LDQ":
                entries.append(("sft", "LDQ", 2))
            for stage, sft, scale in entries:
                label = arm if stage == "base" else f"{arm}+SFT_{'2x' if scale == 2 else ''}{sft}"
                run = f"{label}-s{seed}"
                models.append(
                    {"model": label, "pt_reasoning": pt, "sft_data": sft, "rl": 0}
                    | {"stage": stage, "run": run, "eval": run, "arm": arm}
                    | {"sft_scale": scale, "seed": seed}
                )
                write_eval(workspace, run, bpb_of(pt, stage, sft, scale, seed), score=0.0)
    (folder / "models.json").write_text(json.dumps(models))
    (folder / "report.json").write_text(json.dumps({"metric": "bpb", "category": "math"}))
    return folder


def test_findings_paired_over_seeds_with_t_intervals(workspace):
    noise = {0: 0.01, 1: -0.01, 2: 0.0}

    def bpb(pt, stage, sft, scale, seed):
        value = 2.0 if pt == "none" else 1.5  # reasoning pretraining: lower bpb (finding 1)
        if stage == "sft":
            value += {"SHQ": 0.0, "LDQ": 0.2}[sft]  # SHQ better than LDQ (finding 2)
            value += 0.3 * (scale == 2)  # doubling LDQ hurts (finding 3)
        return value + noise[seed] * (1 + (pt == "LMQ"))  # seed noise, not shared by every arm

    folder = study_folder(workspace, bpb)
    md_path, _, tables = write_report(folder, workspace)
    findings = {f["id"]: f for f in tables["findings"]}
    assert [f["paper"] for f in tables["findings"]] == pytest.approx([15.87, 26.38, -4.92, 7.07])

    f1 = next(r for r in findings[1]["results"] if r["metric"] == "bpb")
    # per seed: mean(LDQ, SHQ, LMQ) - base = -0.5 + noise*(1+1+2)/3 - noise = -0.5 + noise/3
    diffs = [-0.5 + noise[s] / 3 for s in (0, 1, 2)]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2)
    assert f1["diff"] == pytest.approx(mean) and f1["n"] == 3 and f1["primary"]
    assert (f1["low"], f1["high"]) == pytest.approx((mean - half, mean + half))
    assert f1["verdict"] == "reproduced"  # lower bpb where the study's accuracy is higher

    f2 = next(r for r in findings[2]["results"] if r["metric"] == "bpb")
    assert f2["diff"] == pytest.approx(-0.2) and f2["verdict"] == "reproduced"
    f3 = next(r for r in findings[3]["results"] if r["metric"] == "bpb")
    assert f3["diff"] == pytest.approx(0.3) and f3["verdict"] == "reproduced"  # worse, as in T6
    # no latent effect in these numbers: LMQ-LDQ moves only with the seed noise, equally in both
    # stages, so the difference in differences is exactly 0 with no spread
    f4 = next(r for r in findings[4]["results"] if r["metric"] == "bpb")
    assert f4["diff"] == pytest.approx(0.0, abs=1e-12) and f4["verdict"] == "inconclusive"
    # accuracy is 0 everywhere: no interval can exclude 0
    assert all(
        r["verdict"] == "inconclusive"
        for f in tables["findings"]
        for r in f["results"]
        if r["metric"] == "score"
    )
    text = md_path.read_text()
    assert "## Findings" in text and "reproduced" in text and "## Signal and noise" in text
    base = next(row for row in tables["base"] if row["model"] == "M_base")
    assert base["bpb"]["math"] == pytest.approx(2.0) and len(base["seeds"]) == 3
    assert base["bpb_se"]["math"] == pytest.approx(0.01 / math.sqrt(3))
    snr = {(r["stage"], r["metric"]): r["snr"] for r in tables["noise"]}
    assert snr[("base", "bpb")] > 10  # arms 0.5 apart, seeds 0.01-0.02 apart


def test_reversed_finding_and_single_seed(workspace):
    def bpb(pt, stage, sft, scale, seed):
        # reasoning pretraining makes the gold solution less likely: finding 1 reversed
        return (1.0 if pt == "none" else 1.4) + 0.01 * seed * (pt == "SHQ")

    folder = study_folder(workspace, bpb)
    _, _, tables = write_report(folder, workspace)
    f1 = next(r for r in tables["findings"][0]["results"] if r["metric"] == "bpb")
    assert f1["diff"] > 0 and f1["verdict"] == "reversed"

    models = json.loads((folder / "models.json").read_text())
    (folder / "models.json").write_text(json.dumps([m for m in models if m["seed"] == 0]))
    _, _, tables = write_report(folder, workspace)
    f1 = next(r for r in tables["findings"][0]["results"] if r["metric"] == "bpb")
    assert f1["n"] == 1 and f1["low"] is None and f1["verdict"] == "inconclusive"


def test_study_never_imports_the_cli():
    code = (
        "import sys, frontload.study.sweep, frontload.study.pipeline, frontload.study.report;"
        "bad = [m for m in sys.modules if m.startswith('frontload.cli')]; print(bad);"
        "sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fl_report_study_prints_the_findings(workspace):
    from typer.testing import CliRunner

    from frontload.cli import app

    folder = study_folder(workspace, lambda pt, stage, sft, scale, seed: 1.0 + 0.01 * seed)
    result = CliRunner().invoke(app, ["report", "study", str(folder), "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    assert "Findings" in result.output and "inconclusive" in result.output
    assert "+15.87" in result.output  # the study's 8B value beside ours


def test_study_naming_a_missing_benchmark_folder_stops_with_one_line(tmp_path, workspace):
    """A named folder that is not there is a mistake, never a silent switch to other files."""
    from frontload.errors import InputError
    from frontload.study.pipeline import run_pipeline

    path = tmp_path / "study.yaml"
    path.write_text("name: s\ncurate: c.yaml\narms: []\nevaluate: {data_dir: no/such/folder}\n")
    with pytest.raises(InputError, match="benchmark folder not found: evaluate.data_dir"):
        run_pipeline(path, workspace)
