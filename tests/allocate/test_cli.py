"""`fl allocate solve|explain|fit` and `fl report plan` on a small workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from frontload.cli import app
from frontload.plan import load_plan

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tiny" / "allocate.yaml"
runner = CliRunner()


def test_solve_explain_and_report(corpora_workspace, tmp_path):
    config = tmp_path / "allocate.yaml"
    shutil.copy(RECIPE, config)
    ws = str(corpora_workspace.root)
    result = runner.invoke(app, ["allocate", "solve", str(config), "-w", ws])
    assert result.exit_code == 0, result.output
    plan = load_plan(corpora_workspace.plans_dir / "tiny.yaml")
    assert (corpora_workspace.plans_dir / "tiny.json").is_file()
    pt, sft = plan.phase("pretrain"), plan.phase("sft")
    assert pt.total_tokens == 204800
    assert sum(e.tokens for e in sft.entries) <= 20480 + 4
    assert sft.entry("dshq").tokens >= max(e.tokens for e in sft.entries)
    plan_file = corpora_workspace.plans_dir / "tiny.yaml"
    result = runner.invoke(app, ["allocate", "explain", str(plan_file)])
    assert result.exit_code == 0 and "binding:" in result.output
    export = ["data", "blend-export", "--plan", str(plan_file), "--format", "megatron", "-w", ws]
    result = runner.invoke(app, export)
    weights = [float(w) for w in result.output.split()[::2]]
    assert result.exit_code == 0 and sum(weights) == pytest.approx(1.0, abs=1e-6)
    result = runner.invoke(app, ["report", "plan", str(config), "-w", ws, "--points", "3"])
    assert result.exit_code == 0, result.output
    assert len(list(corpora_workspace.reports_dir.glob("tiny_*.png"))) == 2
    result = runner.invoke(app, ["report", "plan", str(config), "-w", ws, "--points", "1"])
    assert result.exit_code == 2 and "--points" in result.output  # a usage error, no traceback


def test_unknown_workspace_corpus_is_a_clear_error(corpora_workspace, tmp_path):
    config = tmp_path / "allocate.yaml"
    data = yaml.safe_load(RECIPE.read_text())
    data["workspace_corpora"] = ["dldq", "nope"]
    config.write_text(yaml.safe_dump(data))
    result = runner.invoke(
        app, ["allocate", "solve", str(config), "-w", str(corpora_workspace.root)]
    )
    assert result.exit_code != 0
    assert "unknown corpus 'nope'" in str(result.exception)


def test_missing_model_file_names_the_field(tmp_path):
    from frontload.allocate.solve import load_config
    from frontload.errors import ConfigError

    config = tmp_path / "allocate.yaml"
    config.write_text(RECIPE.read_text().replace("model: default", "model: fitted.yaml"))
    with pytest.raises(ConfigError, match=r"model: .*fitted.yaml not found"):
        load_config(config)


def test_fit_command_on_the_study_table(tmp_path):
    table = tmp_path / "runs.csv"
    table.write_text(
        "run,pretrain,sft,pretrain_budget,category,score\n"
        "a,ldq:200000000000,shq:50400000000,1000000000000,avg,46.7\n"
    )
    out = tmp_path / "model.yaml"
    result = runner.invoke(app, ["allocate", "fit", str(table), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "too few" in result.output and out.is_file()


def test_empty_workspace_corpus_is_left_out_with_a_note(corpora_workspace, tmp_path):
    import json

    from frontload.allocate.config import AllocateConfig
    from frontload.allocate.solve import solve_plan
    from frontload.config import load_yaml

    folder = corpora_workspace.corpus_dir("dalf")
    for part in folder.glob("*.parquet"):
        part.unlink()
    (folder / "manifest.json").write_text(json.dumps({"name": "dalf", "records": 0}))
    plan = solve_plan(load_yaml(RECIPE, AllocateConfig), corpora_workspace)
    assert plan.phase("sft").entry("dalf") is None
    assert any("dalf is empty" in note for note in plan.notes)
