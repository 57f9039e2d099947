"""SFT given a plan serves each corpus within one example of the plan's tokens, records it in
served.jsonl with the plan and its hash, and refuses recipe settings that contradict the plan."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest

from frontload.errors import ConfigError
from frontload.plan import resolve_plan
from frontload.train.posttrain.recipe import SFTRecipe
from frontload.train.posttrain.sft import sft

from .conftest import arithmetic, write_corpus


def plan_recipe(**overrides) -> SFTRecipe:
    values = {
        "name": "sft_plan",
        "model": "runs/base/hf",
        "eval_fraction": 0.1,
        "lr": 1e-3,
        "global_batch_size": 4,
        "micro_batch_size": 4,
        "max_length": 256,
        "logging_steps": 5,
        "save_steps": 500,
    }
    values.update(overrides)
    return SFTRecipe.model_validate(values)


def corpus_sizes(workspace, name: str) -> list[int]:
    part = workspace.corpus_dir(name) / "part-00000.parquet"
    return pq.read_table(part, columns=["total_tokens"]).column(0).to_pylist()


@pytest.fixture
def two_corpora(toy_workspace):
    """dshq (400 sums) plus dldq (300 sums with bigger numbers), and a plan solved over them."""
    write_corpus(toy_workspace.corpus_dir("dldq"), arithmetic(300, seed=7, high=99))
    from frontload.allocate.config import AllocateConfig
    from frontload.allocate.solve import solve_plan
    from frontload.plan import save_plan

    corpora = {
        "dshq": {"quality": 0.9, "answer_tokens": 6000, "domains": {"math": 1.0}},
        "dldq": {"quality": 0.6, "answer_tokens": 3000, "domains": {"math": 1.0}},
    }
    for name, spec in corpora.items():
        sizes = corpus_sizes(toy_workspace, name)
        spec.update(tokens=float(sum(sizes)), records=float(len(sizes)))
    config = AllocateConfig.model_validate(
        {
            "name": "tiny",
            "corpora": corpora,
            "budgets": {"pretrain": {"tokens": 1e6}, "sft": {"tokens": 5000}},
            "limits": {"dldq": {"min_fraction": {"sft": 0.2}}},
            "trust_region": None,
        }
    )
    plan = solve_plan(config)
    save_plan(plan, toy_workspace.plans_dir / "tiny.yaml")
    return toy_workspace, plan


def test_sft_serves_the_plan_within_one_example(two_corpora):
    workspace, plan = two_corpora
    phase = plan.require_phase("sft")
    planned = {e.corpus: e.tokens for e in phase.entries if e.tokens > 0}
    assert set(planned) == {"dshq", "dldq"} and planned["dldq"] >= 0.2 * 5000 - 1
    result = sft(plan_recipe(), workspace, resolve_plan("tiny", workspace.plans_dir))
    served = [json.loads(x) for x in (result.run_dir / "served.jsonl").read_text().splitlines()]
    assert {r["corpus"] for r in served} == set(planned)
    for row in served:
        longest = max(corpus_sizes(workspace, row["corpus"]))
        assert 0 <= row["tokens"] - planned[row["corpus"]] < longest, row
        assert row["phase"] == "sft" and row["stage"] == "sft" and row["plan"] == "tiny"
        assert row["epochs"] == pytest.approx(
            row["tokens"] / sum(corpus_sizes(workspace, row["corpus"]))
        )
    # every conversation handed to the trainer was trained on (one full pass)
    assert result.train_records == sum(r["examples"] for r in served)
    digest = hashlib.sha256((result.run_dir / "plan.yaml").read_bytes()).hexdigest()
    assert (result.run_dir / "plan.sha256").read_text().strip() == digest
    assert all(r["plan_sha256"] == digest for r in served)


def test_recipe_settings_that_contradict_the_plan_are_errors(two_corpora):
    workspace, plan = two_corpora
    recipe = plan_recipe(corpora=[{"name": "dshq"}], max_steps=4)
    with pytest.raises(ConfigError) as error:
        sft(recipe, workspace, plan)
    message = str(error.value)
    assert "recipe sft_plan contradicts plan tiny" in message
    assert "corpora: [dshq]" in message and "max_steps: 4" in message


def test_runs_without_a_plan_record_what_they_served(toy_workspace):
    recipe = plan_recipe(corpora=[{"name": "dshq", "epochs": 2, "max_records": 100}])
    result = sft(recipe, toy_workspace)
    (row,) = [json.loads(x) for x in (result.run_dir / "served.jsonl").read_text().splitlines()]
    assert row["corpus"] == "dshq" and row["plan"] is None and row["plan_sha256"] is None
    assert row["examples"] == result.train_records == 2 * 90  # 10 held out, 2 epochs
    assert row["epochs"] == pytest.approx(1.8, rel=0.05)


def test_a_max_length_that_would_cut_planned_examples_is_an_error(two_corpora):
    """The trainer cuts conversations longer than max_length: with a plan that would serve less
    than the plan, so the recipe's max_length and the plan are named before any training."""
    workspace, plan = two_corpora
    with pytest.raises(ConfigError) as error:
        sft(plan_recipe(max_length=16), workspace, plan)
    message = str(error.value)
    assert "recipe sft_plan max_length: 16 contradicts plan tiny" in message
    assert "dshq" in message and "of its tokens" in message
    assert not (workspace.runs_dir / "sft_plan" / "served.jsonl").exists()


def test_served_tokens_without_a_plan_leave_out_what_max_length_cuts():
    from frontload.train.posttrain.data import SFTData, cut_at_max_length

    rows = [
        {"phase": "sft", "corpus": "a", "tokens": 300},
        {"phase": "sft", "corpus": "b", "tokens": 40},
    ]
    data = SFTData(train=[[], [], []], rows=rows, sources=["a", "b", "a"])
    cut_at_max_length(data, [100, 40, 200], 100, "r", None)  # a: 200 of 300 kept, b: all
    assert [row["tokens"] for row in data.rows] == [200, 40]
    with pytest.raises(ConfigError, match="a 1 of 2 examples"):
        cut_at_max_length(data, [100, 40, 200], 100, "r", type("P", (), {"name": "p"})())
