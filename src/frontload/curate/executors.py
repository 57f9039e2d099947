"""datatrove's executors for a recipe (local, Slurm, Ray), and where their console logs go."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datatrove.executor.slurm import SlurmPipelineExecutor

from frontload.curate.recipe import ExecutorConfig
from frontload.curate.timing import with_laps
from frontload.errors import InputError


def make_executor(config: ExecutorConfig, stage: Any, logging_dir: Path, depends=None):
    """datatrove's own executor for the recipe's `executor.kind` running a `pipeline.Stage`
    (with a `timing.Lap` after every step, for the time per step)."""
    if config.kind == "slurm":
        slurm = config.slurm
        assert slurm is not None  # the recipe validator guarantees it
        return SlurmStageExecutor(
            pipeline=with_laps(stage.steps),
            tasks=stage.tasks,
            time=slurm.time,
            partition=slurm.partition,
            qos=slurm.qos,
            cpus_per_task=slurm.cpus_per_task,
            mem_per_cpu_gb=slurm.mem_per_cpu_gb,
            job_name=f"{slurm.job_name}-{stage.name}",
            venv_path=slurm.venv_path,
            # without a venv to activate, the jobs use this interpreter's environment
            env_command=None if slurm.venv_path else f"export PATH={shlex.quote(BIN)}:$PATH",
            sbatch_args=slurm.sbatch_args or None,
            logging_dir=str(logging_dir),
            depends=depends,
        )
    if config.kind == "ray":
        from datatrove.executor.ray import RayPipelineExecutor

        ray = config.ray
        return RayPipelineExecutor(  # run one stage after the other, like the local executor
            pipeline=with_laps(stage.steps),
            tasks=stage.tasks,
            workers=config.workers,
            logging_dir=str(logging_dir),
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


BIN = str(Path(sys.executable).parent)


class SlurmStageExecutor(SlurmPipelineExecutor):
    """datatrove's Slurm executor without its extra merge-stats job per stage: fl sums the
    per-task stats itself (`step_stats.collect_stats`), and after a failure that job would wait in
    the queue forever for its `afterok` dependency."""

    def launch_merge_stats(self) -> None:
        return None


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


def connect(config: ExecutorConfig) -> None:
    """Reach the executor's cluster before anything is written; a one-line error otherwise.

    Ray: the cluster at `executor.ray.address` (or RAY_ADDRESS), or a local one started here when
    neither is set. Slurm: `sbatch` must be on PATH.
    """

    if config.kind == "slurm" and shutil.which("sbatch") is None:
        raise InputError(
            "executor.kind slurm: `sbatch` is not on PATH",
            "run `fl curate run` on a Slurm login node (or use executor.kind local)",
        )
    if config.kind != "ray":
        return
    try:
        import ray
    except ImportError as error:
        raise InputError(
            "executor.kind ray needs Ray", 'install the extra: pip install -e ".[ray]"'
        ) from error
    if ray.is_initialized():
        return
    address = config.ray.address or os.environ.get("RAY_ADDRESS") or None
    if address and address != "auto":
        _check_reachable(address)
    ray.init(
        address=address,
        num_cpus=None if address else config.workers,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        # datatrove forks a process pool inside each Ray task; HF tokenizers' thread pool across
        # that fork deadlocked the token-count step (tasks done, worker never returned)
        runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}},
    )


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """ray.init retries an unreachable address for minutes: try its port first."""

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as error:
        raise InputError(
            f"cannot reach the Ray cluster at {address} ({error})",
            "start it with `ray start --head` and give its HOST:PORT, or drop the address to "
            "start a local cluster",
        ) from error
