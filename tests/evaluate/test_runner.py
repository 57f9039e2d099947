"""End to end on a tiny random checkpoint: generate, score choices, grade, resume, report, catalog."""

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from frontload.errors import ConfigError
from frontload.evaluate.runner import EvalSettings, run_evaluation


def settings(model, data, **overrides):
    base = {
        "model": str(model),
        "tasks": ["gsm8k", "mmlu", "arc_c", "winogrande", "mbpp"],
        "mode": "base",
        "samples": 2,
        "temperature": 0.8,
        "max_new_tokens": 6,
        "batch_size": 3,
        "limit": 3,
        "data_dir": str(data),
    }
    return EvalSettings(**{**base, **overrides})


def test_run_writes_samples_and_summary_and_resumes(tiny_model, mini_data, tmp_path):
    out = tmp_path / "run"
    rows = run_evaluation(settings(tiny_model, mini_data), out)
    assert [r["task"] for r in rows] == ["gsm8k", "mmlu", "arc_c", "winogrande", "mbpp"]
    gsm = rows[0]
    assert gsm["samples_per_problem"] == 2 and gsm["problems"] == 3 and "pass_at_2" in gsm
    assert rows[1]["samples_per_problem"] == 1  # log-likelihood: one scored "sample"
    assert gsm["settings"]["temperature"] == 0.8 and gsm["versions"]["torch"] != "missing"
    assert gsm["data_hash"] and gsm["task_version"] == "2"  # 2: no calculator annotations
    table = pq.read_table(out / "samples.parquet").to_pylist()
    assert len(table) == 3 * 2 + 2 + 1 + 1 + 1 * 2
    assert {r["verdict"] for r in table} <= {"passed", "failed", "timeout", "error"}
    mmlu = [r for r in table if r["task"] == "mmlu"]
    assert all(r["rule"] == "loglik" and r["answer"] in "ABCD" for r in mmlu)
    summary = json.loads((out / "summary.json").read_text())
    assert summary[0]["score"] == pytest.approx(
        sum(r["verdict"] == "passed" for r in table if r["task"] == "gsm8k") / 6
    )

    before = {(r["task"], r["problem"], r["sample"]): r["completion"] for r in table}
    parts = sorted((out / "parts").glob("gsm8k-*.parquet"))
    parts[1].unlink()
    run_evaluation(settings(tiny_model, mini_data), out)
    after = pq.read_table(out / "samples.parquet").to_pylist()
    assert {(r["task"], r["problem"], r["sample"]): r["completion"] for r in after} == before

    with pytest.raises(ConfigError, match="different settings"):
        run_evaluation(settings(tiny_model, mini_data, temperature=0.1), out)


def test_cli_run_score_report_and_catalog(tiny_model, mini_data, workspace, tmp_path):
    from frontload.catalog import Catalog
    from frontload.cli import app

    runner = CliRunner()
    common = [
        "--model",
        str(tiny_model),
        "--data-dir",
        str(mini_data),
        "--limit",
        "2",
        "--max-new-tokens",
        "5",
    ]
    first = runner.invoke(
        app,
        ["evaluate", "run", "--tasks", "gsm8k,math500", "--mode", "chat", "--name", "a", *common],
    )
    assert first.exit_code == 0, first.output
    second = runner.invoke(
        app, ["evaluate", "run", "--tasks", "gsm8k,mmlu", "--name", "b", *common]
    )
    assert second.exit_code == 0, second.output
    with Catalog(workspace) as catalog:
        catalog.refresh()
        query = "SELECT task, count(*) AS n FROM eval_samples GROUP BY task"
        counts = {row["task"]: row["n"] for row in catalog.query(query).to_pylist()}
        runs = (
            catalog.query("SELECT DISTINCT run FROM eval_summary ORDER BY run")
            .column("run")
            .to_pylist()
        )
    assert counts == {"gsm8k": 4, "math500": 2, "mmlu": 2} and runs == ["a", "b"]

    report = runner.invoke(app, ["report", "eval", "a", "b"])
    assert report.exit_code == 0, report.output
    markdown = (workspace.reports_dir / "eval.md").read_text()
    assert "| Model | Overall | Math | Science | gsm8k | math500 | mmlu |" in markdown
    assert "\n| a | " in markdown and "\n| b | " in markdown
    assert (workspace.reports_dir / "eval.png").stat().st_size > 1000

    predictions = tmp_path / "preds.jsonl"
    predictions.write_text(
        "\n".join(json.dumps({"problem": str(i), "completion": f"#### {i + 2}"}) for i in range(4))
    )
    scored = runner.invoke(
        app,
        [
            "evaluate",
            "score",
            "--task",
            "gsm8k",
            "--predictions",
            str(predictions),
            "--data-dir",
            str(mini_data),
            "--out",
            str(tmp_path / "graded.parquet"),
        ],
    )
    assert scored.exit_code == 0, scored.output
    assert "100.0" in scored.output
    assert [r["verdict"] for r in pq.read_table(tmp_path / "graded.parquet").to_pylist()] == [
        "passed"
    ] * 4

    bad = runner.invoke(app, ["evaluate", "run", "--tasks", "nope", *common])
    assert bad.exit_code != 0


def test_longer_limit_refills_the_short_last_chunk(tiny_model, mini_data, tmp_path):
    out = tmp_path / "grow"
    small = settings(tiny_model, mini_data, tasks=["gsm8k"], limit=1, max_new_tokens=2)
    assert run_evaluation(small, out)[0]["problems"] == 1
    rows = run_evaluation(
        settings(tiny_model, mini_data, tasks=["gsm8k"], limit=2, max_new_tokens=2), out
    )
    assert rows[0]["problems"] == 2
    table = pq.read_table(out / "samples.parquet").to_pylist()
    assert sorted((r["problem"], r["sample"]) for r in table) == [
        ("0", 0),
        ("0", 1),
        ("1", 0),
        ("1", 1),
    ]


def test_checkpoint_whose_weights_do_not_match_its_config_is_an_input_error(tiny_model, tmp_path):
    import shutil

    from frontload.errors import InputError
    from frontload.evaluate.generation import load_model

    folder = tmp_path / "edited"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_size": 16}))
    with pytest.raises(InputError, match="cannot load the model"):
        load_model(folder, device="cpu")

    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer_config.json").unlink()
    with pytest.raises(InputError, match="has no tokenizer"):
        load_model(folder, device="cpu")


def test_tokenizer_larger_than_the_embeddings_is_an_input_error(tiny_model, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    from frontload.errors import InputError
    from frontload.evaluate.generation import load_model

    folder = tmp_path / "other-tokenizer"
    shutil.copytree(tiny_model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = json.loads((folder / "config.json").read_text())["vocab_size"]
    tokenizer.add_tokens([f"<extra{i}>" for i in range(rows - len(tokenizer) + 5)])
    tokenizer.save_pretrained(folder)
    with pytest.raises(InputError, match=r"tokenizer has \d+ tokens, the model's embeddings"):
        load_model(folder, device="cpu")


def test_settings_refuse_greedy_multi_sampling_and_unknown_modes(tiny_model, mini_data):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="identical greedy completions"):
        settings(tiny_model, mini_data, temperature=0.0)  # samples=2
    with pytest.raises(ValidationError, match="mode"):
        settings(tiny_model, mini_data, mode="bas")
    assert settings(tiny_model, mini_data, temperature=0.0, samples=1).samples == 1
