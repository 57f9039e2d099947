"""Done-when checks on the real benchmark files: graders score the references as correct."""

import pytest

from frontload.evaluate.tasks import get_task


def grade_references(bench_dir, name, field, mode="base"):
    task = get_task(name)
    records = task.load(bench_dir)
    samples = task.build(records, mode, None, bench_dir)
    graded = task.grade(samples, [str(r[field]) for r in records], workers=2)
    misses = [
        (s.id, g.answer, s.reference, g.detail[:200])
        for s, g in zip(samples, graded, strict=False)
        if not g.correct
    ]
    return len(records), misses


def test_gsm8k_references_grade_100_percent(bench_dir):
    total, misses = grade_references(bench_dir, "gsm8k", "answer")
    assert total == 1319 and misses == []


def test_math500_reference_solutions_at_least_99_percent(bench_dir):
    total, misses = grade_references(bench_dir, "math500", "solution")
    assert total == 500
    assert len(misses) <= 5, misses


def test_competition_answers_grade_as_integers(bench_dir):
    for name, field in (
        ("aime24", "expected_answer"),
        ("aime25", "expected_answer"),
        ("amc23", "answer"),
    ):
        total, misses = grade_references(bench_dir, name, field, mode="chat")
        assert total in (30, 40) and misses == []
    task = get_task("aime24")
    samples = task.build(task.load(bench_dir), "chat", None, bench_dir)[:1]
    padded = f"so \\boxed{{{int(samples[0].reference):03d}}}"
    assert task.grade(samples, [padded])[0].correct


def test_humaneval_canonical_solutions_pass(bench_dir):
    total, misses = grade_references(bench_dir, "humaneval", "canonical_solution")
    assert total == 164 and misses == []


@pytest.mark.slow
def test_mbpp_reference_code_passes(bench_dir):
    total, misses = grade_references(bench_dir, "mbpp", "code")
    assert total == 427 and misses == []


def test_code_graders_reject_wrong_programs(bench_dir):
    task = get_task("humaneval")
    samples = task.build(task.load(bench_dir), "base", None, bench_dir)[:4]
    graded = task.grade(samples, ["    return None\n"] * 4)
    assert [g.verdict for g in graded] == ["failed"] * 4


def test_livecodebench_loads_and_grades_stdin_and_functional(bench_dir):
    task = get_task("livecodebench")
    samples = task.build(task.load(bench_dir), "chat", None, bench_dir)
    assert len(samples) == 279
    stdin_sample = samples[0]  # "second largest element: print its index"
    solution = (
        "n = int(input())\na = list(map(int, input().split()))\nprint(a.index(sorted(a)[-2]) + 1)"
    )
    assert task.grade([stdin_sample], [f"```python\n{solution}\n```"])[0].correct
    assert not task.grade([stdin_sample], ["```python\nprint(0)\n```"])[0].correct
    functional = next(s for s in samples if s.meta["tests"][0]["testtype"] == "functional")
    method = functional.meta["method"]
    assert method
    wrong = f"```python\nclass Solution:\n    def {method}(self, *a):\n        return None\n```"
    assert task.grade([functional], [wrong])[0].verdict == "failed"
    missing = "```python\nclass Solution:\n    def other(self, *a):\n        return None\n```"
    assert task.grade([functional], [missing])[0].verdict == "error"


@pytest.mark.parametrize("name", ["mmlu", "mmlu_pro"])
def test_multiple_choice_loaders(bench_dir, name):
    task = get_task(name)
    records = task.load(bench_dir)
    samples = task.build(records[:50], "base", None, bench_dir)
    assert len(samples) == 50
    first = samples[0]
    assert first.prompt.count("Answer:") == 6  # five shots, then the question
    assert first.meta["letters"][first.meta["gold_index"]] == first.reference
    graded = task.grade(samples, [f"The answer is ({s.reference})" for s in samples])
    assert all(g.correct for g in graded)
