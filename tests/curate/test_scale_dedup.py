"""Vectorised MinHash near-dedup on real records: number-only variants of GSM8K train problems
never merge, paraphrases of them do, through datatrove's own bucket and cluster stages."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from datatrove.data import Document

from frontload.benchdata import open_text, shipped_path
from frontload.curate import dedup, minhash
from frontload.curate.minhash import BatchMinHash, normalise
from frontload.curate.recipe import NearDedupConfig
from frontload.quickstart.sample_text import light_edit


def gsm8k_texts(count: int) -> list[str]:
    with open_text(Path(shipped_path("gsm8k_train"))) as handle:
        lines = [line for _, line in zip(range(count), handle, strict=False)]
    return [f"{row['question']}\n\n{row['answer']}" for row in map(json.loads, lines)]


def number_variant(text: str, shift: int) -> str:
    """Every number moved by `shift` ("Sam has 18 cows" -> "Sam has 23 cows"), words untouched."""
    return re.sub(r"\d+", lambda match: str(int(match.group()) + shift), text)


def removed_by_near_dedup(texts: list[str], folder: Path) -> set[int]:
    """Indices datatrove's MinHash stages remove when the texts go through fl's signature step."""
    from datatrove.executor.local import LocalPipelineExecutor

    config = NearDedupConfig()
    docs = [Document(text=text, id=str(i)) for i, text in enumerate(texts)]
    stages = [
        [docs, dedup.near_signature(folder / "sigs", config)],
        [dedup.near_buckets(folder / "sigs", folder / "buckets", config)],
        [dedup.near_cluster(folder / "buckets", folder / "clusters", config, filter_tasks=1)],
    ]
    for i, pipeline in enumerate(stages):
        tasks = config.num_buckets if i == 1 else 1
        logs = str(folder / "logs" / str(i))
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=1, logging_dir=logs).run()
    removed = folder / "clusters" / "000000.remove"
    return set(np.fromfile(removed, dtype="<u4").tolist()) if removed.exists() else set()


def test_number_variants_of_gsm8k_train_never_merge(tmp_path):
    originals = gsm8k_texts(400)
    rng = random.Random(3)
    texts = []
    for i, text in enumerate(originals):
        texts += [text, number_variant(text, 1 + i % 7)]
    paraphrased = range(0, 400, 4)  # a paraphrase of every 4th problem: these must merge
    texts += [light_edit(originals[i], rng, words=1).upper() for i in paraphrased]
    removed = removed_by_near_dedup(texts, tmp_path)
    merged_pairs = [i for i in range(400) if {2 * i, 2 * i + 1} & removed]
    assert not merged_pairs, [originals[i][:80] for i in merged_pairs]
    caught = sum(1 for k, i in enumerate(paraphrased) if {2 * i, 800 + k} & removed)
    assert caught >= 0.95 * len(paraphrased)


def test_batch_signatures_do_not_depend_on_the_batch():
    hasher = BatchMinHash(n_grams=3, num_buckets=4, hashes_per_bucket=2, seed=7)
    texts = ["Sam has 18 cows and 5 goats on the farm.", "too short", "Ünïcode café, naïve résumé"]
    positions, together = hasher.signatures(texts)
    assert positions.tolist() == [0, 2]  # "too short" has no 3-gram: no signature, never merged
    alone = np.concatenate([hasher.signatures([text])[1] for text in texts])
    assert np.array_equal(together, alone)
    again = BatchMinHash(n_grams=3, num_buckets=4, hashes_per_bucket=2, seed=7)
    assert np.array_equal(again.signatures(texts)[1], together)  # same seed, same values
    assert together.max() < 2**31


def test_signatures_do_not_depend_on_the_minhash_window(monkeypatch):
    hasher = BatchMinHash(n_grams=3, num_buckets=4, hashes_per_bucket=2, seed=7)
    texts = ["Sam has 18 cows and 5 goats.", "too short", " ".join(f"w{i}" for i in range(40))]
    positions, expected = hasher.signatures(texts)
    monkeypatch.setattr(minhash, "_CHUNK", 5)  # windows split the long text and span two texts
    again = hasher.signatures(texts)
    assert positions.tolist() == again[0].tolist() == [0, 2]
    assert np.array_equal(again[1], expected)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Héllo,  WORLD!\tSam's 18-cows", b"hello world sam s 18 cows"),
        ("“Quoted” — naïve", b"quoted naive"),
    ],
)
def test_normalise_matches_datatrove_words(text, words):
    from datatrove.utils.text import TextNormConfig, simplify_text

    expected = simplify_text(text, TextNormConfig(norm_numbers=False)).split()
    assert normalise(text).split() == words.split() == [w.encode() for w in expected]
