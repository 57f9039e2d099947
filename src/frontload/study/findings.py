"""The front-loading study's four findings, judged on the user's own runs.

Each finding is a contrast between models: a signed sum of model groups (a group is the mean of the
models it selects, e.g. the three reasoning-pretrained arms). Computed per seed, the contrast is a
paired difference (same seed = same data order and initialisation on both sides); its mean over
seeds gets a t interval. The study's 8B value of the same contrast comes from the published table
(math category); the verdict compares the sign of our interval with it:
reproduced (interval excludes 0 on the study's side), reversed (excludes 0 on the other side),
inconclusive (contains 0, or a single seed so no interval). Nothing here is tuned per finding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import mean

# Reasoning-pretrained arms; the study's `res_mean3` rows are their mean.
REASONING_ARMS = ("LDQ", "SHQ", "LMQ")
HIGHER_IS_BETTER = {"score": True, "answer_logprob": True, "choice_prob": True, "bpb": False}


@dataclass(frozen=True)
class Group:
    """Models of one stage: pretraining reasoning data in `pt` (a tuple: their mean), SFT data."""

    stage: str
    pt: tuple[str, ...]
    sft: str = ""
    scale: int = 1

    def selects(self, model: dict) -> bool:
        scale = int(model.get("sft_scale", 0 if model["stage"] == "base" else 1))
        return (
            model["stage"] == self.stage
            and model["pt_reasoning"] in self.pt
            and model.get("sft_data", "") == self.sft
            and int(model.get("rl", 0)) == 0
            and (self.stage == "base" or scale == self.scale)
        )

    def published(self, rows: Sequence[dict], category: str) -> float | None:
        """The study's score of this group (res_mean3 for the three reasoning arms)."""
        pt = "res_mean3" if self.pt == REASONING_ARMS else self.pt[0] if len(self.pt) == 1 else None
        for row in rows:
            if (
                row["stage"] == self.stage
                and row["pt_reasoning"] == pt
                and row["sft_data"] == self.sft
                and int(row["rl"]) == 0
                and int(row["sft_scale"]) == (0 if self.stage == "base" else self.scale)
                and row["category"] == category
            ):
                return float(row["score"])
        return None


@dataclass(frozen=True)
class Finding:
    id: int
    title: str
    terms: tuple[tuple[int, Group], ...]  # (sign, group)
    paper_category: str = "math"


FINDINGS = (
    Finding(
        1,
        "reasoning data in pretraining beats adding it only in SFT (after SFT on SHQ)",
        ((1, Group("sft", REASONING_ARMS, "SHQ")), (-1, Group("sft", ("none",), "SHQ"))),
    ),
    Finding(
        2,
        "SFT quality beats SFT scale (SFT on SHQ vs LDQ, reasoning-pretrained arms)",
        ((1, Group("sft", REASONING_ARMS, "SHQ")), (-1, Group("sft", REASONING_ARMS, "LDQ"))),
    ),
    Finding(
        3,
        "doubling low-quality SFT data does not help math (M_LDQ: 2xLDQ vs LDQ)",
        ((1, Group("sft", ("LDQ",), "LDQ", 2)), (-1, Group("sft", ("LDQ",), "LDQ"))),
    ),
    Finding(
        4,
        "high-quality pretraining data has a latent effect (LMQ - LDQ, after SFT minus base)",
        (
            (1, Group("sft", ("LMQ",), "SHQ")),
            (-1, Group("sft", ("LDQ",), "SHQ")),
            (-1, Group("base", ("LMQ",))),
            (1, Group("base", ("LDQ",))),
        ),
    ),
)


def paper_value(finding: Finding, rows: Sequence[dict]) -> float:
    """The contrast on the study's published 8B numbers (percentage points)."""
    values = [group.published(rows, finding.paper_category) for _, group in finding.terms]
    if any(v is None for v in values):
        raise ValueError(f"finding {finding.id}: the published table lacks one of its rows")
    return sum(sign * value for (sign, _), value in zip(finding.terms, values, strict=True))


def t_quantile(level: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, dof))


def contrast_per_seed(
    finding: Finding,
    models: Sequence[dict],
    values: Callable[[str], dict],
    metric: str,
    category: str,
) -> dict:
    """seed -> the contrast's value, for seeds where every group has the metric."""
    per_seed: dict = {}
    seeds = sorted({m.get("seed") for m in models}, key=lambda s: (s is None, s))
    for seed in seeds:
        total = 0.0
        for sign, group in finding.terms:
            found = [
                values(m["eval"]).get(metric, {}).get(category)
                for m in models
                if m.get("seed") == seed and group.selects(m)
            ]
            found = [v for v in found if v is not None]
            if not found:
                break
            total += sign * mean(found)
        else:
            per_seed[seed] = total
    return per_seed


def verdict(low: float | None, high: float | None, paper: float, higher_better: bool) -> str:
    if low is None or high is None:
        return "inconclusive"
    # orient our interval so that positive means "better", like the study's accuracy
    if not higher_better:
        low, high = -high, -low
    if low > 0:
        return "reproduced" if paper > 0 else "reversed"
    if high < 0:
        return "reproduced" if paper < 0 else "reversed"
    return "inconclusive"


def judge_findings(
    models: Sequence[dict],
    values: Callable[[str], dict],
    published: Sequence[dict],
    metric: str = "bpb",
    category: str = "math",
    level: float = 0.95,
) -> list[dict]:
    """Each finding with the study's value and, per metric, our paired difference, interval and
    verdict (`primary` marks the metric the pipeline judges by)."""
    metrics = [metric] + [m for m in ("score", "bpb") if m != metric]
    out = []
    for finding in FINDINGS:
        results = []
        for name in metrics:
            diffs = list(contrast_per_seed(finding, models, values, name, category).values())
            n = len(diffs)
            diff = mean(diffs) if diffs else None
            low = high = None
            if n >= 2:
                sd = math.sqrt(sum((d - diff) ** 2 for d in diffs) / (n - 1))
                half = t_quantile(level, n - 1) * sd / math.sqrt(n)
                low, high = diff - half, diff + half
            paper = paper_value(finding, published)
            results.append(
                {
                    "metric": name,
                    "primary": name == metric,
                    "diff": diff,
                    "low": low,
                    "high": high,
                    "n": n,
                    "verdict": verdict(low, high, paper, HIGHER_IS_BETTER[name])
                    if n
                    else "not run",
                }
            )
        out.append(
            {
                "id": finding.id,
                "title": finding.title,
                "paper": paper_value(finding, published),
                "category": category,
                "results": results,
            }
        )
    return out
