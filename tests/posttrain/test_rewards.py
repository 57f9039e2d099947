"""Verifiable rewards: graders agree with the evaluation's, a raising grader skips and counts."""

from __future__ import annotations

import json

import pytest

from frontload.errors import DataError
from frontload.train.posttrain_recipe import RLRecipe
from frontload.train.rewards import (
    RewardLog,
    build_rewards,
    choice_reward,
    format_reward,
    guarded,
    math_reward,
    task_of,
)
from frontload.train.rl import load_prompts


def chat(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_math_reward_checks_answer_equivalence():
    completions = [chat("so \\boxed{\\frac{1}{2}}"), chat("The answer is 0.5"), chat("it is 3")]
    scores = math_reward(None, completions, reference=["1/2"] * 3, task=["math"] * 3)
    assert scores == [1.0, 1.0, 0.0]


def test_rewards_skip_rows_of_other_tasks():
    completions = [chat("The answer is (B)"), chat("The answer is 4")]
    refs, tasks = ["B", "4"], ["choice", "math"]
    assert choice_reward(None, completions, reference=refs, task=tasks) == [1.0, None]
    assert math_reward(None, completions, reference=refs, task=tasks) == [None, 1.0]
    assert format_reward(None, completions, task=tasks) == [None, 1.0]


def test_task_follows_domain_and_reference():
    assert task_of("code", "assert f(1) == 2") == "code"
    assert task_of("science", "C") == "choice"
    assert task_of("math", "42") == "math"


def test_raising_grader_skips_the_sample_and_counts_it(tmp_path):
    def flaky(prompts, completions, **_):
        if any("boom" in c[0]["content"] for c in completions):
            raise RuntimeError("grader crashed")
        return [1.0 for _ in completions]

    log = RewardLog(tmp_path, samples_per_call=0)
    reward = guarded(flaky, "flaky_reward", log)
    completions = [chat("fine"), chat("boom"), chat("fine too")]
    assert reward([None] * 3, completions, reference=["1"] * 3) == [1.0, None, 1.0]
    assert log.errors == 1
    recorded = json.loads((tmp_path / "reward_errors.jsonl").read_text())
    assert recorded["index"] == 1 and "grader crashed" in recorded["error"]


def test_build_rewards_names_each_kind(tmp_path):
    rewards, names = build_rewards(["math", "format"], 1.0, RewardLog(tmp_path, 2))
    assert names == ["math_reward", "format_reward"]
    assert [r.__name__ for r in rewards] == names


def test_empty_prompt_set_is_a_clear_error(toy_workspace):
    import pyarrow.parquet as pq

    part = toy_workspace.corpus_dir("dshq") / "part-00000.parquet"
    table = pq.read_table(part)
    index = table.column_names.index("reference")
    pq.write_table(table.set_column(index, "reference", [[None] * table.num_rows]), part)
    recipe = RLRecipe(name="rl", model="runs/base/hf", prompts=["dshq"])
    with pytest.raises(DataError, match="no usable prompts"):
        load_prompts(toy_workspace, recipe)


def test_broken_jsonl_prompt_file_names_the_line(workspace, tmp_path):
    from frontload.errors import InputError
    from frontload.train.rl import read_prompt_table

    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "1+1", "reference": "2"}\n\n{broken\n')
    with pytest.raises(InputError, match=r"prompts.jsonl:3: invalid JSON"):
        read_prompt_table(workspace, str(path))
    path.write_text('{"prompt": "1+1", "reference": "2"}\n\n')
    assert read_prompt_table(workspace, str(path)).to_pylist() == [
        {"prompt": "1+1", "reference": "2"}
    ]
