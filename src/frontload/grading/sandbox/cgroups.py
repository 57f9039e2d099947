"""Per-run cgroups: a process cap, a memory cap and the CPU time of all of a run's processes.

rlimits count one process at a time (RLIMIT_CPU, RLIMIT_AS) or one uid (RLIMIT_NPROC); a cgroup
counts every process a sample starts. Both hierarchies are supported:

- cgroup v2 (the unified hierarchy): a child of fl's own cgroup, or of the root, whichever has
  the `pids` and `memory` controllers enabled for its children (`cgroup.subtree_control`; fl
  enables none itself). `cpu.stat` and `cgroup.kill` come with every v2 cgroup, controllers or not.
- cgroup v1 (one hierarchy per controller): `pids`, `memory` and `cpuacct`, each a child of fl's
  own cgroup there, else of the hierarchy's root.

Each resource comes from v2 when v2 gives it, else from v1 (a hybrid machine mixes them). The
launcher shell joins every group before it becomes bubblewrap, so no process escapes the count.
Where nothing is writable (not root, no delegation), fl says so once; the sandbox's own uid and
RLIMIT_NPROC then cap processes, and RLIMIT_CPU caps each process's CPU time.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
OWN_CGROUPS = Path("/proc/self/cgroup")
RESOURCES = ("pids", "memory", "cpu")
V1_CONTROLLER = {"pids": "pids", "memory": "memory", "cpu": "cpuacct"}
MEMORY_SLACK_MB = 256  # the interpreter and bubblewrap on top of the program's own limit
EXTRA_PROCESSES = 4  # the launcher, bubblewrap, its pid 1 and the boot process
_warned = {"done": False}
_warn_lock = threading.Lock()


@dataclass(frozen=True)
class Hierarchy:
    """A place to make run groups: its version, the folder they go in, and what it gives."""

    version: int
    parent: Path
    gives: frozenset[str]


@dataclass(frozen=True)
class Mount:
    version: int
    path: Path
    root: str  # the cgroup the mount shows at `path` ("/" unless bind-mounted from below)
    controllers: frozenset[str]


def parse_mounts(mountinfo: str) -> list[Mount]:
    """cgroup mounts from /proc/self/mountinfo text."""
    mounts = []
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        options = set(tail[2].split(",")) | set(fields[5].split(",") if len(fields) > 5 else ())
        version = 2 if tail[0] == "cgroup2" else 1
        controllers = frozenset(options & set(V1_CONTROLLER.values())) if version == 1 else None
        mounts.append(Mount(version, Path(fields[4]), fields[3], controllers or frozenset()))
    return mounts


def parse_own(text: str) -> dict[str, str]:
    """fl's own cgroup per v1 controller, and under "" its v2 cgroup, from /proc/self/cgroup."""
    own: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                own[controller] = parts[2]
    return own


def _below(mount: Mount, path: str) -> Path:
    """Where a cgroup path appears under a mount."""
    relative = path
    if mount.root != "/" and (path == mount.root or path.startswith(mount.root + "/")):
        relative = path[len(mount.root) :]
    return mount.path / relative.lstrip("/")


def _probe(parent: Path) -> set[str] | None:
    """None when no group can be made in `parent`, else the files a new group there has."""
    probe = parent / f"fl-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
    except OSError:
        return None
    try:
        return set(os.listdir(probe))
    except OSError:
        return set()
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def _v2(mount: Mount, own: dict[str, str]) -> Hierarchy | None:
    """The v2 parent giving the most: fl's own cgroup, else the hierarchy's root."""
    best = None
    for parent in dict.fromkeys([_below(mount, own.get("", "/")), mount.path]):
        files = _probe(parent)
        if files is None:
            continue
        try:
            enabled = set((parent / "cgroup.subtree_control").read_text().split())
        except OSError:
            enabled = set()
        gives = {name for name in ("pids", "memory") if name in enabled}
        if "cpu.stat" in files:
            gives.add("cpu")
        if best is None or len(gives) > len(best.gives):
            best = Hierarchy(2, parent, frozenset(gives))
    return best


def _v1(mount: Mount, own: dict[str, str]) -> Hierarchy | None:
    """A v1 parent for the resources this mount's controllers give."""
    gives = frozenset(name for name, c in V1_CONTROLLER.items() if c in mount.controllers)
    if not gives:
        return None
    controller = V1_CONTROLLER[min(gives)]
    for parent in dict.fromkeys([_below(mount, own.get(controller, "/")), mount.path]):
        if _probe(parent) is not None:
            return Hierarchy(1, parent, gives)
    return None


def discover(mountinfo: str, own_text: str) -> list[Hierarchy]:
    """Every writable place for run groups, from /proc/self/mountinfo and /proc/self/cgroup."""
    own = parse_own(own_text)
    found = []
    for mount in parse_mounts(mountinfo):
        hierarchy = _v2(mount, own) if mount.version == 2 else _v1(mount, own)
        if hierarchy is not None:
            found.append(hierarchy)
    return found


def choose(hierarchies: list[Hierarchy]) -> dict[str, Hierarchy]:
    """For each resource, the hierarchy that gives it: v2 first."""
    plan = {}
    for resource in RESOURCES:
        for hierarchy in sorted(hierarchies, key=lambda h: -h.version):
            if resource in hierarchy.gives:
                plan[resource] = hierarchy
                break
    return plan


