"""SFT: the loss on held-out assistant tokens falls; packing keeps documents apart; bad input."""

from __future__ import annotations

import json

import pytest

from frontload.errors import ConfigError, DataError
from frontload.train.posttrain.recipe import SFTRecipe
from frontload.train.posttrain.sft import sft


def tiny_recipe(**overrides) -> SFTRecipe:
    values = {
        "name": "sft_toy",
        "model": "runs/base/hf",
        "corpora": [{"name": "dshq", "max_records": 240}],
        "eval_fraction": 0.1,
        "lr": 3e-3,
        "global_batch_size": 4,
        "micro_batch_size": 4,
        "max_length": 256,
        "max_steps": 30,
        "logging_steps": 5,
        "save_steps": 15,
    }
    values.update(overrides)
    return SFTRecipe.model_validate(values)


def test_sft_lowers_held_out_assistant_loss(toy_workspace):
    result = sft(tiny_recipe(), toy_workspace)
    assert result.steps == 30
    assert result.eval_loss_before is not None and result.eval_loss_after is not None
    assert result.eval_loss_after < result.eval_loss_before - 0.5
    assert (result.hf_dir / "config.json").is_file()
    rows = [
        json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert any("loss" in row for row in rows) and all(row["run"] == "sft_toy" for row in rows)


def test_sft_resumes_from_checkpoint(toy_workspace):
    sft(tiny_recipe(max_steps=15), toy_workspace)
    result = sft(tiny_recipe(max_steps=30), toy_workspace)
    assert result.steps == 30
    assert result.eval_loss_before is None  # resumed: no fresh baseline


def test_sft_mixture_without_assistant_turns_is_an_error(toy_workspace):
    import pyarrow.parquet as pq

    part = toy_workspace.corpus_dir("dshq") / "part-00000.parquet"
    table = pq.read_table(part)
    empty = table.set_column(
        table.column_names.index("response"), "response", [[""] * table.num_rows]
    )
    pq.write_table(empty, part)
    with pytest.raises(DataError, match="assistant turn"):
        sft(tiny_recipe(), toy_workspace)


def test_tokenizer_larger_than_model_is_an_error(toy_workspace, tiny_model_factory):
    tiny_model_factory(toy_workspace.runs_dir / "small" / "hf", vocab_size=64)
    with pytest.raises(ConfigError, match="embeds only 64"):
        sft(tiny_recipe(model="runs/small/hf"), toy_workspace)


def test_packed_documents_do_not_see_each_other(toy_workspace):
    """The padding-free batch TRL builds gives doc B the same logits as B alone."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from frontload.train.posttrain.common import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(toy_workspace, "runs/base/hf", None)
    model.eval()
    doc_a = tokenizer("What is 1+2? 1+2=3. The answer is 3.")["input_ids"]
    doc_b = tokenizer("What is 7+5? 7+5=12.")["input_ids"]
    collator = DataCollatorForLanguageModeling(
        pad_token_id=tokenizer.pad_token_id, padding_free=True
    )
    batch = collator([{"input_ids": doc_a}, {"input_ids": doc_b}])
    assert batch["position_ids"][0, len(doc_a)] == 0
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        packed = model(**inputs).logits[0, len(doc_a) :]
        alone = model(input_ids=torch.tensor([doc_b])).logits[0]
        shifted = model(input_ids=torch.tensor([doc_a + doc_b])).logits[0, len(doc_a) :]
    torch.testing.assert_close(packed, alone, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(shifted, alone, atol=1e-4)  # the check can fail: context does leak


def test_plan_without_sft_phase_is_an_error(toy_workspace):
    from frontload.plan import PhasePlan, Plan, save_plan
    from frontload.train.posttrain.data import sft_data

    plan = Plan(name="p", phases=[PhasePlan(name="pretrain", budget_tokens=0)])
    save_plan(plan, toy_workspace.plans_dir / "p.yaml")
    with pytest.raises(ConfigError, match="has no sft phase"):
        sft_data(toy_workspace, tiny_recipe(corpora=[], max_steps=-1), plan)


def test_tokenizer_other_than_the_models_is_an_error(toy_workspace, tmp_path):
    from frontload.data.tokenizer import train_tokenizer

    other = train_tokenizer(["completely different text " * 50] * 20, 300, tmp_path / "other")
    with pytest.raises(ConfigError, match="not the one model"):
        sft(tiny_recipe(tokenizer=str(other)), toy_workspace)
