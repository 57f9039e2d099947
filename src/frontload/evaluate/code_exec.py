"""Sandboxed execution of untrusted Python programs (benchmark code, RL rewards).

Each program runs in its own process group in a fresh temporary folder, with CPU-time, wall-time,
address-space, file-size and process-count limits, a closed (or file-fed) stdin, a scrubbed
environment and, when the kernel allows it, an empty network namespace. When the evaluator runs as
root the child also drops to a random unprivileged uid, so the kernel itself stops it from signalling
the evaluator, reading its environment or writing outside world-writable folders; a Python audit hook
adds the same rules at the Python level everywhere (see docs/readme/evaluate.md for what remains).
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

BOOT = Path(__file__).with_name("sandbox_boot.py")
EXIT_ASSERTION = 3
EXIT_ISOLATION = 5
VERDICTS = ("passed", "failed", "timeout", "error")
SAFE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class Limits:
    """Resource limits for one program run."""

    timeout_s: float = 10.0
    cpu_s: float | None = None  # default: timeout_s, rounded up
    memory_mb: int = 2048
    file_size_mb: int = 16  # also caps stdout and stderr
    processes: int = 32
    output_chars: int = 1_000_000
    stderr_chars: int = 2000
    require_network_isolation: bool = False


@dataclass
class ExecResult:
    """What happened: verdict, why, the captured output and the time taken."""

    verdict: str  # passed | failed | timeout | error
    reason: str
    returncode: int | None
    stdout: str = ""
    stderr_tail: str = ""
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Job:
    """One program for `run_programs`: source, optional stdin and expected stdout."""

    source: str
    stdin: str | None = None
    expected_stdout: str | None = None
    limits: Limits = field(default_factory=Limits)


def _user_process_count() -> int:
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += entry.stat().st_uid == uid
    return count


def _nproc_limit(limits: Limits, uid: int | None) -> int:
    # RLIMIT_NPROC counts every process of the real uid: exact with a private uid, and offset by
    # the user's current processes otherwise (the kernel ignores it for root: see _cgroup_root).
    if uid is not None or os.geteuid() == 0:
        return limits.processes
    return _user_process_count() + limits.processes


@functools.cache
def _site_packages() -> list[str]:
    """The interpreter's package folders: the child starts with -S (30 ms faster) and adds these."""
    import site

    return [path for path in site.getsitepackages() if os.path.isdir(path)]


def _world_readable(path: Path) -> bool:
    for part in [path, *path.parents]:
        if part.exists() and not part.stat().st_mode & 0o005:
            return False
    return True


@functools.cache
def _can_drop_uid() -> bool:
    """Root can run children as a throwaway uid, if that uid can still read the interpreter."""
    prefix = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return os.geteuid() == 0 and _world_readable(prefix) and _world_readable(Path(sys.prefix))


@functools.cache
def _cgroup_root() -> Path | None:
    """A writable cgroup-v1 pids hierarchy (root without a uid drop uses it to cap processes)."""
    root = Path("/sys/fs/cgroup/pids")
    if os.geteuid() != 0 or not (root / "cgroup.procs").exists():
        return None
    probe = root / f"fl-probe-{os.getpid()}-{random.getrandbits(48):x}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return None
    for stale in root.glob("fl-sandbox-*"):  # left by an evaluator that was killed
        owner = stale.name.split("-")[2]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            _empty_cgroup(stale)
    return root


def isolation_summary() -> dict:
    """Which layers this machine gives the sandbox (written into evaluation summaries)."""
    return {
        "uid_drop": _can_drop_uid(),
        "process_cap": "rlimit"
        if _can_drop_uid() or os.geteuid() != 0
        else ("cgroup-pids" if _cgroup_root() else "audit-hook"),
        "network": "netns (unshare) or audit hook fallback",
    }


def outputs_match(actual: str, expected: str) -> bool:
    """LiveCodeBench-style comparison: lines compared after stripping trailing whitespace."""
    left = [line.rstrip() for line in actual.strip().splitlines()]
    right = [line.rstrip() for line in expected.strip().splitlines()]
    return left == right


