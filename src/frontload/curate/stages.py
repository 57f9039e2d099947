"""A curation recipe as datatrove stages: read+normalise -> clean -> exact dedup -> MinHash
near-dedup -> decontaminate -> [quality] -> [token counts] -> pool, each stage ending where datatrove
needs a global barrier; and the folders of one run under `curate/runs/<run_id>/`."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from frontload.curate import dedup, siblings
from frontload.curate.clean import CleanFilter
from frontload.curate.decontam import DecontamFilter
from frontload.curate.length import ensure_tokenizer
from frontload.curate.length_step import length_steps
from frontload.curate.quality_step import quality_steps
from frontload.curate.readers import SourceFile, iter_raw, map_records
from frontload.curate.recipe import CurateRecipe
from frontload.curate.steps import Normalise, RecordWriter, SourceReader, StagedReader
from frontload.workspace import Workspace

DROP_REASONS = {"exact_dedup": "exact_duplicate", "near_dedup": "near_duplicate"}


@dataclass
class StageLayout:
    """What the stats need to know of a stage once it has run (also kept with a Slurm run)."""

    name: str
    tasks: int
    labels: list[str | None]  # per step: the name in curate_steps, or None (not reported)
    kinds: list[str]  # per step: its class name (the name of a step that only reports time)


@dataclass
class Stage:
    """One datatrove pipeline run: its steps, task count, and the step names to report."""

    name: str
    steps: list
    tasks: int
    labels: list[str | None]  # per step: the name in curate_steps, or None (not reported)

    def layout(self) -> StageLayout:
        return StageLayout(
            self.name, self.tasks, self.labels, [type(s).__name__ for s in self.steps]
        )


def run_id_for(recipe: CurateRecipe, files: list[SourceFile]) -> str:
    """Same recipe and same input files -> same run (so a rerun resumes it)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(recipe.model_dump_json().encode())
    for file in files:
        digest.update(file.fingerprint().encode())
    return digest.hexdigest()


def sample_texts(files: list[SourceFile], limit: int) -> Iterator[str]:
    """Texts from the start of every file, round-robin, to train a missing tokenizer."""
    per_file = max(1, limit // max(1, len(files)))
    for file in files:
        taken = 0
        for _, raw in iter_raw(file):
            if taken >= per_file:
                break
            if isinstance(raw, dict):
                with contextlib.suppress(ValueError):
                    yield map_records(raw, file.source, "")[0][0]["text"]
                    taken += 1


class RunFolders:
    """The folders of one run under `curate/runs/<run_id>/`."""

    def __init__(self, workspace: Workspace, run_id: str):
        self.root = workspace.curate_state_dir / "runs" / run_id
        self.logs = self.root / "logs"
        self.out_pool = self.root / "out" / "pool"
        self.out_removed = self.root / "out" / "removed"
        self.index = self.root / "decontam_index.npz"
        self.done = self.root / "DONE"

    def work(self, name: str) -> Path:
        return self.root / "work" / name


def build_stages(
    recipe: CurateRecipe,
    workspace: Workspace,
    files: list[SourceFile],
    folders: RunFolders,
    tokenizer: Path,
) -> list[Stage]:
    """The recipe as datatrove stages (each stage ends where datatrove needs a global barrier)."""
    tasks = recipe.executor.tasks

    def removed(step: str) -> RecordWriter:
        return RecordWriter(folders.out_removed / step, step, DROP_REASONS.get(step, ""))

    head = [SourceReader(files, folders.out_removed / "malformed"), Normalise(recipe.normalise)]
    labels: list[str | None] = ["read", "normalise"]
    if siblings.explodes(recipe.sources):  # generations a source's policy leaves out
        head.append(siblings.GenerationFilter(removed("generations")))
        labels.append("generations")
    if recipe.clean.enabled:
        head.append(CleanFilter(recipe.clean, removed("clean")))
        labels.append("clean")
    stages: list[Stage] = []
    staged = folders.work("staged_ingest")
    if recipe.exact_dedup.enabled:
        sigs, dups = folders.work("exact_sigs"), folders.work("exact_dups")
        head += [RecordWriter(staged), dedup.exact_signature(sigs)]
        stages.append(Stage("ingest", head, tasks, [*labels, None, None]))
        stages.append(Stage("exact_find", [dedup.exact_find(sigs, dups)], 1, [None]))
        head = [StagedReader(staged), dedup.exact_filter(dups, removed("exact_dedup"))]
        labels = [None, "exact_dedup"]
    near = recipe.near_dedup
    if near.enabled:
        staged_near = folders.work("staged_near")
        sigs, buckets = folders.work("minhash_sigs"), folders.work("minhash_buckets")
        clusters = folders.work("minhash_clusters")
        head += [RecordWriter(staged_near), dedup.near_signature(sigs, near)]
        stages.append(Stage("near_signatures", head, tasks, [*labels, None, None]))
        bucket_step = dedup.near_buckets(sigs, buckets, near)
        stages.append(Stage("near_buckets", [bucket_step], near.num_buckets, [None]))
        cluster_step = dedup.near_cluster(buckets, clusters, near, filter_tasks=tasks)
        stages.append(Stage("near_clusters", [cluster_step], 1, [None]))
        head = [
            StagedReader(staged_near),
            dedup.near_filter(clusters, removed("near_dedup")),
            dedup.ClusterLabel(),
        ]
        labels = [None, "near_dedup", None]
        if siblings.keeps_siblings(recipe.sources):  # siblings are not copies of each other
            keeper = siblings.SiblingKeeper(removed("near_dedup"))
            head[1] = dedup.near_filter(clusters, keeper.held)
            head.insert(2, keeper)
            labels.insert(2, "keep_siblings")
    decontam = recipe.decontam
    if decontam.enabled and decontam.benchmarks:
        head.append(DecontamFilter(folders.index, decontam.action, removed("decontam")))
        labels.append("decontam")
    for step in optional_steps(recipe, workspace, tokenizer):
        head.append(step)
        labels.append(getattr(step, "name", None) or type(step).__name__)
    head.append(RecordWriter(folders.out_pool))
    labels.append("write")
    stages.append(Stage("finalize", head, tasks, labels))
    return stages


def optional_steps(recipe: CurateRecipe, workspace: Workspace, tokenizer: Path) -> list:
    """Quality scoring (when the recipe has a `quality:` section) and token counts."""
    steps: list = []
    if recipe.quality is not None:
        steps += quality_steps(recipe.quality, workspace, recipe.sources)
    return steps + length_steps(recipe.length, workspace, tokenizer)


def prepare_tokenizer(recipe: CurateRecipe, workspace: Workspace, files: list[SourceFile]) -> Path:
    """The tokenizer for token counts (trained on a sample when missing)."""
    limit = recipe.length.sample_records
    return ensure_tokenizer(recipe.length, workspace, sample_texts(files, limit))
