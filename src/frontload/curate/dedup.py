"""Exact and MinHash near-dedup, as datatrove's own dedup stages with settings safe for math.

datatrove's default text normalisation turns every number into "0", which would merge problems
that differ only in their numbers; near-dedup here keeps numbers (folding only case, whitespace,
punctuation and diacritics), and two texts share an LSH band only when they hold the same numbers
in the same order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashDedupCluster, MinhashDedupSignature
from datatrove.utils.typeshelper import StatHints

from frontload.curate.minhash import BatchMinHash
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
        # the bucket files hold 32-bit MinHash values (minhash.BatchMinHash)
        hash_config=HashConfig(precision=32),
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
    """datatrove's MinHash signature step, vectorised over batches of documents.

    The signatures come from `minhash.BatchMinHash` (numpy, no per-shingle Python): word 5-gram
    MinHash on text with numbers kept, and each text's sequence of numbers folded into every LSH
    band, so problems that differ only in their numbers never share a band. They are written in
    datatrove's bucket-file format (sorted per bucket), so datatrove's bucket and cluster stages
    run unchanged.
    """

    batch = 512  # documents hashed at once

    def __init__(self, output_folder, config):
        super().__init__(output_folder, config)
        self.hasher = BatchMinHash(
            config.n_grams, config.num_buckets, config.hashes_per_bucket, config.seed
        )

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        # A bucket file is records of `rows` little-endian uint32 hashes then the uint32 document
        # index: exactly the bytes of a C-ordered (documents, rows + 1) uint32 array.
        buckets, rows = self.config.num_buckets, self.config.hashes_per_bucket
        paths = [f"bucket_{bi:03d}/{rank:05d}.minhash.sig" for bi in range(buckets)]
        files = [self.output_folder.open(path, mode="wb") for path in paths]
        texts: list[str] = []
        offset = 0

        def flush() -> None:
            nonlocal offset
            self.stat_update(StatHints.total, value=len(texts), unit="batch")
            positions, signatures = self.hasher.signatures(texts)
            records = np.empty((buckets, len(positions), rows + 1), dtype="<u4")
            records[:, :, :rows] = signatures.reshape(len(positions), buckets, rows).swapaxes(0, 1)
            records[:, :, rows] = positions + offset
            for file, bucket in zip(files, records, strict=True):
                file.write(bucket.tobytes())
            offset += len(texts)
            texts.clear()

        for doc in data:
            texts.append(doc.text)
            if len(texts) >= self.batch:
                with self.track_time():
                    flush()
        with self.track_time():
            if texts:
                flush()
            for file in files:
                file.close()
            for path in paths:  # datatrove's bucket stage merges files sorted by signature
                with self.output_folder.open(path, mode="rb") as handle:
                    records = np.frombuffer(handle.read(), dtype="<u4").reshape(-1, rows + 1)
                # By hash 1, then 2, ..., then index: as big-endian bytes, records compare
                # (memcmp) in that order, so one sort of whole records replaces a 9-key lexsort.
                ordered = np.sort(records.astype(">u4").view(f"V{4 * (rows + 1)}").ravel())
                with self.output_folder.open(path, mode="wb") as handle:
                    handle.write(ordered.view(">u4").astype("<u4").tobytes())


def near_signature(folder: Path, config: NearDedupConfig) -> PipelineStep:
    return NumberAwareMinhashSignature(output_folder=str(folder), config=minhash_config(config))


def near_buckets(signatures: Path, buckets: Path, config: NearDedupConfig) -> PipelineStep:
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets

    return MinhashDedupBuckets(
        input_folder=str(signatures), output_folder=str(buckets), config=minhash_config(config)
    )


def near_cluster(
    buckets: Path, clusters: Path, config: NearDedupConfig, filter_tasks: int
) -> PipelineStep:
    return MinhashClusterForEveryTask(
        filter_tasks,
        input_folder=str(buckets),
        output_folder=str(clusters),
        config=minhash_config(config),
        save_cluster_id=True,
    )


class MinhashClusterForEveryTask(MinhashDedupCluster):
    """datatrove's cluster step, then a (possibly empty) `.remove` and `.clusters` file for every
    filter task: datatrove's filter skips the cluster ids of a task that has no `.remove` file.

    Done inside the stage rather than by the process that runs the stages, so it holds on every
    executor: on Slurm the submitting process is gone (or waiting) when the filter tasks start.
    """

    def __init__(self, filter_tasks: int, **kwargs):
        super().__init__(**kwargs)
        self.filter_tasks = filter_tasks

    def run(self, data: DocumentsPipeline = None, _: int = 0, world_size: int = 1):
        super().run(data, _, world_size)
        for rank in range(self.filter_tasks):
            for suffix in ("remove", "clusters"):
                path = f"{rank:06d}.{suffix}"
                if not self.output_folder.exists(path):
                    self.output_folder.open(path, "wb").close()


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
