"""`fl curate run`: the curation recipe as a chain of datatrove stages on datatrove's executors.

read+normalise -> clean -> exact dedup -> MinHash near-dedup -> decontaminate -> [quality] ->
[token counts] -> pool. Each stage keeps datatrove's completion markers in
`curate/runs/<run_id>/logs/<stage>/`, so a killed run resumes where it stopped; outputs are
published into `pool/` and `removed/` only once every stage has finished and no source was
(almost) wholly rejected (`publish.py`); until then the previous pool stays as it was.

Locally and on Ray the stages run one after the other in this process. On Slurm they are
submitted as dependent jobs and followed to the end (`slurm.py`), or left running (`wait=False`)
for `curation_status` or a rerun to publish.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from frontload.curate import slurm
from frontload.curate.executors import connect, console_to, make_executor
from frontload.curate.publish import (
    check_rejections,
    damaged_outputs,
    publish,
    start_or_resume,
)
from frontload.curate.readers import (
    SourceFile,
    check_mapping,
    iter_raw,
    map_records,
    resolve_sources,
)
from frontload.curate.recipe import CurateRecipe
from frontload.errors import InputError
from frontload.workspace import Catalog, Workspace

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


@dataclass
class CurateResult:
    """What a run produced."""

    run_id: str
    pool_records: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False
    submitted: bool = False  # Slurm: jobs submitted, not waited for (`fl curate status`)
    jobs: dict[str, str] = field(default_factory=dict)  # Slurm: stage -> job id
    corpora: dict | None = None


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
    from frontload.curate import dedup, siblings
    from frontload.curate.clean import CleanFilter
    from frontload.curate.decontam import DecontamFilter
    from frontload.curate.steps import Normalise, RecordWriter, SourceReader, StagedReader

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
        from frontload.curate.quality_step import quality_steps

        steps += quality_steps(recipe.quality, workspace, recipe.sources)
    from frontload.curate.length_step import length_steps

    return steps + length_steps(recipe.length, workspace, tokenizer)


def prepare_tokenizer(recipe: CurateRecipe, workspace: Workspace, files: list[SourceFile]) -> Path:
    """The tokenizer for token counts (trained on a sample when missing)."""
    from frontload.curate.length import ensure_tokenizer

    limit = recipe.length.sample_records
    return ensure_tokenizer(recipe.length, workspace, sample_texts(files, limit))


def run_curation(recipe: CurateRecipe, workspace: Workspace, wait: bool = True) -> CurateResult:
    """Run (or resume) the recipe; returns the per-step statistics of the run.

    On Slurm, `wait=False` returns once the jobs are submitted (`CurateResult.submitted`);
    `curation_status` or a rerun publishes the pool when they have finished.
    """
    workspace.ensure()
    files = resolve_sources(recipe.sources, workspace.root)
    for file in files:
        check_mapping(file)
    run_id = run_id_for(recipe, files)
    folders = RunFolders(workspace, run_id)
    if folders.done.exists():
        damaged = damaged_outputs(workspace)
        if not damaged:
            return finish(recipe, workspace, run_id, folders, resumed=True)
        logger.warning(f"{damaged[0]} is unreadable: curating again to replace the pool")
        shutil.rmtree(folders.root)
    # Everything that can fail on a recipe mistake (benchmarks, tokenizer, quality model) runs
    # before start_or_resume, so a bad recipe never costs the previous pool.
    index = None
    if recipe.decontam.enabled and recipe.decontam.benchmarks:
        from frontload.curate.decontam import DecontamIndex, build_index

        if folders.index.exists():
            DecontamIndex.load(folders.index)  # a resumed run's index is data: refuse a bad one
        else:
            index = build_index(recipe.decontam, workspace.root)
    tokenizer = prepare_tokenizer(recipe, workspace, files)
    stages = build_stages(recipe, workspace, files, folders, tokenizer)
    connect(recipe.executor)  # an unreachable cluster fails here, before the pool is touched
    resumed = start_or_resume(workspace, folders.root)
    if index is not None:
        index.save(folders.index)
    if recipe.executor.kind == "slurm":
        return run_on_slurm(recipe, workspace, folders, stages, resumed, wait)
    executors = [make_executor(recipe.executor, s, folders.logs / s.name) for s in stages]
    run_local(stages, executors, folders)
    return publish_run(recipe, workspace, folders, [s.layout() for s in stages], resumed)


def publish_run(
    recipe: CurateRecipe,
    workspace: Workspace,
    folders: RunFolders,
    layouts: list[StageLayout],
    resumed: bool,
) -> CurateResult:
    """Every stage has finished: check the rejections, sum the stats, swap the pool in."""
    run_id = folders.root.name
    check_rejections(folders.out_pool, folders.out_removed, [s.name for s in recipe.sources])
    collect_stats(layouts, folders, run_id, workspace)
    publish(folders.out_pool, folders.out_removed, workspace, run_id)
    folders.done.touch()
    return finish(recipe, workspace, run_id, folders, resumed=resumed)


def run_on_slurm(
    recipe: CurateRecipe,
    workspace: Workspace,
    folders: RunFolders,
    stages: list[Stage],
    resumed: bool,
    wait: bool,
) -> CurateResult:
    """Submit the stages as dependent Slurm jobs, unless jobs of this run are still queued, or
    every task already finished; then follow them (`wait`) and publish, or return at once.

    A rerun after a failure submits only the tasks without a completion marker (datatrove skips
    the finished ones, and a stage with none left is not submitted at all).
    """
    submission = slurm.Submission.load(folders.root)
    states = slurm.poll(submission, folders.logs, slurm.queue_now()) if submission else []
    finished = bool(states) and all(state.complete for state in states)
    if submission is None or not (finished or any(state.queue for state in states)):
        executors, previous = [], None
        for stage in stages:
            previous = make_executor(recipe.executor, stage, folders.logs / stage.name, previous)
            executors.append(previous)
        submission = slurm.Submission(
            folders.root.name,
            recipe.model_dump(mode="json", exclude_unset=True),  # re-validates as is
            [asdict(stage.layout()) for stage in stages],
            {},
        )
        log = folders.root / "datatrove.log"
        try:
            with console_to(log):
                executors[-1].run()  # each executor submits its dependencies first
        except subprocess.CalledProcessError as error:
            submission.jobs = submitted_jobs(stages, executors)
            slurm.cancel(submission)  # a chain without its last links must not run
            raise InputError(
                f"sbatch refused a job of curation run {folders.root.name}: {slurm.last_line(log)}",
                "check executor.slurm (partition, time, qos, sbatch_args) against `sinfo`; "
                "nothing was published",
            ) from error
        submission.jobs = submitted_jobs(stages, executors)
        submission.save(folders.root)
    if not wait and not finished:
        return CurateResult(
            folders.root.name, 0, resumed=resumed, submitted=True, jobs=submission.jobs
        )
    return follow_slurm_run(recipe, workspace, folders, submission, resumed)


def submitted_jobs(stages: list[Stage], executors: list) -> dict[str, str]:
    """Stage -> the job id datatrove's executor got from sbatch ("" when it had nothing to run)."""
    return {
        stage.name: "" if executor.job_id in (None, -1) else str(executor.job_id)
        for stage, executor in zip(stages, executors, strict=True)
    }


