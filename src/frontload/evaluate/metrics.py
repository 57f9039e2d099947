"""Scores as the study reports them: avg@k, unbiased pass@k, category means, overall mean of means.

avg@k is the mean correctness over the k samples of each problem, averaged over problems (the
study's "avg of 16/32 samples"); pass@k uses the unbiased estimator of Chen et al. (2021).
Bootstrap intervals resample problems, not samples, since samples of one problem are correlated.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with n samples of which c are correct: 1 - C(n-c,k)/C(n,k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def group_by_problem(rows: Iterable[tuple[str, bool]]) -> dict[str, list[bool]]:
    """(problem id, correct) rows -> {problem id: [correct per sample]}."""
    grouped: dict[str, list[bool]] = defaultdict(list)
    for problem, correct in rows:
        grouped[problem].append(bool(correct))
    return dict(grouped)


def avg_at_k(per_problem: Mapping[str, Sequence[bool]]) -> float:
    """Mean over problems of the fraction of correct samples."""
    if not per_problem:
        return 0.0
    return sum(sum(v) / len(v) for v in per_problem.values()) / len(per_problem)


def mean_pass_at_k(per_problem: Mapping[str, Sequence[bool]], k: int) -> float:
    """pass@k averaged over problems (problems with fewer than k samples are an error)."""
    if not per_problem:
        return 0.0
    return sum(pass_at_k(len(v), sum(v), k) for v in per_problem.values()) / len(per_problem)


def bootstrap_ci(
    values: Sequence[float], iterations: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-problem values."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(iterations))
    tail = (1.0 - level) / 2
    low = means[int(tail * (iterations - 1))]
    high = means[int(round((1.0 - tail) * (iterations - 1)))]
    return (low, high)


def task_scores(per_problem: Mapping[str, Sequence[bool]], ks: Sequence[int] = (1,)) -> dict:
    """avg@k with its bootstrap interval and pass@k for each k the samples allow."""
    samples = min((len(v) for v in per_problem.values()), default=0)
    per_problem_means = [sum(v) / len(v) for v in per_problem.values()]
    low, high = bootstrap_ci(per_problem_means)
    scores = {
        "problems": len(per_problem),
        "samples_per_problem": samples,
        "avg_at_k": avg_at_k(per_problem),
        "ci_low": low,
        "ci_high": high,
    }
    for k in sorted(set(ks)):
        if 1 <= k <= samples:
            scores[f"pass_at_{k}"] = mean_pass_at_k(per_problem, k)
    return scores


def category_means(
    scores: Mapping[str, float], categories: Mapping[str, str]
) -> tuple[dict[str, float], float]:
    """Category score = mean of its benchmarks; overall = mean of the category means."""
    by_category: dict[str, list[float]] = defaultdict(list)
    for task, score in scores.items():
        by_category[categories[task]].append(score)
    means = {cat: sum(v) / len(v) for cat, v in sorted(by_category.items())}
    overall = sum(means.values()) / len(means) if means else 0.0
    return means, overall


# Likelihood metrics (DataDecide / OLMES): continuous, so small models that all score 0% accuracy
# still rank; the runner computes them in teacher-forced passes over the gold solution or options.
LIKELIHOOD_METRICS = ("bpb", "answer_logprob", "choice_prob")


def bits_per_byte(logprob: float, text: str) -> float | None:
    """Bits per UTF-8 byte of `text` whose tokens have summed natural-log probability `logprob`.

    Per byte rather than per token, so models with different tokenizers compare."""
    size = len(text.encode("utf-8"))
    return -logprob / (math.log(2) * size) if size else None


def choice_probability(logprobs: Sequence[float], gold: int) -> float:
    """Probability of the gold option renormalised over the options (softmax of their
    log-likelihoods): 1/n for a model with no preference, 1 for a certain one."""
    top = max(logprobs)
    weights = [math.exp(value - top) for value in logprobs]
    return weights[gold] / sum(weights)


def mean_defined(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are set (None when none is): tasks without a gold solution have
    no bpb, and the summary says so instead of reporting 0."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(kept) / len(kept) if kept else None


def mean_and_se(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean across seeds and its standard error (None with a single seed: noise not measured)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def signal_to_noise(per_arm: Mapping[str, Sequence[float]]) -> float | None:
    """Spread across arms over spread across seeds: the standard deviation of the arm means
    divided by the pooled within-arm (seed) standard deviation. Above ~1, the metric separates the
    arms by more than reseeding moves one arm; None without two arms and two seeds somewhere."""
    arms = [list(v) for v in per_arm.values() if v]
    means = [sum(v) / len(v) for v in arms]
    if len(means) < 2:
        return None
    grand = sum(means) / len(means)
    between = math.sqrt(sum((m - grand) ** 2 for m in means) / (len(means) - 1))
    pooled = [(sum((x - m) ** 2 for x in v), len(v) - 1) for v, m in zip(arms, means, strict=True)]
    dof = sum(d for _, d in pooled)
    if dof == 0:
        return None
    within = math.sqrt(sum(s for s, _ in pooled) / dof)
    if within == 0:
        return math.inf if between > 0 else None
    return between / within


def within_group_signal_to_noise(
    groups: Mapping[str, Mapping[str, Sequence[float]]],
) -> float | None:
    """`signal_to_noise` of arms that share a group, their group's mean taken out: the spread of
    arm means within groups (pooled over groups) over the pooled seed standard deviation. With
    groups = pretraining allocations and arms = SFT choices on them, it is the SFT phase's signal;
    None without a group of two arms and two seeds somewhere."""
    between_ss, between_dof, within_ss, within_dof = 0.0, 0, 0.0, 0
    for arms in groups.values():
        lists = [list(v) for v in arms.values() if v]
        if len(lists) < 2:
            continue
        means = [sum(v) / len(v) for v in lists]
        grand = sum(means) / len(means)
        between_ss += sum((m - grand) ** 2 for m in means)
        between_dof += len(means) - 1
        within_ss += sum(sum((x - m) ** 2 for x in v) for v, m in zip(lists, means, strict=True))
        within_dof += sum(len(v) - 1 for v in lists)
    if between_dof == 0 or within_dof == 0:
        return None
    between, within = math.sqrt(between_ss / between_dof), math.sqrt(within_ss / within_dof)
    if within == 0:
        return math.inf if between > 0 else None
    return between / within