@functools.cache
def machine_plan() -> dict[str, Hierarchy]:
    """This machine's plan, found once per evaluator; stale groups of dead evaluators removed."""
    try:
        mountinfo, own = MOUNTINFO.read_text(), OWN_CGROUPS.read_text()
    except OSError:
        return {}
    plan = choose(discover(mountinfo, own))
    for hierarchy in set(plan.values()):
        for stale in hierarchy.parent.glob("fl-sandbox-*"):  # left by an evaluator that was killed
            owner = stale.name.split("-")[2]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                RunGroup([stale]).remove()
    return plan


def summary(plan: dict[str, Hierarchy] | None = None) -> dict[str, str]:
    """Where each resource is counted, for the evaluation summary."""
    plan = machine_plan() if plan is None else plan
    fallback = {
        "pids": "none (RLIMIT_NPROC under the sandbox uid)",
        "memory": "none (RLIMIT_AS per process)",
        "cpu": "none (RLIMIT_CPU per process)",
    }
    return {
        name: f"v{plan[name].version} {plan[name].parent}" if name in plan else fallback[name]
        for name in RESOURCES
    }


def warn_if_missing(plan: dict[str, Hierarchy] | None = None) -> None:
    """Say once which limits no cgroup enforces here, and what caps them instead."""
    plan = machine_plan() if plan is None else plan
    missing = [name for name in RESOURCES if name not in plan]
    with _warn_lock:
        if not missing or _warned["done"]:
            return
        _warned["done"] = True
    print(
        f"warning: no writable cgroup for {', '.join(missing)}: untrusted code is capped by "
        "RLIMIT_NPROC under the sandbox's uid and by per-process rlimits only (run as root, or "
        "in a delegated cgroup, for a total CPU budget and memory cap per sample)",
        file=sys.stderr,
    )


class RunGroup:
    """One run's cgroups (one per hierarchy used), made with limits and emptied at the end."""

    def __init__(self, folders: list[Path], cpu_stat: Path | None = None, cpu_v2: bool = True):
        self.folders = folders
        self.cpu_stat = cpu_stat
        self.cpu_v2 = cpu_v2

    @classmethod
    def make(cls, processes: int, memory_mb: int, plan: dict[str, Hierarchy]) -> RunGroup:
        """Groups for one run under `plan`; a hierarchy that refuses is left out (the cgroup is an
        extra layer: namespaces and rlimits still hold)."""
        # From the OS's randomness: a seeded `random` module could draw a name in use, and
        # the group of another run must never be taken for this one's (and removed with it).
        name = f"fl-sandbox-{os.getpid()}-{secrets.token_hex(6)}"
        folders: dict[Hierarchy, Path] = {}
        for hierarchy in dict.fromkeys(plan.values()):
            folder = hierarchy.parent / name
            try:
                folder.mkdir()
            except OSError:
                continue
            try:
                for resource, chosen in plan.items():
                    if chosen == hierarchy:
                        _limit(folder, hierarchy.version, resource, processes, memory_mb)
            except OSError:
                cls([folder]).remove()
                continue
            folders[hierarchy] = folder
        cpu = plan.get("cpu")
        cpu_stat = None
        if cpu in folders:
            cpu_stat = folders[cpu] / ("cpu.stat" if cpu.version == 2 else "cpuacct.usage")
        return cls(list(folders.values()), cpu_stat, cpu is not None and cpu.version == 2)

    def launcher(self, command: list[str]) -> list[str]:
        """`command` started by a shell that first joins every group (then becomes it)."""
        if not self.folders:
            return command
        joins = " && ".join(
            f"echo $$ > {shlex.quote(str(f / 'cgroup.procs'))}" for f in self.folders
        )
        return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *command]

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by every process of the run, or None where not counted."""
        if self.cpu_stat is None:
            return None
        try:
            text = self.cpu_stat.read_text()
        except OSError:
            return None
        if not self.cpu_v2:
            return int(text) / 1e9
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        return None

    def kill(self) -> None:
        """SIGKILL every process still in the groups."""
        for folder in self.folders:
            with contextlib.suppress(OSError):
                (folder / "cgroup.kill").write_text("1")
            for pid in _members(folder):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self, wait_s: float = 5.0) -> None:
        """Kill what is left, then remove the groups (a group empties a moment after the kill)."""
        for folder in self.folders:
            deadline = time.monotonic() + wait_s
            while True:
                if not (folder / "cgroup.procs").exists():
                    with contextlib.suppress(OSError):
                        folder.rmdir()
                    break
                with contextlib.suppress(OSError):
                    (folder / "cgroup.kill").write_text("1")
                for pid in _members(folder):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    folder.rmdir()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.005)


def _members(folder: Path) -> list[int]:
    try:
        return [int(pid) for pid in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _limit(folder: Path, version: int, resource: str, processes: int, memory_mb: int) -> None:
    """Write one resource's limit into a new group (CPU time is counted, not limited, here)."""
    if resource == "pids":
        (folder / "pids.max").write_text(str(processes + EXTRA_PROCESSES))
    elif resource == "memory":
        limit = str((memory_mb + MEMORY_SLACK_MB) << 20)
        if version == 2:
            (folder / "memory.max").write_text(limit)
            with contextlib.suppress(OSError):  # absent without swap accounting
                (folder / "memory.swap.max").write_text("0")
        else:
            (folder / "memory.limit_in_bytes").write_text(limit)
