"""Curation on Slurm: the stages submitted as dependent jobs, followed to the end with a progress
bar per stage (or left running for `curation_status` or a rerun to publish)."""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass

from frontload.curate import slurm
from frontload.curate.executors import console_to, make_executor
from frontload.curate.finish import CurateResult, publish_run
from frontload.curate.recipe import CurateRecipe
from frontload.curate.stages import RunFolders, Stage, StageLayout
from frontload.errors import InputError
from frontload.progress import make_progress
from frontload.workspace import Workspace


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
