"""A tiny CPU pretraining run from recipes/tiny: it learns, switches phases on time, exports a model
that AutoModelForCausalLM loads and generates with, and refuses bad input with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontload.errors import ConfigError, DataError, StageNotReady, TrainingError
from frontload.train.pretrain import pretrain
from frontload.train.recipe import PretrainRecipe, load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def tiny_recipe(arm: str = "ldq", **changes) -> PretrainRecipe:
    """The shipped tiny recipe, shortened for a test: 64-token rows, 2 micro-steps, few steps."""
    recipe = load_recipe(RECIPES / "tiny" / f"pretrain_{arm}.yaml")
    base = {
        "seq_len": 64,
        "global_batch_tokens": 512,
        "micro_batch_size": 4,
        "total_tokens": 512 * 12,
    }
    data = recipe.data.model_copy(update={"validation_tokens": 512})
    return recipe.model_copy(update={**base, "data": data, **changes})


def test_tiny_run_learns_switches_phase_and_exports(token_workspace, unigram_entropy, read_rows):
    recipe = tiny_recipe(total_tokens=512 * 30)
    recipe.log.interval_steps = 1
    recipe.eval.interval_steps = 15
    run = pretrain(recipe, token_workspace)
    rows = read_rows(run)
    train = [row for row in rows if row["kind"] == "train"]
    assert [row["step"] for row in train] == list(range(1, 31))
    assert all(row["run"] == "tiny-ldq" for row in rows)
    # 60% general only, then the mixed phase starts exactly at step 18 (0.6 x 30).
    assert {row["phase"] for row in train[:18]} == {"general"}
    assert {row["phase"] for row in train[18:]} == {"mixed"}
    entropy = unigram_entropy(token_workspace, "general")
    final = sum(row["loss"] for row in train[-5:]) / 5
    assert final < 0.75 * entropy, (final, entropy)
    evals = [row for row in rows if row["kind"] == "eval"]
    assert [row["step"] for row in evals] == [15, 30]
    assert evals[-1]["val_loss_general"] < evals[0]["val_loss_general"]
    assert "val_loss_dldq" in evals[-1]

    from frontload.catalog import Catalog

    with Catalog(token_workspace) as catalog:
        catalog.refresh()
        table = catalog.query(
            "SELECT max(step) AS last FROM train_metrics WHERE run = ? AND kind = 'train'",
            ["tiny-ldq"],
        )
    assert table.column("last").to_pylist() == [30]

    from transformers import AutoModelForCausalLM, AutoTokenizer

    import frontload.model  # noqa: F401  (registers the architecture with the Auto classes)

    model = AutoModelForCausalLM.from_pretrained(run / "hf")
    tokenizer = AutoTokenizer.from_pretrained(run / "hf")
    prompt = tokenizer("the red cat", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 8
    assert tokenizer.decode(out[0, prompt["input_ids"].shape[1] :]).strip()


def test_kill_and_resume_reproduces_the_loss_curve(token_workspace, read_rows, monkeypatch):
    recipe = tiny_recipe(total_tokens=512 * 8)
    recipe.log.interval_steps = 1
    recipe.checkpoint.interval_steps = 3
    recipe.eval.interval_steps = 100
    whole = pretrain(recipe.model_copy(update={"name": "whole"}), token_workspace)

    from frontload.train import metrics as metrics_module

    real_log = metrics_module.MetricsLogger.log

    def dies_at_step_5(self, step, values):
        if step == 5:
            raise KeyboardInterrupt  # killed after the step-3 checkpoint
        real_log(self, step, values)

    monkeypatch.setattr(metrics_module.MetricsLogger, "log", dies_at_step_5)
    cut = recipe.model_copy(update={"name": "cut"}, deep=True)
    # Recomputing activations changes neither the numbers nor the checkpoint's parameter names.
    cut.parallel.activation_checkpointing = ["mamba", "attention", "mlp"]
    with pytest.raises(KeyboardInterrupt):
        pretrain(cut, token_workspace)
    monkeypatch.undo()
    with pytest.raises(TrainingError, match="--resume"):
        pretrain(cut, token_workspace)
    resumed = pretrain(cut, token_workspace, resume=True)

    expected = {row["step"]: row["loss"] for row in read_rows(whole) if row["kind"] == "train"}
    got = {row["step"]: row["loss"] for row in read_rows(resumed) if row["kind"] == "train"}
    assert list(got) == list(range(1, 9))
    assert got == expected  # exactly: same batches, same RNG, same optimizer state


def test_resuming_with_a_changed_model_is_refused(token_workspace):
    recipe = tiny_recipe(total_tokens=512 * 2)
    pretrain(recipe, token_workspace)
    wider = recipe.model_copy(update={"total_tokens": 512 * 4})
    wider.model.overrides = {"hidden_size": 32}
    with pytest.raises(TrainingError, match="model differs"):
        pretrain(wider, token_workspace, resume=True)


def test_bad_input_is_named(token_workspace, tmp_path):
    with pytest.raises(ConfigError, match="not divisible by processes"):
        tiny_recipe(global_batch_tokens=500).grad_accum_steps(1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseq_lenn: 64\n")
    with pytest.raises(ConfigError, match="seq_lenn: unknown key"):
        load_recipe(bad)
    missing = tiny_recipe()
    missing.data.general = "nowhere"
    with pytest.raises(StageNotReady, match="nowhere"):
        pretrain(missing, token_workspace)
    no_share = tiny_recipe()
    no_share.data.phases = []
    with pytest.raises(ConfigError, match="reasoning_fraction"):
        pretrain(no_share, token_workspace)


def test_tokenizer_mismatch_is_a_data_error(token_workspace):
    import json

    manifest = token_workspace.tokens_dir / "dldq" / "manifest.json"
    payload = json.loads(manifest.read_text())
    payload["tokenizer_hash"] = "0000000000000000"
    manifest.write_text(json.dumps(payload))
    recipe = tiny_recipe()
    recipe.data.phases = []
    recipe.data.reasoning_fraction = 0.5
    with pytest.raises(DataError, match="tokenizer"):
        pretrain(recipe, token_workspace)


def test_nan_loss_stops_with_step_and_checkpoint(token_workspace):
    recipe = tiny_recipe(total_tokens=512 * 30)
    recipe.schedule.peak_lr = 1e8
    recipe.schedule.min_lr = 1e8
    recipe.optimizer.grad_clip = None
    recipe.checkpoint.interval_steps = 1
    with pytest.raises(
        TrainingError, match=r"(?s)loss is (nan|inf) at step \d+.*last good checkpoint"
    ):
        pretrain(recipe, token_workspace)


def test_cli_checks_the_recipe_before_starting(tmp_path, token_workspace):
    from typer.testing import CliRunner

    from frontload.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nglobal_batch_tokens: -1\n")
    result = CliRunner().invoke(
        app, ["train", "pretrain", str(bad), "--workspace", str(token_workspace.root)]
    )
    assert isinstance(result.exception, ConfigError)
    assert "global_batch_tokens" in str(result.exception)


def _plan(budget: int, reasoning_share: float):
    from frontload.plan import PhasePlan, Plan, PlanEntry

    reasoning = int(budget * reasoning_share)
    entries = [PlanEntry(corpus="dldq", tokens=reasoning, epochs=1.0, weight=reasoning_share)]
    phase = PhasePlan(
        name="pretrain",
        budget_tokens=budget,
        general_corpus="general",
        general_tokens=budget - reasoning,
        entries=entries,
    )
    return Plan(name="demo", phases=[phase])


def test_plan_gives_sources_share_and_budget(token_workspace, read_rows):
    from frontload.train.phases import plan_phases

    recipe = tiny_recipe("plan", total_tokens=None)  # sets no blend: the plan decides it
    plan = _plan(512 * 3, 0.25)
    assert recipe.total_steps(plan.phases[0].budget_tokens) == 3
    (phase,) = plan_phases(recipe, 3, plan)
    assert phase.weights == pytest.approx({"general": 0.75, "dldq": 0.25})
    staged = tiny_recipe(total_tokens=None)
    with pytest.raises(ConfigError, match="contradicts plan demo"):  # never a silent override
        pretrain(staged, token_workspace, plan=plan)
    run = pretrain(recipe, token_workspace, plan=plan)
    assert [row["tokens"] for row in read_rows(run) if row["kind"] == "train"][-1] == 512 * 3