def follow_slurm_run(
    recipe: CurateRecipe,
    workspace: Workspace,
    folders: RunFolders,
    submission: slurm.Submission,
    resumed: bool,
) -> CurateResult:
    """Wait for the run's jobs with a progress bar per stage, then publish the pool."""
    from frontload.progress import make_progress

    assert recipe.executor.slurm is not None
    seconds = recipe.executor.slurm.poll_seconds
    with make_progress() as progress:
        bars = {
            stage["name"]: progress.add_task(stage["name"], total=stage["tasks"], status="")
            for stage in submission.stages
        }

        def report(states: list[slurm.StageState]) -> None:
            for state in states:
                progress.update(bars[state.name], completed=state.done, status=state.status)

        slurm.follow(submission, folders.logs, seconds, report)
    layouts = [StageLayout(**stage) for stage in submission.stages]
    return publish_run(recipe, workspace, folders, layouts, resumed)


@dataclass
class RunReport:
    """Where one submitted Slurm run stands; `result` once its pool is published."""

    run_id: str
    submitted: str
    states: list[slurm.StageState]
    result: CurateResult | None = None


def curation_status(workspace: Workspace, wait: bool = False) -> list[RunReport]:
    """Look at every submitted Slurm run that is not published yet; publish those whose tasks
    have all finished (or, with `wait`, follow each run to the end and publish it)."""
    reports = []
    for folders, submission in pending_slurm_runs(workspace):
        recipe = CurateRecipe.model_validate(submission.recipe)
        report = RunReport(folders.root.name, submission.submitted, [])
        if wait:
            report.result = follow_slurm_run(recipe, workspace, folders, submission, resumed=True)
        else:
            report.states = slurm.look(submission, folders.logs)
            if all(state.complete for state in report.states):
                layouts = [StageLayout(**stage) for stage in submission.stages]
                report.result = publish_run(recipe, workspace, folders, layouts, resumed=True)
        reports.append(report)
    return reports


def pending_slurm_runs(workspace: Workspace) -> list[tuple[RunFolders, slurm.Submission]]:
    """Slurm runs submitted but not yet published, oldest first."""
    runs = workspace.curate_state_dir / "runs"
    found = []
    for root in sorted(runs.glob(f"*/{slurm.SUBMISSION_FILE}"), key=lambda p: p.stat().st_mtime):
        folders = RunFolders(workspace, root.parent.name)
        submission = slurm.Submission.load(folders.root)
        if submission is not None and not folders.done.exists():
            found.append((folders, submission))
    return found


