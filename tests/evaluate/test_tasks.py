"""Task loaders, prompts and clear errors on synthetic files in the published layouts."""

import json

import pytest
from tests.evaluate.helpers import build, load

from frontload.errors import ConfigError, InputError
from frontload.evaluate.tasks import REGISTRY, get_task, parse_tasks
from frontload.evaluate.tasks.sources import BenchFiles


def test_every_registered_task_loads():
    for name in REGISTRY:
        task = get_task(name)
        assert task.name == name and task.category in {"math", "code", "science", "general"}


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ConfigError) as error:
        parse_tasks("gsm8k,gsm9k")
    assert "gsm9k" in error.value.message and "gsm8k" in error.value.hint
    with pytest.raises(ConfigError):
        parse_tasks(" , ")


def test_malformed_jsonl_names_file_and_line(tmp_path):
    (tmp_path / "gsm8k_test.jsonl").write_text('{"question": "a", "answer": "#### 1"}\n{oops\n')
    with pytest.raises(InputError, match=r"gsm8k_test.jsonl:2"):
        load(get_task("gsm8k"), tmp_path)


def test_missing_fields_and_files_are_clear(tmp_path):
    (tmp_path / "math500_test.jsonl").write_text(json.dumps({"problem": "x"}) + "\n")
    task = get_task("math500")
    with pytest.raises(InputError, match="missing field"):
        build(task, tmp_path, "base", None)
    with pytest.raises(InputError, match="no aime24.jsonl in"):
        load(get_task("aime24"), tmp_path)
    with pytest.raises(ConfigError):
        task.build([], "instruct", None, None)


def test_gsm8k_prompts_are_deterministic_and_exclude_nothing_odd(mini_data):
    task = get_task("gsm8k")
    records = load(task, mini_data)
    first = build(task, mini_data, "base")
    again = build(task, mini_data, "base")
    assert [s.prompt for s in first] == [s.prompt for s in again]
    assert first[0].prompt.count("Question:") == 9 and first[0].prompt.endswith("Answer:")
    assert "The answer is" in first[0].prompt and "####" not in first[0].prompt
    chat = task.build(records, "chat", None, None)
    assert "Question:" not in chat[0].prompt and "\\boxed{}" in chat[0].prompt
    assert [s.reference for s in first] == ["2", "3", "4", "5"]


def test_gsm8k_without_train_file_never_shows_an_item_its_own_answer(tmp_path):
    rows = [{"question": f"q{i}?", "answer": f"w{i} #### {i}"} for i in range(6)]
    (tmp_path / "gsm8k_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = get_task("gsm8k")
    samples = build(task, tmp_path, "base", 3)
    for i, sample in enumerate(samples):
        assert sample.prompt.count("Question:") == 4
        assert sample.prompt.count(f"Question: q{i}?") == 1  # only as the item itself


def test_gsm8k_malformed_shot_file_and_non_object_records_are_clear(tmp_path):
    (tmp_path / "gsm8k_test.jsonl").write_text(json.dumps({"question": "a", "answer": "#### 1"}))
    (tmp_path / "gsm8k_train.jsonl").write_text(json.dumps({"quest": "a", "answer": "#### 1"}))
    task = get_task("gsm8k")
    with pytest.raises(InputError, match="gsm8k_train.jsonl record 0: missing field.*question"):
        build(task, tmp_path, "base", None)
    (tmp_path / "gsm8k_test.jsonl").write_text('{"question": "a", "answer": "#### 1"}\n[1, 2]\n')
    with pytest.raises(InputError, match="record 2: expected a JSON object, found list"):
        load(task, tmp_path)


def test_math500_minerva_prompt(mini_data):
    task = get_task("math500")
    sample = build(task, mini_data, "base", None)[0]
    assert sample.prompt.count("Problem:") == 5 and sample.prompt.endswith("Solution:\n")
    graded = task.grade([sample], ["Final Answer: The final answer is $2$. I hope it is correct."])
    assert graded[0].correct and graded[0].rule == "answer_is"


def test_mmlu_with_letter_answers_and_dev_shots(mini_data):
    task = get_task("mmlu")
    samples = build(task, mini_data, "base", None)
    assert [s.reference for s in samples] == ["B", "A"]
    assert "What is 1+1?" in samples[0].prompt  # the dev example, not a test item
    assert samples[0].choices == [" A", " B", " C", " D"]
    assert task.grade_index(samples[0], 1).correct and not task.grade_index(samples[0], 0).correct


def test_malformed_mmlu_row(tmp_path):
    folder = tmp_path / "mmlu" / "test"
    folder.mkdir(parents=True)
    (folder / "x_test.csv").write_text("q,1,2,3,4,E\n")
    with pytest.raises(InputError, match="x_test.csv:1"):
        load(get_task("mmlu"), tmp_path)


def test_general_loglik_loaders(mini_data):
    arc = build(get_task("arc_c"), mini_data, "base")[0]
    assert arc.choices == [" apple", " rock"] and arc.meta["gold_index"] == 0
    wino_task = get_task("winogrande")
    wino = build(wino_task, mini_data, "base", None)[0]
    assert wino.meta["contexts"][1].endswith("because the table")
    assert wino.choices[0] == " was slippery." and wino.meta["gold_index"] == 1
    hella_task = get_task("hellaswag")
    hella = build(hella_task, mini_data, "base", None)[0]
    assert hella.prompt.startswith("Doors:") and len(hella.choices) == 4
    race_task = get_task("race")
    race = build(race_task, mini_data, "base", None)[0]
    assert "Ann went home" in race.prompt and race.meta["gold_index"] == 0


def test_gpqa_original_csv_is_shuffled_deterministically(tmp_path):
    import csv

    path = tmp_path / "gpqa.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(
            handle,
            [
                "Question",
                "Correct Answer",
                "Incorrect Answer 1",
                "Incorrect Answer 2",
                "Incorrect Answer 3",
            ],
        )
        writer.writeheader()
        writer.writerow(
            {
                "Question": "Q?",
                "Correct Answer": "right",
                "Incorrect Answer 1": "w1",
                "Incorrect Answer 2": "w2",
                "Incorrect Answer 3": "w3",
            }
        )
    task = get_task("gpqa_diamond")
    sample = task.build(task.load(path), "chat", None, None)[0]
    letter = sample.reference
    assert f"{letter}. right" in sample.prompt
    assert task.grade([sample], [f"The answer is ({letter})"])[0].correct


