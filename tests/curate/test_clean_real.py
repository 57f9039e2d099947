"""The repetition filter on real, genuine records: GSM8K train (shipped with fl)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from frontload.benchdata import shipped_path
from frontload.curate.clean import top_ngram_fraction

ROOT = Path(__file__).resolve().parents[2]


def test_repetition_false_rejections_on_gsm8k_train():
    spec = importlib.util.spec_from_file_location(
        "curate_clean", ROOT / "benchmarks" / "curate_clean.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.false_rejections(Path(shipped_path("gsm8k_train")))
    assert result["records"] > 7000
    assert result["repetition_rate"] <= 0.001, result["examples"]
    assert result["any_reason_rate"] <= 0.001, result["examples"]


def test_overlapping_ngrams_count_each_word_once():
    """The GSM8K solution the user saw dropped: 1*2*2*...*2 is twelve words, not 36."""
    answer = (
        "4 hours is 4*60=<<4*60=240>>240 minutes.\nIf the doubling time is 20 minutes, then after "
        "240 minutes, the number of bacteria would have doubled 240/20=<<240/20=12>>12 times.\n"
        "Thus, starting with only 1 bacterial cell, after 4 hours, there will be "
        "1*2*2*2*2*2*2*2*2*2*2*2*2= 4,096 bacterial cells\n#### 4096"
    )
    assert top_ngram_fraction(answer) < 0.3
    assert top_ngram_fraction(" ".join(["we add one more apple"] * 30) + " so 30.") > 0.7