def _kill_everything(process: subprocess.Popen, uid: int | None, cgroup: Path | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if uid is not None:
        # Processes that left the group (setsid) still carry the private uid: kill(-1) as that uid.
        subprocess.run(
            ["kill", "-9", "-1"],
            user=uid,
            group=uid,
            extra_groups=[],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    if cgroup is not None:
        _empty_cgroup(cgroup)


def _empty_cgroup(cgroup: Path) -> None:
    """Kill every process left in the cgroup (escaped the group or not), then remove it."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            pids = [int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()]
        except OSError:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            cgroup.rmdir()
            return
        except OSError:
            time.sleep(0.01)


def _tail(path: Path, chars: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - chars * 4))
        return handle.read().decode("utf-8", "replace")[-chars:]


def _head(path: Path, chars: int) -> str:
    with open(path, "rb") as handle:
        return handle.read(chars * 4).decode("utf-8", "replace")[:chars]


def _classify(returncode: int, completed: bool, stderr: str, limits: Limits) -> tuple[str, str]:
    if returncode == 0 and completed:
        return "passed", "ok"
    if returncode == 0:
        return "failed", "exited before the program finished (sys.exit/os._exit)"
    if returncode == EXIT_ASSERTION:
        return "failed", "assertion failed"
    if returncode == EXIT_ISOLATION:
        return "error", "no network isolation available"
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL) and "MemoryError" not in stderr:
        if returncode == -signal.SIGXCPU:
            return "timeout", f"cpu time limit ({limits.cpu_s or limits.timeout_s:g} s)"
        return "error", "killed (signal 9)"
    if returncode == -signal.SIGXFSZ:
        return "error", f"file size limit ({limits.file_size_mb} MB; output too large?)"
    if returncode < 0:
        return "error", f"killed by signal {-returncode}"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "error", (lines[-1][:200] if lines else f"exit code {returncode}")


def run_program(
    source: str,
    stdin: str | None = None,
    expected_stdout: str | None = None,
    limits: Limits | None = None,
) -> ExecResult:
    """Run `source` in the sandbox. With `expected_stdout`, the run passes only on matching output;
    without it, the run passes when the program finishes (asserts are the tests)."""
    limits = limits or Limits()
    mode = "tests" if expected_stdout is None else "stdio"
    uid = random.randint(1_000_000, 1_999_999) if _can_drop_uid() else None
    cgroup = None
    if os.geteuid() == 0 and uid is None and _cgroup_root() is not None:
        cgroup = _cgroup_root() / f"fl-sandbox-{os.getpid()}-{random.getrandbits(48):x}"
        cgroup.mkdir()
        (cgroup / "pids.max").write_text(str(limits.processes))
    base = Path(tempfile.mkdtemp(prefix="fl-sandbox-"))
    workdir = base / "work"
    try:
        workdir.mkdir()
        program = workdir / "program.py"
        program.write_text(source, encoding="utf-8")
        if uid is not None:
            os.chmod(base, 0o711)
            for path in (workdir, program):
                os.chown(path, uid, uid)
        (base / "stdin.txt").write_text(stdin or "", encoding="utf-8")
        config = {
            "workdir": str(workdir),
            "program": str(program),
            "mode": mode,
            "uid": "" if uid is None else str(uid),
            "cgroup": str(cgroup) if cgroup else "",
            "block_processes": str(int(os.geteuid() == 0 and uid is None and cgroup is None)),
            "require_network_isolation": str(int(limits.require_network_isolation)),
            "site_packages": os.pathsep.join(_site_packages()),
            "cpu_s": str(int(limits.cpu_s or limits.timeout_s + 0.999)),
            "memory_mb": str(limits.memory_mb),
            "file_size_mb": str(limits.file_size_mb),
            "nproc": str(_nproc_limit(limits, uid)),
        }
        returncode, timed_out, wall = _spawn(
            base, workdir, config, stdin is not None, limits, uid, cgroup
        )
        stderr_tail = _tail(base / "stderr", limits.stderr_chars)
        stdout = _head(base / "stdout", limits.output_chars)
        completed = (base / "marker").read_text(errors="replace").startswith("done")
        if timed_out:
            verdict, reason = "timeout", f"wall time limit ({limits.timeout_s:g} s)"
        else:
            verdict, reason = _classify(returncode, completed, stderr_tail, limits)
        if (
            verdict == "passed"
            and expected_stdout is not None
            and not outputs_match(stdout, expected_stdout)
        ):
            verdict, reason = "failed", "wrong output"
        return ExecResult(
            verdict, reason, None if timed_out else returncode, stdout, stderr_tail, round(wall, 4)
        )
    finally:
        if cgroup is not None:
            _empty_cgroup(cgroup)
        shutil.rmtree(base, ignore_errors=True)


def _spawn(
    base: Path,
    workdir: Path,
    config: dict,
    with_stdin: bool,
    limits: Limits,
    uid: int | None,
    cgroup: Path | None,
) -> tuple[int, bool, float]:
    """Start the boot script, wait for it, kill what is left; (returncode, timed out, wall seconds)."""
    env = {**SAFE_ENV, "HOME": str(workdir), "TMPDIR": str(workdir)}
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(base / "stdout", "wb"))
        err = stack.enter_context(open(base / "stderr", "wb"))
        marker = stack.enter_context(open(base / "marker", "wb"))
        stdin = (
            stack.enter_context(open(base / "stdin.txt", "rb"))
            if with_stdin
            else subprocess.DEVNULL
        )
        config["marker_fd"] = str(marker.fileno())
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-I", "-B", "-S", str(BOOT), *(f"{k}={v}" for k, v in config.items())],
            stdin=stdin,
            stdout=out,
            stderr=err,
            env=env,
            cwd=str(workdir),
            start_new_session=True,
            pass_fds=(marker.fileno(),),
        )
        # A timer kills the group; a blocking wait() reaps at once (wait(timeout) polls with sleeps).
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            _kill_everything(process, uid, cgroup)

        timer = threading.Timer(limits.timeout_s, expire)
        timer.start()
        returncode = process.wait()
        timer.cancel()
        _kill_everything(process, uid, cgroup)
        return returncode, expired.is_set(), time.monotonic() - started


def run_programs(jobs: Sequence[Job], workers: int = 2, progress: bool = False) -> list[ExecResult]:
    """Run many programs, `workers` at a time (each in its own sandboxed process)."""
    from frontload.progress import make_progress

    results: list[ExecResult | None] = [None] * len(jobs)

    def one(index: int) -> None:
        job = jobs[index]
        results[index] = run_program(job.source, job.stdin, job.expected_stdout, job.limits)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(one, index) for index in range(len(jobs))]
        if progress:
            with make_progress() as bar:
                task = bar.add_task("running programs", total=len(futures), status="")
                for future in futures:
                    future.result()
                    bar.advance(task)
        for future in futures:
            future.result()
    return [result for result in results if result is not None]
