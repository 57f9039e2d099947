"""The corpora CLI commands, mounted as the wiring file mounts them."""

from __future__ import annotations

import json
import random

from typer.testing import CliRunner

from frontload.cli import app as fl
from frontload.errors import ConfigError

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(fl, list(args))
    return result


def test_quality_train_prints_heldout_metrics(workspace, tmp_path, pool):
    rng = random.Random(0)
    good = [
        "proof lemma hence " + " ".join(rng.choice("abcdefg") for _ in range(6)) for _ in range(80)
    ]
    (tmp_path / "good.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in good))
    out = tmp_path / "model.bin"
    result = invoke(
        "curate",
        "quality",
        "train",
        "--positive",
        str(tmp_path / "good.jsonl"),
        "--negative",
        "sql:SELECT text FROM pool WHERE list_contains(tags, 'general')",
        "--text-field",
        "body",
        "--out",
        str(out),
        "--bucket",
        "100000",
        "--dim",
        "16",
    )
    assert result.exit_code == 0, result.output
    for metric in ("precision", "recall", "roc_auc", "heldout"):
        assert metric in result.output
    assert out.is_file()


def test_corpora_compare_and_report(workspace, pool):
    result = invoke("curate", "corpora", "--dalf-min-answer-tokens", "3000")
    assert result.exit_code == 0, result.output
    for name in ("dldq", "dshq", "dlmq", "dalf", "general"):
        assert name in result.output
    manifest = json.loads((workspace.corpus_dir("dalf") / "manifest.json").read_text())
    assert manifest["rule"]["resolved"]["where"] == "answer_tokens > 3000"
    result = invoke("stats", "compare", "dldq", "dshq")
    assert result.exit_code == 0 and "quality p90" in result.output and "dshq" in result.output
    result = invoke("report", "corpora", "dldq", "dshq")
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in workspace.reports_dir.glob("*.png"))
    assert pngs == ["corpora_dldq.png", "corpora_dshq.png"]
    assert (workspace.reports_dir / "corpora_dshq.png").read_bytes()[:4] == b"\x89PNG"
    blocker = workspace.root / "a_file"
    blocker.write_text("")
    result = invoke("report", "corpora", "dshq", "--out", str(blocker))
    assert isinstance(result.exception, ConfigError)
    assert "cannot create the report folder" in str(result.exception)


def test_recipe_rules_and_bad_rule(workspace, pool, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "sources: []\ncorpora:\n  rules:\n    dldq:\n      where: \"tags = 'diverse' AND bogus > 1\"\n"
    )
    result = invoke("curate", "corpora", "--recipe", str(recipe))
    assert isinstance(result.exception, ConfigError)
    assert "corpus rule dldq" in str(result.exception)
    recipe.write_text("corpora:\n  quality_percentile: 150\n")
    result = invoke("curate", "corpora", "--recipe", str(recipe))
    assert isinstance(result.exception, ConfigError) and "quality_percentile" in str(
        result.exception
    )


def test_compare_without_corpora_says_what_to_run(workspace):
    result = invoke("stats", "compare", "dldq")
    assert result.exception is not None and "fl curate corpora" in str(result.exception)
