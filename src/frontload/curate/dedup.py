"""Exact and MinHash near-dedup, as datatrove's own dedup stages with settings safe for math.

datatrove's default text normalisation turns every number into "0", which would merge problems
that differ only in their numbers; near-dedup here keeps numbers (folding only case, whitespace,
punctuation and diacritics) and weighs a text's sequence of numbers as heavily as its words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
from datatrove.utils.text import ngrams, simplify_text

from frontload.curate.recipe import NearDedupConfig


def exact_content(doc: Document) -> bytes:
    """What exact dedup compares: the normalised text (bytes: datatrove hashes with xxhash64)."""
    return doc.text.encode("utf-8")


def exact_config():
    """datatrove's exact-dedup config (first copy in input order wins)."""
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig

    return ExactDedupConfig(content_getter=exact_content)


def minhash_config(config: NearDedupConfig):
    """datatrove's MinHash config with number-preserving normalisation."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.text import TextNormConfig

    return MinhashConfig(
        n_grams=config.n_grams,
        num_buckets=config.num_buckets,
        hashes_per_bucket=config.hashes_per_bucket,
        seed=config.seed,
        norm_config=TextNormConfig(norm_numbers=False),
        # datatrove 0.10.1's default xxhash rejects the str shingles MinHash passes it
        hash_config=HashConfig(hash_fc="sha1", precision=64),
    )


def exact_signature(folder: Path) -> PipelineStep:
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupSignature

    return ExactDedupSignature(output_folder=str(folder), config=exact_config())


def exact_find(signatures: Path, duplicates: Path) -> PipelineStep:
    from datatrove.pipeline.dedup.exact_dedup import ExactFindDedups

    return ExactFindDedups(
        data_folder=str(signatures), output_folder=str(duplicates), config=exact_config()
    )


def exact_filter(duplicates: Path, exclusion_writer) -> PipelineStep:
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupFilter

    return ExactDedupFilter(
        data_folder=str(duplicates), config=exact_config(), exclusion_writer=exclusion_writer
    )


class NumberAwareMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash signature with two changes for reasoning data.

    Words come from splitting the simplified text on whitespace (after lower-casing and
    punctuation removal spaCy's English tokenizer gives the same words, ~10x slower). And when the
    text holds numbers, as many extra shingles as it has word shingles are derived from its
    sequence of numbers: two texts with the same numbers share all of them (a paraphrase moves up,
    well over the LSH threshold), two texts with different numbers share none (a number-only
    variant moves down, far below it).
    """

    def get_shingles(self, text: str) -> np.ndarray:
        words = simplify_text(text, self.config.norm_config).split()
        hashes = [self._hash_func(" ".join(x)) for x in ngrams(words, self.config.n_grams)]
        numbers = " ".join(word for word in words if any(char.isdigit() for char in word))
        if numbers and hashes:
            hashes += [self._hash_func(f"#numbers {i} {numbers}") for i in range(len(hashes))]
        return np.fromiter(hashes, dtype=np.uint64).reshape((-1, 1))


def near_signature(folder: Path, config: NearDedupConfig) -> PipelineStep:
    return NumberAwareMinhashSignature(output_folder=str(folder), config=minhash_config(config))


def near_buckets(signatures: Path, buckets: Path, config: NearDedupConfig) -> PipelineStep:
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets

    return MinhashDedupBuckets(
        input_folder=str(signatures), output_folder=str(buckets), config=minhash_config(config)
    )


def near_cluster(buckets: Path, clusters: Path, config: NearDedupConfig) -> PipelineStep:
    from datatrove.pipeline.dedup.minhash import MinhashDedupCluster

    return MinhashDedupCluster(
        input_folder=str(buckets),
        output_folder=str(clusters),
        config=minhash_config(config),
        save_cluster_id=True,
    )


def near_filter(clusters: Path, exclusion_writer) -> PipelineStep:
    from datatrove.pipeline.dedup.minhash import MinhashDedupFilter

    return MinhashDedupFilter(
        input_folder=str(clusters), exclusion_writer=exclusion_writer, load_cluster_ids=True
    )


class ClusterLabel(PipelineStep):
    """Copies MinHash's integer cluster id into the record's `dup_cluster` (null when unique)."""

    type = "🫂 - DEDUP"
    name = "dup_cluster"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        for doc in data:
            cluster = doc.metadata.pop("minhash_cluster_id", -1)
            doc.metadata["dup_cluster"] = None if cluster in (None, -1) else f"mh-{cluster:07d}"
            if doc.metadata["dup_cluster"]:
                self.stat_update("in_cluster")
            yield doc
