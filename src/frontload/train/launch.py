"""Launch pretraining on one process, or under torchrun on one or several machines.

`fl train pretrain` and `fl run` both come here with a typed recipe and plan (resolved once, at
the command line or in the study). One process trains in this process; more start
`torchrun -m frontload.train.pretrain --launch runs/<name>/launch.json` (one command per machine:
the same arguments, its own `--node-rank`), whose c10d rendezvous waits `rdzv_timeout` seconds for
every machine to join and otherwise fails with an error that names the endpoint.

The workers are new processes: the typed recipe and plan reach them as `handoff.Launch`.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from frontload.errors import InputError, TrainingError
from frontload.plan import Plan
from frontload.train.handoff import Launch, write_launch
from frontload.train.phases import plan_tokens
from frontload.train.recipe import PretrainRecipe
from frontload.workspace import Workspace

# torchrun's messages when the rendezvous did not gather every node in time
_RDZV_FAILURES = ("RendezvousTimeoutError", "RendezvousClosedError", "DistNetworkError")


@dataclass(frozen=True)
class Nodes:
    """Where this process group sits: processes per machine, machines, this machine's rank and
    the rendezvous endpoint (host:port of any machine that all can reach)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_timeout: int = 600
    rdzv_id: str = "fl-pretrain"

    @property
    def processes(self) -> int:
        return self.nproc_per_node * self.nnodes

    def check(self) -> None:
        """One-line errors for flag combinations that cannot work."""
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise InputError(
                f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT",
                "give the address of one of the machines (the same on every machine)",
            )
        if not 0 <= self.node_rank < self.nnodes:
            raise InputError(
                f"--node-rank {self.node_rank} is outside 0..{self.nnodes - 1}",
                "number the machines 0 to nnodes - 1",
            )
        if self.rdzv_endpoint and ":" not in self.rdzv_endpoint:
            raise InputError(
                f"--rdzv-endpoint {self.rdzv_endpoint} has no port", "write it as HOST:PORT"
            )


def torchrun_command(
    launch: Path, workspace: Workspace, nodes: Nodes, extra: list[str] | None = None
) -> list[str]:
    """The torchrun command line for this machine (extra: more torchrun arguments, passed as is)."""
    command = [sys.executable, "-m", "torch.distributed.run"]
    if nodes.nnodes == 1 and not nodes.rdzv_endpoint:
        command.append("--standalone")
    else:
        command += [
            f"--nnodes={nodes.nnodes}",
            f"--node-rank={nodes.node_rank}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={nodes.rdzv_endpoint}",
            f"--rdzv-id={nodes.rdzv_id}",
            f"--rdzv-conf=join_timeout={nodes.rdzv_timeout}",
        ]
    command += [f"--nproc-per-node={nodes.nproc_per_node}", *(extra or [])]
    command += ["-m", "frontload.train.pretrain", f"--launch={launch}"]
    return command + [f"--workspace={workspace.root}"]


def run_torchrun(command: list[str], nodes: Nodes) -> None:
    """Run torchrun, passing its output through; a failed rendezvous becomes a one-line error."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, bufsize=1)
    seen: list[str] = []
    reader = threading.Thread(target=_relay, args=(process.stderr, seen), daemon=True)
    reader.start()
    code = process.wait()
    reader.join()
    if code == 0:
        return
    text = "".join(seen)
    if nodes.rdzv_endpoint and any(marker in text for marker in _RDZV_FAILURES):
        raise TrainingError(
            f"rendezvous at {nodes.rdzv_endpoint} timed out after {nodes.rdzv_timeout}s: not all "
            f"{nodes.nnodes} nodes joined (this is node {nodes.node_rank})",
            "start the same command with --node-rank 0.."
            f"{nodes.nnodes - 1} on every machine, check that {nodes.rdzv_endpoint} is reachable "
            "from each, or raise --rdzv-timeout",
        )
    raise TrainingError(f"torchrun exited with status {code}", "see the first error printed above")


def _relay(stream: IO[str] | None, seen: list[str]) -> None:
    """Copy torchrun's stderr to ours, keeping it to look for a rendezvous failure."""
    if stream is None:
        return
    for line in stream:
        sys.stderr.write(line)
        seen.append(line)


def launch_pretraining(
    recipe: PretrainRecipe,
    workspace: Workspace,
    plan: Plan | None = None,
    resume: bool = False,
    nodes: Nodes | None = None,
) -> Path:
    """Train `recipe` here or under torchrun; returns the run folder.

    A recipe that contradicts `plan` fails here, before any process starts. Without `nodes`, the
    recipe's `parallel.nproc_per_node` decides (what `fl run` uses).
    """
    nodes = nodes or Nodes(nproc_per_node=recipe.parallel.nproc_per_node, rdzv_id=recipe.name)
    nodes.check()
    plan_tokens(recipe, plan)  # a recipe that contradicts the plan fails before any start
    if nodes.processes == 1:
        # torch: the training loop is imported where it runs, so launching stays light
        from frontload.train.pretrain import pretrain

        return pretrain(recipe, workspace, plan, resume)
    launch = write_launch(workspace, Launch(recipe=recipe, plan=plan, resume=resume))
    run_torchrun(torchrun_command(launch, workspace, nodes), nodes)
    return workspace.runs_dir / recipe.name
