"""Starting, watching and stopping one sandboxed process.

A process is the boot script (`boot.py`) in one role, under bubblewrap (or, by the user's choice,
without it), in its own cgroups, with a fresh seccomp descriptor. The `Watchdog` ends a run at its
wall-clock limit or when all its processes together have used the CPU budget.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontload.grading.sandbox import cgroups, isolation, seccomp

CPU_POLL_S = 0.05  # how often the watchdog reads a run's CPU time
# The budget of all of a run's processes together: the per-process limit plus the interpreter's
# start, so that one busy process meets its own RLIMIT_CPU first.
CPU_SLACK_S = 0.25


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run (tasks set their own; evalplus scales time per problem)."""

    timeout_s: float = 10.0
    cpu_s: float | None = None  # default: timeout_s, rounded up; per process AND per run
    memory_mb: int = 2048
    file_size_mb: int = 16  # also caps stdout and stderr
    processes: int = 32
    output_chars: int = 1_000_000
    stderr_chars: int = 2000
    reply_bytes: int = 16 * 1024 * 1024  # one reply of a candidate, before it is parsed
    reply_items: int = 1_000_000  # elements in one reply (lists, dicts, scalars)


def cpu_seconds(limits: Limits) -> int:
    return int(limits.cpu_s or math.ceil(limits.timeout_s))


@dataclass
class Proc:
    """A started sandboxed process and its cgroups."""

    process: subprocess.Popen
    group: cgroups.RunGroup
    uid: int  # the sandbox's own uid, -1 when it runs as the (non-root) caller
    stopped: bool = False


def _user_process_count() -> int:
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += entry.stat().st_uid == uid
    return count


def prepare(folder: Path, uid: int, mode: str) -> None:
    """Make a process's folder readable by its uid; in the weak mode, its own to write in, and
    the run's folder above it passable (bubblewrap mounts the folder itself, read-only)."""
    os.chmod(folder, 0o755)
    for path in folder.iterdir():
        os.chmod(path, 0o644)
    if mode == "weak":
        os.chmod(folder.parent, 0o711)
        if uid >= 0:
            os.chown(folder, uid, uid)


def start(
    mode: str,
    folder: Path,
    role: str,
    config: dict,
    limits: Limits,
    stdin: Any,
    stdout: Any,
    stderr: Any,
    fds: Sequence[int] = (),
) -> Proc:
    """One boot process in role `role`, its files in `folder` (seen as /sandbox inside)."""
    uid = isolation.sandbox_uid()
    try:
        return _launch(mode, folder, role, config, limits, (stdin, stdout, stderr), fds, uid)
    except BaseException:
        isolation.release_uid(uid)
        raise


def _launch(
    mode: str,
    folder: Path,
    role: str,
    config: dict,
    limits: Limits,
    streams: tuple[Any, Any, Any],
    fds: Sequence[int],
    uid: int,
) -> Proc:
    """`start` once the uid is drawn (it goes back to the pool if this raises)."""
    prepare(folder, uid, mode)
    where = isolation.INSIDE if mode == "bwrap" else str(folder)
    boot = isolation.BOOT_INSIDE if mode == "bwrap" else isolation.boot_code()
    # A sandbox uid is this process's alone; the caller's uid already runs other processes.
    nproc = limits.processes if uid >= 0 else _user_process_count() + limits.processes
    filtered = mode == "bwrap" or isolation.weak_filter()
    settings = {
        "role": role,
        "workdir": "/tmp" if mode == "bwrap" else str(folder),
        "guard": "1" if mode == "weak" else "0",
        "site_packages": os.pathsep.join(isolation.site_packages()),
        "cpu_s": cpu_seconds(limits),
        "memory_mb": limits.memory_mb,
        "file_size_mb": limits.file_size_mb,
        "nproc": nproc,
        "uid": uid,
        "keyctl": seccomp.syscall_number("keyctl") if filtered else -1,
        "reply_bytes": limits.reply_bytes,
        "reply_items": limits.reply_items,
        **{k: (f"{where}/{v}" if k in ("code", "source") else v) for k, v in config.items()},
    }
    group = cgroups.RunGroup.make(limits.processes, limits.memory_mb, cgroups.machine_plan())
    filter_fd = -1
    try:
        if filtered:
            filter_fd = seccomp.program_fd()
        if mode == "weak":
            settings["seccomp"] = filter_fd  # the boot loads it itself (-1: no libseccomp here)
        inner = [sys.executable, "-B", "-S", "-s", boot, *(f"{k}={v}" for k, v in settings.items())]
        if mode == "bwrap":
            command = isolation.bwrap_command(folder, inner, filter_fd, limits.memory_mb)
        else:
            command = inner
        env = isolation.SAFE_ENV if mode == "bwrap" else {**isolation.SAFE_ENV, "HOME": str(folder)}
        stdin, stdout, stderr = streams
        process = subprocess.Popen(
            group.launcher(command),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=str(folder),
            start_new_session=True,
            pass_fds=(*fds, filter_fd) if filter_fd >= 0 else tuple(fds),
        )
    except BaseException:
        group.remove()
        raise
    finally:
        if filter_fd >= 0:
            os.close(filter_fd)
    return Proc(process, group, uid)


