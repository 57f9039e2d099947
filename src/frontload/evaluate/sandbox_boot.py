"""First code run inside a sandboxed child: isolate, limit, drop privileges, then run the program.

Started by `code_exec.run_program` as `python -I -B sandbox_boot.py CONFIG_JSON` in a fresh process
group. Order matters: the network namespace needs privileges, so it comes before the uid drop; the
rlimits come before the uid drop so the program cannot raise them back.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
EXIT_ASSERTION = 3
EXIT_ISOLATION = 5
PROCESS_EVENTS = {
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.exec",
    "os.system",
    "subprocess.Popen",
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _unshare(flags: int) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.unshare(flags) == 0


def isolate_network() -> str:
    """An empty network namespace (no interfaces but a down loopback); 'audit' when refused."""
    if os.geteuid() == 0 and _unshare(CLONE_NEWNET):
        return "netns"
    if os.geteuid() != 0 and _unshare(CLONE_NEWUSER | CLONE_NEWNET):
        return "userns+netns"
    return "audit"


def set_limits(limits: dict) -> None:
    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = int(limits["file_size_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def install_guard(workdir: str, network: str, dropped: bool, block_processes: bool) -> None:
    """Audit hook: no writes or deletions outside `workdir`; no sockets, kill() or new processes
    where the kernel-level layer (namespace, uid drop, process cap) is missing."""
    root = os.path.realpath(workdir)
    me = os.getpid()

    def inside(path: object) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return False
        full = os.path.realpath(os.path.join(os.getcwd(), path))
        return full == root or full.startswith(root + os.sep) or full == "/dev/null"

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and bool(flags & WRITE_FLAGS)
            )
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing outside the work folder: {path!r}")
        elif event in {"os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate"}:
            if not inside(args[0]):
                raise PermissionError(f"sandbox: {event} outside the work folder: {args[0]!r}")
        elif event in {"os.rename", "os.link", "os.symlink"}:
            if not (inside(args[0]) and inside(args[1])):
                raise PermissionError(f"sandbox: {event} outside the work folder")
        elif event == "shutil.rmtree" and not inside(args[0]):
            raise PermissionError(f"sandbox: rmtree outside the work folder: {args[0]!r}")
        elif event == "socket.__new__" and network == "audit":
            raise PermissionError("sandbox: network access is disabled")
        elif event in {"os.kill", "os.killpg"} and not dropped and args[0] not in (me, 0):
            raise PermissionError("sandbox: signalling other processes is disabled")
        elif block_processes and event in PROCESS_EVENTS:
            raise PermissionError("sandbox: starting processes is disabled")

    sys.addaudithook(hook)


def read_config(argv: list[str]) -> dict:
    """`key=value` arguments (json would cost ~20 ms of imports in every sandboxed run)."""
    raw = dict(arg.split("=", 1) for arg in argv)
    return {
        "workdir": raw["workdir"],
        "program": raw["program"],
        "mode": raw["mode"],
        "uid": int(raw["uid"]) if raw["uid"] else None,
        "cgroup": raw["cgroup"] or None,
        "block_processes": raw["block_processes"] == "1",
        "require_network_isolation": raw["require_network_isolation"] == "1",
        "marker_fd": int(raw["marker_fd"]),
        "site_packages": [p for p in raw["site_packages"].split(os.pathsep) if p],
        "limits": {k: int(raw[k]) for k in ("cpu_s", "memory_mb", "file_size_mb", "nproc")},
    }


def run_source(path: str) -> None:
    """Run the program as `__main__` (plain exec: runpy's imports cost more than the program)."""
    with open(path, encoding="utf-8") as handle:
        code = compile(handle.read(), path, "exec")
    exec(code, {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__})


def main() -> None:
    config = read_config(sys.argv[1:])
    marker = os.fdopen(config["marker_fd"], "w")
    if config["cgroup"]:
        with open(os.path.join(config["cgroup"], "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    network = isolate_network()
    if network == "audit" and config["require_network_isolation"]:
        sys.stderr.write("sandbox: no network namespace available\n")
        os._exit(EXIT_ISOLATION)
    set_limits(config["limits"])
    uid = config["uid"]
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.chdir(config["workdir"])
    os.umask(0o077)
    install_guard(config["workdir"], network, uid is not None, config["block_processes"])
    sys.argv = [config["program"]]
    sys.path[:0] = [config["workdir"]]
    sys.path.extend(config["site_packages"])
    try:
        run_source(config["program"])
    except SystemExit as exit_:
        if config["mode"] == "tests" or exit_.code not in (None, 0):
            raise
    except AssertionError:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(EXIT_ASSERTION)
    sys.stdout.flush()
    marker.write("done\n")
    marker.flush()


if __name__ == "__main__":
    main()
