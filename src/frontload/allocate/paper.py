"""The front-loading study's corpora and runs, as allocations the response model can evaluate.

Sizes are from the paper (arXiv 2510.03264): 1T pretraining tokens with 20% reasoning data in the
reasoning arms, LDQ 336B tokens (~550-token answers), SHQ 1.2M examples with ~10k-token answers,
LMQ = LDQ union SHQ, SFT on 4.8M samples. Assumed (not published): ~700 tokens per LDQ record,
ALF = 4.8M LDQ records with answers over 4096 tokens (~6.2k tokens each), classifier quality 0.45
for LDQ and 0.9 for SHQ, ALF+SHQ sampled in proportion to records.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from frontload.allocate.pools import CorpusSpec

PRETRAIN_TOKENS = 1e12
REASONING_TOKENS = 0.2 * PRETRAIN_TOKENS
SFT_SAMPLES = 4.8e6


def study_corpora() -> dict[str, CorpusSpec]:
    """The study's corpora with their declared overlaps."""
    return {
        "ldq": CorpusSpec(
            tokens=336e9,
            records=4.8e8,
            quality=0.45,
            answer_tokens=550,
            domains={"math": 0.5, "code": 0.2, "science": 0.3},
        ),
        "shq": CorpusSpec(
            tokens=12.6e9,
            records=1.2e6,
            quality=0.9,
            answer_tokens=10000,
            domains={"math": 0.6, "code": 0.25, "science": 0.15},
        ),
        "lmq": CorpusSpec(union=["ldq", "shq"]),
        "alf": CorpusSpec(
            subset_of="ldq",
            tokens=30e9,
            records=4.8e6,
            quality=0.45,
            answer_tokens=6000,
            domains={"math": 0.5, "code": 0.2, "science": 0.3},
        ),
    }


def _tokens_per_sample(corpus: str) -> float:
    specs = study_corpora()
    if corpus == "lmq":
        return (specs["ldq"].tokens + specs["shq"].tokens) / (
            specs["ldq"].records + specs["shq"].records
        )
    return specs[corpus].tokens / specs[corpus].records


PT_ARMS = {
    "none": [""],
    "LDQ": [f"ldq:{REASONING_TOKENS:.0f}"],
    "SHQ": [f"shq:{REASONING_TOKENS:.0f}"],
    "LMQ": [f"lmq:{REASONING_TOKENS:.0f}"],
    "res_mean3": [f"{c}:{REASONING_TOKENS:.0f}" for c in ("shq", "ldq", "lmq")],
}


def _sft_arm(data: str, scale: float) -> list[str]:
    def one(corpus: str) -> str:
        return f"{corpus}:{scale * SFT_SAMPLES * _tokens_per_sample(corpus):.0f}"

    if data == "mean3":
        return [one(c) for c in ("ldq", "shq", "lmq")]
    if data == "ALF+SHQ":
        alf, shq = 4.8e6, 1.2e6
        parts = [
            f"alf:{scale * SFT_SAMPLES * alf / (alf + shq) * _tokens_per_sample('alf'):.0f}",
            f"shq:{scale * SFT_SAMPLES * shq / (alf + shq) * _tokens_per_sample('shq'):.0f}",
        ]
        return ["+".join(parts)]
    return [one(data.lower())]


def paper_results_path() -> Path:
    """The study's published results table shipped with the package."""
    return Path(str(resources.files("frontload.allocate") / "data" / "paper_results.csv"))


def convert_paper_rows(rows: list[dict]) -> list[dict]:
    """Paper-format rows (pt_reasoning, sft_data, sft_scale) -> experiments rows (allocations)."""
    out = []
    for row in rows:
        if row["stage"] != "sft":
            continue
        scale = float(row["sft_scale"] or 1)
        out.append(
            {
                "run": row["model"],
                "pretrain": "|".join(PT_ARMS[row["pt_reasoning"]]),
                "sft": "|".join(_sft_arm(row["sft_data"], scale)),
                "pretrain_budget": f"{PRETRAIN_TOKENS:.0f}",
                "stage": "sft",
                "category": row["category"],
                "score": row["score"],
            }
        )
    return out


def paper_experiments() -> list[dict]:
    """The study's post-SFT rows as an experiments table (what the default model is fitted on)."""
    with paper_results_path().open(encoding="utf-8") as handle:
        return convert_paper_rows(list(csv.DictReader(handle)))
