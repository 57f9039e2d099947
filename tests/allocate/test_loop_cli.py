"""The loop through `fl`: design -> (runs recorded per the contract) -> experiments -> fit; bad input."""

from __future__ import annotations

import json

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
                (ws.runs_dir / run).mkdir(parents=True)
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


def test_design_experiments_fit(corpora_workspace, tmp_path):
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
    model = tmp_path / "model.yaml"
    fit = ["allocate", "fit", "--metric", "bpb", "--out", str(model), "--bootstrap", "3"]
    result = runner.invoke(app, [*fit, "--repeats", "2"])
    assert result.exit_code == 0, result.output
    for rung in ("prior", "null_share", "ridge_structured", "structured", "gp", "loglinear"):
        assert f" {rung} " in result.output
    assert "best rung (*)" in result.output
    fitted = load_model(model)
    assert fitted.metric == "-bpb" and fitted.fit.cross_validation["structured"]["spearman"] > 0.7
    assert fitted.ladder is not None and fitted.rung == fitted.ladder.best
    assert (tmp_path / "ladder.json").is_file()
    assert runner.invoke(app, ["allocate", "fit", str(out), "--out", str(tmp_path / "m2.yaml")])


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
