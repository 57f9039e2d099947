"""The loop through `fl`: design -> (runs recorded per the contract) -> experiments -> fit; bad input."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import yaml
from typer.testing import CliRunner

from frontload.allocate.design import load_sweep
from frontload.allocate.fit import features
from frontload.allocate.model import TERMS, Settings, load_model
from frontload.allocate.pools import pools_from_workspace
from frontload.cli import app
from frontload.errors import FrontloadError
from frontload.plan import load_plan
from frontload.train.served import record_plan

runner = CliRunner()


def error(result) -> str:
    """The one-line message `fl` prints (`error: ...`): a FrontloadError, not a traceback."""
    assert isinstance(result.exception, FrontloadError), result.output
    return result.exception.message


CONFIG = {
    "name": "cli",
    "workspace_corpora": ["dldq", "dshq", "dlmq", "dalf"],
    "budgets": {"pretrain": {"tokens": 200000}, "sft": {"tokens": 20000}},
    "max_epochs": {"pretrain": 8, "sft": 4},
    "trust_region": None,
}


def record_runs(ws, sweep_dir, metric: str, value) -> None:
    """What `fl run` leaves per point x seed: served.jsonl (pretrain, sft) and an evaluation."""
    sweep, base = load_sweep(sweep_dir)
    for number, point in enumerate(sweep.points):
        plan = load_plan(base / point.plan)
        for seed in (0, 1):
            pt, ft = f"p{number}_s{seed}", f"p{number}_s{seed}_sft"
            for run, phase in ((pt, plan.phase("pretrain")), (ft, plan.phase("sft"))):
                rows = [
                    {
                        "run": run,
                        "stage": phase.name,
                        "phase": phase.name,
                        "corpus": e.corpus,
                        "tokens": e.tokens,
                        "examples": None,
                        "epochs": e.epochs,
                        "plan": plan.name,
                        "plan_sha256": None,
                    }
                    for e in phase.entries
                    if e.tokens
                ]
                if phase.name == "pretrain":
                    rows.append(
                        {
                            "run": run,
                            "stage": "pretrain",
                            "phase": "pretrain",
                            "corpus": "general",
                            "tokens": phase.general_tokens,
                            "examples": None,
                            "epochs": 1.0,
                            "plan": plan.name,
                            "plan_sha256": None,
                        }
                    )
                record_plan(ws.runs_dir / run, plan)  # what `fl train --plan` keeps
                (ws.runs_dir / run / "served.jsonl").write_text(
                    "".join(json.dumps(r) + "\n" for r in rows)
                )
            (ws.runs_dir / ft / "summary.json").write_text(json.dumps({"model": f"runs/{pt}/hf"}))
            (ws.evals_dir / ft).mkdir(parents=True)
            summary = [
                {
                    "run": ft,
                    "train_run": ft,
                    "model": f"{ws.runs_dir}/{ft}/hf",
                    "task": "gsm8k",
                    "category": "math",
                    metric: value(plan, seed),
                }
            ]
            (ws.evals_dir / ft / "summary.json").write_text(json.dumps(summary))


def known_bpb(ws):
    """bpb = 3 - (the shipped model's score)/100 at default settings, plus seed noise."""
    model = load_model(None).categories["avg"]
    pools = pools_from_workspace({c: ws.corpus_dir(c) for c in CONFIG["workspace_corpora"]})
    rng = np.random.default_rng(0)

    def value(plan, seed):
        row = {"run": plan.name, "category": "avg", "pretrain_budget": 200000}
        for phase in ("pretrain", "sft"):
            row[phase] = "+".join(
                f"{e.corpus}:{e.tokens}" for e in plan.phase(phase).entries if e.tokens
            )
        x = features([row], pools, Settings(k_pt=0.05, k_sft=0.02, rstar_sft=5.0))[0]
        score = model.intercept + x @ np.array([model.coefs[t] for t in TERMS])
        return 3.0 - score / 100 + rng.normal(0, 0.001)

    return value


def without_timing(path) -> dict:
    """A ladder.json or model file, less the ladder's wall time (the one field a rerun changes)."""
    data = (
        json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    )
    (data.get("ladder") or data)["seconds"] = None
    return data


def test_design_experiments_fit(corpora_workspace, tmp_path):
    """design (outside any loop folder) -> runs -> experiments CSV -> the ladder, from the
    workspace and from the CSV alone: the same ladder and model file."""
    ws = corpora_workspace
    config = tmp_path / "allocate.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    sweep = tmp_path / "sweep"
    args = ["allocate", "design", str(config), "--out", str(sweep), "-w", str(ws.root)]
    result = runner.invoke(app, [*args, "--runs", "5"])
    assert "has 11 free parameters" in error(result)
    result = runner.invoke(app, [*args, "--runs", "14"])
    assert result.exit_code == 0, result.output
    assert "m_ldq-sft_shq" in result.output and "unimax" in result.output
    record_runs(ws, sweep, "bpb", known_bpb(ws))
    out = tmp_path / "runs.csv"
    result = runner.invoke(app, ["allocate", "experiments", "--out", str(out), "--metric", "bpb"])
    assert result.exit_code == 0, result.output
    assert "28 runs" in result.output and len(out.read_text().splitlines()) == 1 + 28 * 2
    # the design's kinds travel with the plans the runs kept, wherever the sweep was written
    anchors = {p.name for p in load_sweep(sweep)[0].points if p.kind == "anchor"}
    kinds = {(r["point"], r["kind"]) for r in csv.DictReader(out.open())}
    assert kinds == {(p, "anchor" if p in anchors else "design") for p, _ in kinds}
    assert 0 < len(anchors) < len(kinds)
    model = tmp_path / "model.yaml"
    fit = ["allocate", "fit", "--out", str(model), "--bootstrap", "3", "--repeats", "2"]
    result = runner.invoke(app, [*fit, "--metric", "bpb"])
    assert result.exit_code == 0, result.output
    for rung in ("prior", "null_share", "null_anchor", "ridge_structured", "structured", "gp"):
        assert f" {rung} " in result.output
    assert "best rung (*)" in result.output and "loglinear" in result.output
    fitted = load_model(model)
    assert fitted.metric == "-bpb" and fitted.fit.cross_validation["structured"]["spearman"] > 0.7
    assert fitted.ladder is not None and fitted.rung == fitted.ladder.best
    assert fitted.ladder.anchors == len(anchors)
    # the CSV and its pools file alone, elsewhere, with the workspace's corpora gone
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("runs.csv", "runs.pools.yaml"):
        shutil.copy(tmp_path / name, elsewhere / name)
    shutil.rmtree(ws.root / "corpora")
    again = elsewhere / "model.yaml"
    csv_fit = ["allocate", "fit", str(elsewhere / "runs.csv"), "--out", str(again)]
    result = runner.invoke(app, [*csv_fit, "--bootstrap", "3", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    assert without_timing(elsewhere / "ladder.json") == without_timing(tmp_path / "ladder.json")
    assert without_timing(again) == without_timing(model)
    # the study-table fit is for the study's table; the metric is the table's own
    result = runner.invoke(app, [*csv_fit, "--metric", "score"])
    assert "holds bpb" in error(result)
    (elsewhere / "runs.pools.yaml").unlink()
    result = runner.invoke(app, csv_fit)
    assert f"no pools file {elsewhere / 'runs.pools.yaml'}" in error(result)
    odd = elsewhere / "odd.csv"
    odd.write_text("run,value\na,1\n")
    result = runner.invoke(app, ["allocate", "fit", str(odd)])
    assert error(result).startswith(f"{odd}: neither an experiments table nor a study table")


def test_bad_input_is_one_line(corpora_workspace, tmp_path):
    ws = corpora_workspace
    result = runner.invoke(app, ["allocate", "fit", "--metric", "bpb"])
    assert "no finished runs" in error(result)
    config = tmp_path / "allocate.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    sweep = tmp_path / "sweep"
    design = ["allocate", "design", str(config), "--runs", "12", "--out", str(sweep)]
    assert runner.invoke(app, design).exit_code == 0
    record_runs(ws, sweep, "score", lambda plan, seed: 0.0)  # accuracy 0 everywhere
    result = runner.invoke(app, ["allocate", "fit", "--metric", "score"])
    assert "no signal" in error(result)
    plan = load_plan(next((sweep / "plans").glob("*.yaml")))
    plan.phases[0].entries[0].corpus = "dnothere"
    plan.phases[0].entries[0].tokens = 10
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(plan.model_dump(mode="json")))
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: x\n")
    result = runner.invoke(
        app, ["allocate", "verify", str(path), "--loop", str(loop), "--model", str(path)]
    )
    assert "reads corpus 'dnothere'" in error(result)
