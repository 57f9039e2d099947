"""Done-when checks on the real benchmark files shipped with fl: graders score the references
as correct."""

import json

import pytest

from frontload.evaluate.tasks import get_task
from frontload.evaluate.tasks.files import load_task_records


def load(files, name):
    task = get_task(name)
    return task, load_task_records(task, files)[1]


def grade_references(files, name, field, mode="base"):
    task, records = load(files, name)
    samples = task.build(records, mode, None, files)
    graded = task.grade(samples, [str(r[field]) for r in records], workers=2)
    misses = [
        (s.id, g.answer, s.reference, g.detail[:200])
        for s, g in zip(samples, graded, strict=False)
        if not g.correct
    ]
    return len(records), misses


def test_gsm8k_references_grade_100_percent(bench_files):
    total, misses = grade_references(bench_files, "gsm8k", "answer")
    assert total == 1319 and misses == []


def test_math500_reference_solutions_at_least_99_percent(bench_files):
    total, misses = grade_references(bench_files, "math500", "solution")
    assert total == 500
    assert len(misses) <= 5, misses


def test_competition_answers_grade_as_integers(bench_files):
    for name, field in (
        ("aime24", "expected_answer"),
        ("aime25", "expected_answer"),
        ("amc23", "answer"),
    ):
        total, misses = grade_references(bench_files, name, field, mode="chat")
        assert total in (30, 40) and misses == []
    task, records = load(bench_files, "aime24")
    samples = task.build(records, "chat", None, bench_files)[:1]
    padded = f"so \\boxed{{{int(samples[0].reference):03d}}}"
    assert task.grade(samples, [padded])[0].correct


def test_humaneval_canonical_solutions_pass(bench_files):
    total, misses = grade_references(bench_files, "humaneval", "canonical_solution")
    assert total == 164 and misses == []


@pytest.mark.slow
def test_mbpp_reference_code_passes(bench_files):
    total, misses = grade_references(bench_files, "mbpp", "code")
    assert total == 427 and misses == []


def test_code_graders_reject_wrong_programs(bench_files):
    task, records = load(bench_files, "humaneval")
    samples = task.build(records, "base", None, bench_files)[:4]
    graded = task.grade(samples, ["    return None\n"] * 4)
    assert [g.verdict for g in graded] == ["failed"] * 4


def test_livecodebench_loads_and_grades_stdin_and_functional(tmp_path):
    """LiveCodeBench is not shipped (its licence does not allow it): a file in its layout."""
    problems = [
        {
            "problem": "Read N, then N distinct integers. Print the 1-based position of the "
            "second largest.",
            "starter_code": "",
            "tests": [
                {"input": "4\n8 2 5 1\n", "output": "3\n", "testtype": "stdin"},
                {"input": "3\n1 9 4\n", "output": "3\n", "testtype": "stdin"},
            ],
        },
        {
            "problem": "Return the running sums of a list.",
            "starter_code": "class Solution:\n    def runningSum(self, nums: List[int]) -> List[int]:\n",
            "tests": json.dumps(
                [{"input": "[1, 2, 3]", "output": "[1, 3, 6]", "testtype": "functional"}]
            ),
        },
    ]
    (tmp_path / "lcb.json").write_text(json.dumps(problems))
    task = get_task("livecodebench")
    samples = task.build(task.load(tmp_path / "lcb.json"), "chat", None, None)
    assert len(samples) == 2
    stdin_sample, functional = samples
    solution = (
        "n = int(input())\na = list(map(int, input().split()))\nprint(a.index(sorted(a)[-2]) + 1)"
    )
    assert task.grade([stdin_sample], [f"```python\n{solution}\n```"])[0].correct
    assert not task.grade([stdin_sample], ["```python\nprint(0)\n```"])[0].correct
    assert functional.meta["method"] == "runningSum"
    wrong = "```python\nclass Solution:\n    def runningSum(self, *a):\n        return None\n```"
    assert task.grade([functional], [wrong])[0].verdict == "failed"
    missing = "```python\nclass Solution:\n    def other(self, *a):\n        return None\n```"
    assert task.grade([functional], [missing])[0].verdict == "error"


@pytest.mark.parametrize("name", ["mmlu", "mmlu_pro"])
def test_multiple_choice_loaders(bench_files, name):
    task, records = load(bench_files, name)
    samples = task.build(records[:50], "base", None, bench_files)
    assert len(samples) == 50
    first = samples[0]
    assert first.prompt.count("Answer:") == 6  # five shots, then the question
    assert first.meta["letters"][first.meta["gold_index"]] == first.reference
    graded = task.grade(samples, [f"The answer is ({s.reference})" for s in samples])
    assert all(g.correct for g in graded)