def run_local(stages: list[Stage], executors: list, folders: RunFolders):
    """Run the stages one after the other with a progress bar; datatrove logs go to a file."""
    from rich.progress import Progress

    from frontload.progress import make_progress

    with console_to(folders.root / "datatrove.log") as terminal:
        columns = make_progress().columns
        with Progress(*columns, console=terminal) as progress:
            task = progress.add_task("curate", total=len(stages), status="")
            for stage, executor in zip(stages, executors, strict=True):
                progress.update(task, status=f"{stage.name} ({stage.tasks} tasks)")
                executor.run()
                incomplete = executor.get_incomplete_ranks()
                if incomplete:
                    from frontload.errors import DataError

                    raise DataError(
                        f"curation stage {stage.name}: tasks {incomplete} failed",
                        f"see {folders.logs / stage.name / 'logs'}; rerun to resume",
                    )
                progress.advance(task)


def collect_stats(
    stages: list[StageLayout], folders: RunFolders, run_id: str, workspace: Workspace
) -> None:
    """Sum datatrove's per-task stats into one row per step: curate/stats/<run>.jsonl. Steps that
    count documents get their counts; every step gets its own seconds (summed over tasks)."""
    from frontload.curate.timing import step_seconds

    rows: list[dict] = []
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    kept = 0
    for stage in stages:
        totals: list[dict[str, int]] = [{} for _ in stage.kinds]
        seconds = [0.0 for _ in stage.kinds]
        for path in sorted((folders.logs / stage.name / "stats").glob("*.json")):
            entries = json.loads(path.read_text())
            for position, step in enumerate(entries[0::2]):
                for key, value in step["stats"].items():
                    count = value["total"] if isinstance(value, dict) else value
                    totals[position][key] = totals[position].get(key, 0) + int(count)
            for position, spent in enumerate(step_seconds(entries)):
                seconds[position] += spent
        for index, (label, counts) in enumerate(zip(stage.labels, totals, strict=True)):
            if label is not None and counts:
                row = step_row(run_id, stage.name, label, counts, kept)
                kept = row["kept"]
            else:  # a step that counts nothing reports its time only
                row = {"run_id": run_id, "stage": stage.name, "step": timing_name(stage, index)}
            row["seconds"] = round(seconds[index], 3)
            rows.append({**row, "finished": finished, "position": len(rows)})
    path = workspace.curate_state_dir / "stats" / f"{run_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    tmp.replace(path)


TIMING_NAMES = {
    "RecordWriter": "stage_write",
    "StagedReader": "stage_read",
    "ExactDedupSignature": "exact_signature",
    "ExactFindDedups": "exact_find",
    "NumberAwareMinhashSignature": "minhash_signature",
    "MinhashDedupBuckets": "minhash_buckets",
    "MinhashClusterForEveryTask": "minhash_clusters",
    "ClusterLabel": "dup_cluster",
}


def timing_name(stage: StageLayout, index: int) -> str:
    """The name in curate_steps of a step that reports only its time."""
    kind = stage.kinds[index]
    return stage.labels[index] or TIMING_NAMES.get(kind, kind)


def step_row(run_id: str, stage: str, step: str, counts: dict[str, int], previous: int) -> dict:
    """One curate_steps row: kept, removed, and removals by reason. A step that does not count
    documents (token counting, scoring) passes on what the previous step kept."""
    removed = counts.get("dropped", 0)
    reasons = {
        key.removeprefix("dropped_"): value
        for key, value in counts.items()
        if key.startswith("dropped_")
    }
    if removed and not reasons:
        reasons = {DROP_REASONS.get(step, step): removed}
    seen = counts.get("total", counts.get("documents"))
    kept = counts.get("forwarded", previous if seen is None else seen - removed)
    return {
        "run_id": run_id,
        "stage": stage,
        "step": step,
        "input": kept + removed,
        "kept": kept,
        "removed": removed,
        "flagged": counts.get("contaminated", 0),
        "reasons": [{"reason": key, "count": value} for key, value in sorted(reasons.items())],
    }


def finish(
    recipe: CurateRecipe, workspace: Workspace, run_id: str, folders: RunFolders, resumed: bool
) -> CurateResult:
    """Refresh the catalog, build the corpora when the recipe asks, and summarise."""
    with Catalog(workspace) as catalog:
        catalog.refresh()
        count = 0
        if any(workspace.pool_dir.glob("*.parquet")):
            count = catalog.query("SELECT count(*) AS n FROM pool").to_pylist()[0]["n"]
    stats_path = workspace.curate_state_dir / "stats" / f"{run_id}.jsonl"
    steps = [json.loads(line) for line in stats_path.read_text().splitlines() if line]
    result = CurateResult(run_id, count, steps, resumed=resumed)
    if recipe.corpora is not None:
        from frontload.curate.corpus_build import build_corpora

        result.corpora = build_corpora(recipe.corpora, workspace)
    return result
