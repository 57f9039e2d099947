"""datatrove's executors for a recipe (local, Slurm, Ray), and where their console logs go."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from frontload.curate.recipe import ExecutorConfig
from frontload.curate.timing import with_laps


def make_executor(config: ExecutorConfig, stage: Any, logging_dir: Path, depends=None):
    """datatrove's own executor for the recipe's `executor.kind` running a `pipeline.Stage`
    (with a `timing.Lap` after every step, for the time per step)."""
    if config.kind == "slurm":
        from datatrove.executor.slurm import SlurmPipelineExecutor

        slurm = config.slurm
        assert slurm is not None  # the recipe validator guarantees it
        return SlurmPipelineExecutor(
            pipeline=with_laps(stage.steps),
            tasks=stage.tasks,
            time=slurm.time,
            partition=slurm.partition,
            cpus_per_task=slurm.cpus_per_task,
            mem_per_cpu_gb=slurm.mem_per_cpu_gb,
            job_name=f"{slurm.job_name}-{stage.name}",
            venv_path=slurm.venv_path,
            sbatch_args=slurm.sbatch_args or None,
            logging_dir=str(logging_dir),
            depends=depends,
        )
    if config.kind == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        ray = config.ray
        return RayPipelineExecutor(
            pipeline=with_laps(stage.steps),
            tasks=stage.tasks,
            workers=config.workers,
            logging_dir=str(logging_dir),
            depends=depends,
            cpus_per_task=ray.cpus_per_task if ray else 1,
            mem_per_cpu_gb=ray.mem_per_cpu_gb if ray else 2,
        )
    from datatrove.executor.local import LocalPipelineExecutor

    return LocalPipelineExecutor(
        pipeline=with_laps(stage.steps),
        tasks=stage.tasks,
        workers=min(config.workers, stage.tasks),
        logging_dir=str(logging_dir),
    )


@contextlib.contextmanager
def console_to(log_path: Path) -> Iterator[Any]:
    """Send datatrove's console logging (ours and the workers') to a file; yield a rich console
    that still writes to the terminal for our own progress."""
    from rich.console import Console

    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    with open(log_path, "a") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield Console(file=terminal, stderr=False)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            terminal.close()
