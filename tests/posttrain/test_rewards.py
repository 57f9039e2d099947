"""Verifiable rewards: graders agree with the evaluation's, a raising grader skips and counts."""

from __future__ import annotations

import json

import pytest

from frontload.errors import DataError
from frontload.train.posttrain.recipe import RLRecipe
from frontload.train.posttrain.rewards import (
    RewardLog,
    build_rewards,
    choice_reward,
    format_reward,
    guarded,
    math_reward,
    task_of,
)
from frontload.train.posttrain.rl import load_prompts


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
    from frontload.train.posttrain.rl import read_prompt_table

    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "1+1", "reference": "2"}\n\n{broken\n')
    with pytest.raises(InputError, match=r"prompts.jsonl:3: invalid JSON"):
        read_prompt_table(workspace, str(path))
    path.write_text('{"prompt": "1+1", "reference": "2"}\n\n')
    assert read_prompt_table(workspace, str(path)).to_pylist() == [
        {"prompt": "1+1", "reference": "2"}
    ]


def test_code_reward_runs_real_programs_through_the_sandbox(tmp_path):
    tests = "assert add(2, 3) == 5\nassert add(0, 0) == 0\n"
    completions = [
        chat("```python\ndef add(a, b):\n    return a + b\n```"),
        chat("```python\ndef add(a, b):\n    return a - b\n```"),
        chat("```python\nimport os\nos._exit(0)\n```"),
        chat("The answer is 4"),
    ]
    log = RewardLog(tmp_path, samples_per_call=0)
    rewards, _ = build_rewards(["code"], 3.0, log)
    scores = rewards[0](
        [None] * 4, completions, reference=[tests] * 3 + ["4"], task=["code"] * 3 + ["math"]
    )
    assert scores == [1.0, 0.0, 0.0, None]
    assert log.errors == 0 and log.seen == {"code_reward": 3}


def test_reward_errors_over_five_percent_stop_the_run(tmp_path):
    from frontload.errors import TrainingError

    def broken(prompts, completions, **_):
        if any("bad" in c[0]["content"] for c in completions):
            raise KeyError("reference")
        return [1.0 for _ in completions]

    log = RewardLog(tmp_path, samples_per_call=0)
    reward = guarded(broken, "broken_reward", log)
    reward([None] * 20, [chat("good")] * 20, reference=["1"] * 20)
    reward([None] * 20, [chat("good")] * 19 + [chat("bad")], reference=["1"] * 20)  # 1 of 40
    reward([None] * 20, [chat("good")] * 18 + [chat("bad")] * 2, reference=["1"] * 20)  # 3 of 60
    with pytest.raises(TrainingError, match=r"broken_reward failed on 5 of 80.*KeyError"):
        reward([None] * 20, [chat("good")] * 18 + [chat("bad")] * 2, reference=["1"] * 20)


def test_end_of_run_check_counts_every_sample(tmp_path):
    from frontload.errors import TrainingError

    log = RewardLog(tmp_path, samples_per_call=0)
    log.scored("code_reward", 10)
    log.error("code_reward", 3, RuntimeError("sandbox gone"), chat("x"))
    log.check()  # 10 samples: too few to judge mid-run
    with pytest.raises(TrainingError, match="code_reward failed on 1 of 10.*sandbox gone"):
        log.check(minimum=1)