def test_mbpp_and_empty_completions(mini_data):
    task = get_task("mbpp")
    samples = build(task, mini_data, "chat", None)
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    assert [
        g.verdict for g in task.grade(samples * 3, [good, "", "def add(a, b): return a - b"])
    ] == ["passed", "error", "failed"]


def test_hub_names_fail_clearly_without_a_hub(monkeypatch):
    from frontload.evaluate.runner import hub_source

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    task = get_task("gsm8k")
    assert hub_source(task) == "hf:openai/gsm8k"
    with pytest.raises(InputError, match="cannot load hf:openai/gsm8k"):
        task.load(hub_source(task))
    with pytest.raises(InputError, match="no hub dataset"):
        hub_source(get_task("aime24"))


def test_livecodebench_functional_tests_call_the_starter_method(tmp_path):
    problem = {
        "problem": "Add two numbers.",
        "starter_code": "class Solution:\n    def addTwo(self, a: int, b: int) -> int:\n        ",
        "tests": json.dumps(
            [
                {"input": "1\n2", "output": "3", "testtype": "functional"},
                {"input": "5\n-5", "output": "0", "testtype": "functional"},
            ]
        ),
    }
    (tmp_path / "lcb.json").write_text(json.dumps([problem]))
    task = get_task("livecodebench")
    sample = task.build(task.load(tmp_path / "lcb.json"), "chat", None, None)[0]
    assert "def addTwo" in sample.prompt
    good = "```python\nclass Solution:\n    def aaa(self):\n        return 0\n    def addTwo(self, a, b):\n        return a + b\n```"
    wrong = good.replace("return a + b", "return a - b")
    verdicts = [g.verdict for g in task.grade([sample, sample], [good, wrong])]
    assert verdicts == ["passed", "failed"]


def test_default_run_names(tmp_path):
    from frontload.cli.evaluate import model_label

    assert model_label(tmp_path / "runs" / "tiny-sft" / "hf") == "tiny-sft"
    assert model_label(tmp_path / "my-model") == "my-model"


def test_score_predictions_rejects_empty_unreadable_and_bad_sample_numbers(mini_data, tmp_path):
    from frontload.evaluate.score import score_predictions

    def score(name, text):
        path = tmp_path / name
        path.write_text(text)
        return score_predictions("gsm8k", path, BenchFiles.of(mini_data), workers=1)

    rows, scores = score("ok.jsonl", json.dumps({"problem": 0, "completion": "#### 2"}))
    assert scores["category"] == "math" and rows[0]["verdict"] == "passed"
    with pytest.raises(InputError, match="no predictions"):
        score("empty.jsonl", "")
    with pytest.raises(InputError, match="not a readable parquet"):
        score("broken.parquet", "x")
    with pytest.raises(InputError, match="`sample` must be a whole number"):
        score("bad.jsonl", json.dumps({"problem": 0, "completion": "", "sample": "a"}))
