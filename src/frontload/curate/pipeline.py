"""`fl curate run`: the curation recipe as a chain of datatrove stages on datatrove's executors.

read+normalise -> clean -> exact dedup -> MinHash near-dedup -> decontaminate -> [quality] ->
[token counts] -> pool (the stages: `stages.py`). Each stage keeps datatrove's completion markers in
`curate/runs/<run_id>/logs/<stage>/`, so a killed run resumes where it stopped; outputs are
published into `pool/` and `removed/` only once every stage has finished and no source was
(almost) wholly rejected (`publish.py`); until then the previous pool stays as it was.

Locally and on Ray the stages run one after the other in this process. On Slurm they are
submitted as dependent jobs and followed to the end (`follow.py`), or left running (`wait=False`)
for `follow.curation_status` or a rerun to publish. Per-step statistics: `step_stats.py`.
"""

from __future__ import annotations

import shutil

from loguru import logger
from rich.progress import Progress

from frontload.curate.decontam import DecontamIndex, build_index
from frontload.curate.executors import connect, console_to, make_executor
from frontload.curate.finish import CurateResult, finish, publish_run
from frontload.curate.follow import run_on_slurm
from frontload.curate.publish import damaged_outputs, start_or_resume
from frontload.curate.readers import check_mapping, resolve_sources
from frontload.curate.recipe import CurateRecipe
from frontload.curate.stages import RunFolders, Stage, build_stages, prepare_tokenizer, run_id_for
from frontload.errors import DataError
from frontload.progress import make_progress
from frontload.workspace import Workspace


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


def run_local(stages: list[Stage], executors: list, folders: RunFolders):
    """Run the stages one after the other with a progress bar; datatrove logs go to a file."""
    with console_to(folders.root / "datatrove.log") as terminal:
        columns = make_progress().columns
        with Progress(*columns, console=terminal) as progress:
            task = progress.add_task("curate", total=len(stages), status="")
            for stage, executor in zip(stages, executors, strict=True):
                progress.update(task, status=f"{stage.name} ({stage.tasks} tasks)")
                executor.run()
                incomplete = executor.get_incomplete_ranks()
                if incomplete:
                    raise DataError(
                        f"curation stage {stage.name}: tasks {incomplete} failed",
                        f"see {folders.logs / stage.name / 'logs'}; rerun to resume",
                    )
                progress.advance(task)
