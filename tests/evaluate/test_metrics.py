import itertools
import random

import pytest

from frontload.evaluate.metrics import (
    avg_at_k,
    bootstrap_ci,
    category_means,
    mean_pass_at_k,
    pass_at_k,
    task_scores,
)


def brute_force_pass_at_k(outcomes, k):
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(s) for s in subsets) / len(subsets)


def test_unbiased_pass_at_k_equals_the_subset_average():
    rng = random.Random(1)
    for _ in range(50):
        n = rng.randint(1, 8)
        outcomes = [rng.random() < 0.4 for _ in range(n)]
        for k in range(1, n + 1):
            assert pass_at_k(n, sum(outcomes), k) == pytest.approx(
                brute_force_pass_at_k(outcomes, k)
            )
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_avg_at_k_is_mean_of_per_problem_means():
    per_problem = {"a": [True, False, False, False], "b": [True, True, True, True]}
    assert avg_at_k(per_problem) == pytest.approx((0.25 + 1.0) / 2)
    assert mean_pass_at_k(per_problem, 1) == pytest.approx(avg_at_k(per_problem))
    scores = task_scores(per_problem, ks=(1, 4, 9))
    assert scores["pass_at_4"] == 1.0 and "pass_at_9" not in scores
    assert scores["ci_low"] <= scores["avg_at_k"] <= scores["ci_high"]


def test_category_means_and_overall_mean_of_means():
    scores = {"gsm8k": 0.6, "math500": 0.2, "humaneval": 0.5}
    means, overall = category_means(
        scores, {"gsm8k": "math", "math500": "math", "humaneval": "code"}
    )
    assert means == {"code": 0.5, "math": pytest.approx(0.4)}
    assert overall == pytest.approx(0.45)  # not the mean of the three benchmarks (0.433)


def test_bootstrap_is_deterministic_and_brackets_the_mean():
    values = [1.0] * 30 + [0.0] * 70
    assert bootstrap_ci(values) == bootstrap_ci(values)
    low, high = bootstrap_ci(values)
    assert low < 0.3 < high and high - low < 0.25
