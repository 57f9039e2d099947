"""The experiments table is built from the catalog: served.jsonl (realized) + evals/*/summary.json."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from frontload.allocate.crossval import group_folds, prepare
from frontload.allocate.experiments import build_table, design_kind_note, write_csv
from frontload.allocate.fit import read_table
from frontload.cli import app
from frontload.errors import InputError, StageNotReady


def served(ws, run, stage, tokens, plan=None):
    folder = ws.runs_dir / run
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "run": run,
            "stage": stage,
            "phase": stage,
            "corpus": c,
            "tokens": t,
            "examples": None,
            "epochs": 1.0,
            "plan": plan,
            "plan_sha256": None,
        }
        for c, t in tokens.items()
    ]
    (folder / "served.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def evaluation(ws, name, run, metrics):
    folder = ws.evals_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "run": name,
            "model": f"{ws.runs_dir}/{run}/hf",
            "mode": "chat",
            "task": task,
            "category": cat,
            "score": vals.get("score", 0.0),
            **vals,
            "created": "2026-01-01",
        }
        for task, (cat, vals) in metrics.items()
    ]
    (folder / "summary.json").write_text(json.dumps(rows))


def sft_run(ws, run, parent, tokens, seed=0):
    served(ws, run, "sft", tokens, plan=f"plan-{run[:2]}")
    (ws.runs_dir / run / "summary.json").write_text(json.dumps({"model": f"runs/{parent}/hf"}))
    (ws.runs_dir / run / "recipe.yaml").write_text(f"seed: {seed}\n")


def test_table_joins_realized_allocation_and_metrics(workspace, tmp_path):
    ws = workspace
    # the plan asked for more; the table must show what the trainer served
    served(ws, "pt_a", "pretrain", {"general": 900, "dldq": 100})
    served(ws, "pt_b", "pretrain", {"general": 1000})
    sft_run(ws, "a1_sft", "pt_a", {"dshq": 40})
    sft_run(ws, "b1_sft", "pt_b", {"dshq": 30, "dldq": 10}, seed=1)
    evaluation(
        ws, "e_a", "a1_sft", {"gsm8k": ("math", {"bpb": 1.5}), "mmlu": ("general", {"bpb": 2.5})}
    )
    evaluation(
        ws, "e_b", "b1_sft", {"gsm8k": ("math", {"bpb": 1.7}), "mmlu": ("general", {"bpb": 2.9})}
    )
    rows = build_table(ws, metric="bpb")
    by = {(r["run"], r["category"]): r for r in rows}
    a = by[("a1_sft", "avg")]
    assert a["pretrain"] == "dldq:100" and a["sft"] == "dshq:40" and a["pretrain_budget"] == 1000
    assert a["score"] == pytest.approx(2.0) and by[("a1_sft", "math")]["score"] == 1.5
    b = by[("b1_sft", "avg")]
    assert b["pretrain"] == "" and b["sft"] == "dldq:10+dshq:30" and b["seed"] == 1
    assert b["tasks"] == "gsm8k,mmlu" and b["point"] == "plan-b1"
    path = write_csv(rows, tmp_path / "runs.csv")
    kind, back = read_table(path)  # the CSV fit reads the export: the ladder's kind of table
    assert (
        kind == "runs"
        and len(back) == 6
        and {r["category"] for r in back} == {"avg", "math", "general"}
    )
    with path.open() as handle:
        assert next(csv.reader(handle))[:3] == ["run", "point", "seed"]


def test_bad_workspaces_say_what_is_wrong(workspace):
    ws = workspace
    with pytest.raises(StageNotReady, match="no finished runs"):
        build_table(ws)
    served(ws, "pt_a", "pretrain", {"general": 900, "dldq": 100})
    sft_run(ws, "a1_sft", "pt_a", {"dshq": 40})
    with pytest.raises(StageNotReady, match="no finished sft runs with an evaluation"):
        build_table(ws)
    served(ws, "pt_b", "pretrain", {"general": 1000})
    sft_run(ws, "b1_sft", "pt_b", {"dshq": 30})
    evaluation(ws, "e_a", "a1_sft", {"gsm8k": ("math", {"bpb": 1.5})})
    evaluation(
        ws, "e_b", "b1_sft", {"gsm8k": ("math", {"bpb": 1.5}), "mmlu": ("general", {"bpb": 2.0})}
    )
    with pytest.raises(InputError, match="different task sets"):
        build_table(ws, metric="bpb")
    evaluation(ws, "e_b", "b1_sft", {"gsm8k": ("math", {"score": 3.0})})
    with pytest.raises(InputError, match="no metric 'bpb'"):
        build_table(ws, metric="bpb")


def test_identical_allocations_collapse_to_one_point(workspace):
    """Two plans that served the same tokens are one design point, marked in the table; two seeds
    of one plan stay one point even when their served SFT tokens differ by an example."""
    ws = workspace
    for run, plan, sft_tokens, seed in (
        ("twin_a", "plan-a", 40, 0),
        ("twin_b", "plan-b", 40, 0),  # another plan name, the same realized allocation
        ("seeded", "plan-c", 30, 0),
        ("seeded2", "plan-c", 31, 1),  # plan-c's second seed served one token more
    ):
        served(ws, f"pt_{run}", "pretrain", {"general": 900, "dldq": 100}, plan=plan)
        served(ws, f"{run}_sft", "sft", {"dshq": sft_tokens}, plan=plan)
        (ws.runs_dir / f"{run}_sft" / "summary.json").write_text(
            json.dumps({"model": f"runs/pt_{run}/hf"})
        )
        (ws.runs_dir / f"{run}_sft" / "recipe.yaml").write_text(f"seed: {seed}\n")
        evaluation(
            ws, f"e_{run}", f"{run}_sft", {"gsm8k": ("math", {"bpb": 1.0 + sft_tokens / 100})}
        )
    (ws.root / "pipeline" / "loop" / "design").mkdir(parents=True)
    (ws.root / "pipeline" / "loop" / "design" / "sweep.yaml").write_text(
        "points:\n- {name: plan-a, kind: anchor}\n- {name: plan-c, kind: design}\n"
    )
    rows = [r for r in build_table(ws, metric="bpb") if r["category"] == "avg"]
    by = {r["run"]: r for r in rows}
    assert by["twin_a_sft"]["allocation_digest"] == by["twin_b_sft"]["allocation_digest"]
    assert by["twin_b_sft"]["same_as"] == "plan-a" and by["twin_a_sft"]["same_as"] == ""
    assert by["seeded_sft"]["allocation_digest"] != by["seeded2_sft"]["allocation_digest"]
    assert by["twin_a_sft"]["kind"] == "anchor" and by["seeded_sft"]["kind"] == "design"
    assert by["twin_b_sft"]["kind"] == ""

    data = prepare(rows, None, -1.0)
    assert data.point_names == ["plan-a", "plan-c"]  # 4 runs, 2 points
    point = dict(zip([r["run"] for r in rows], data.points, strict=True))
    assert point["twin_a_sft"] == point["twin_b_sft"] != point["seeded_sft"]
    assert point["seeded_sft"] == point["seeded2_sft"]
    assert data.anchor.tolist() == [True, False]
    # folds hold out whole points: a twin never trains the model that scores the other
    for fold in group_folds(data.groups, k=2, seed=3):
        held = {rows[i]["run"] for i in fold}
        assert ("twin_a_sft" in held) == ("twin_b_sft" in held)
    # a bootstrap copy keeps its point's fold group
    resampled = data.resample(np.array([0, 0, 1]))
    assert resampled.groups.tolist().count(point["twin_a_sft"]) == 4
    assert len(set(resampled.points)) == 3


def test_the_design_kind_travels_with_the_plans_the_runs_kept(workspace, tmp_path):
    """`kind` comes from the design note of the plan a run kept (an SFT run without one: its
    pretraining run's), with no sweep file anywhere; a workspace without the runs' corpora still
    exports the table, says why there is no pools file, and removes a stale one."""
    ws = workspace
    for run, kind in (("a", "anchor"), ("b", "design"), ("c", None)):
        served(ws, f"pt_{run}", "pretrain", {"general": 900, "dldq": 100 + len(run)})
        notes = [design_kind_note(kind)] if kind else ["solved by hand"]
        plan = {"name": f"plan-{run}", "phases": [], "notes": [*notes, "what the point is"]}
        (ws.runs_dir / f"pt_{run}" / "plan.yaml").write_text(yaml.safe_dump(plan))
        sft_run(ws, f"{run}1_sft", f"pt_{run}", {"dshq": 40})
        evaluation(ws, f"e_{run}", f"{run}1_sft", {"gsm8k": ("math", {"bpb": 1.5})})
    kinds = {r["run"]: r["kind"] for r in build_table(ws, metric="bpb")}
    assert kinds == {"a1_sft": "anchor", "b1_sft": "design", "c1_sft": ""}
    out = tmp_path / "runs.csv"
    stale = tmp_path / "runs.pools.yaml"
    stale.write_text("corpora: [old]\n")
    result = CliRunner().invoke(app, ["allocate", "experiments", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "no pools file: runs read corpus 'dldq', which is not in workspace" in result.output
    assert out.is_file() and not stale.exists()