def stop(proc: Proc) -> None:
    """Kill the process group (bubblewrap takes its pid namespace down) and empty the cgroups.
    Once per process: a second killpg could reach a new process that reused the pid."""
    if proc.stopped:
        return
    proc.stopped = True
    _kill(proc)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.process.wait(timeout=10)
    proc.group.remove()
    if not proc.group.folders and proc.uid >= 0:
        _reap_uid(proc.uid)  # no cgroup to wait on: the pid namespace empties a moment later
    isolation.release_uid(proc.uid)


def _uid_processes(uid: int) -> list[int]:
    """Processes whose real uid is `uid` (the sandbox's own: no one else runs as it)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/status", "rb") as handle:
                    for line in handle:
                        if line.startswith(b"Uid:"):
                            if int(line.split()[1]) == uid:
                                found.append(int(entry.name))
                            break
            except (OSError, ValueError):
                continue
    return found


def _reap_uid(uid: int, wait_s: float = 5.0) -> None:
    """Kill every process of a sandbox uid until none is left (or `wait_s` passes)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        left = _uid_processes(uid)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def _kill(proc: Proc) -> None:
    if proc.process.returncode is None:  # not reaped yet, so the pid is still this process's
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.process.pid, signal.SIGKILL)
    proc.group.kill()


class Watchdog:
    """Kills a run's processes when its wall-clock limit passes or when, together, they pass the
    CPU budget (counted by the cgroups where there are some; rlimits cap each process anyway)."""

    def __init__(self, procs: list[Proc], limits: Limits) -> None:
        self.expired: str | None = None  # "wall" or "cpu"
        self._procs = procs
        self._deadline = time.monotonic() + limits.timeout_s
        self._budget = cpu_seconds(limits) + CPU_SLACK_S
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _used(self) -> float | None:
        counted = [p.group.cpu_seconds() for p in self._procs]
        return max((c for c in counted if c is not None), default=None)

    def _watch(self) -> None:
        counting = any(p.group.cpu_stat is not None for p in self._procs)
        while True:
            left = self._deadline - time.monotonic()
            if left <= 0:
                self._fire("wall")
                return
            if self._done.wait(min(left, CPU_POLL_S) if counting else left):
                return
            used = self._used() if counting else None
            if used is not None and used > self._budget:
                self._fire("cpu")
                return

    def _fire(self, why: str) -> None:
        self.expired = why
        for proc in self._procs:
            _kill(proc)

    def cancel(self) -> None:
        self._done.set()
        self._thread.join()

    def verdict(self, limits: Limits) -> tuple[str, str] | None:
        """The timeout verdict when the watchdog ended the run."""
        if self.expired == "wall":
            return "timeout", f"wall time limit ({limits.timeout_s:g} s)"
        if self.expired == "cpu":
            return "timeout", f"cpu time limit ({cpu_seconds(limits)} s, all processes)"
        return None


def tail(path: Path, chars: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - chars * 4))
        return handle.read().decode("utf-8", "replace")[-chars:]


def head(path: Path, chars: int) -> str:
    with open(path, "rb") as handle:
        return handle.read(chars * 4).decode("utf-8", "replace")[:chars]


def classify(returncode: int, stderr: str, limits: Limits) -> tuple[str, str]:
    """A verdict from how a process ended."""
    if returncode == 0:
        return "passed", "ok"
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL) and "MemoryError" not in stderr:
        if returncode == -signal.SIGXCPU:
            return "timeout", f"cpu time limit ({cpu_seconds(limits)} s)"
        return "error", "killed (signal 9)"
    if returncode == -signal.SIGXFSZ:
        return "error", f"file size limit ({limits.file_size_mb} MB; output too large?)"
    if returncode < 0:
        return "error", f"killed by signal {-returncode}"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "error", (lines[-1][:200] if lines else f"exit code {returncode}")
