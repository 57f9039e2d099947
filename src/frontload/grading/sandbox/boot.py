"""First code run inside a sandboxed process: leave root, set limits, then play one role.

Started by `sandbox.process` as `python -B -S -s boot.pyc role=... key=value ...`, inside
bubblewrap (read-only root, private /tmp, no network, own pid namespace, scrubbed environment,
the seccomp filter already loaded) or, only when the user opted in, without it. Before any
untrusted byte is read it:

1. leaves host root for the sandbox's own unprivileged uid (when the evaluator runs as root);
2. sets the rlimits (cpu, address space, file size, processes, no core files);
3. joins a fresh anonymous session keyring, so the evaluator's keys are out of reach;
4. in the weak mode only, loads the seccomp filter and an audit hook itself.

Roles:
- `program`: run a script as `__main__` (stdin/stdout tasks; the parent compares the output);
- `candidate`: run untrusted code, then answer calls `[name, args, kwargs]` read from a pipe with
  plain-data results (no objects: an object whose `__eq__` is always true cannot travel);
- `judge`: run the benchmark's tests in a process that never ran untrusted code; the names the
  evaluator lists (those the tests use but do not define) are calls to the candidate through the
  pipe. Only the judge decides the verdict, and it writes it where the candidate cannot reach
  (its own stdout, read by the parent).

This file imports only the standard library: it runs before the program's packages are on the
path. The evaluator imports `encode`, `decode_reply` and `VERDICT_PREFIX` from it.
"""

from __future__ import annotations

import builtins
import os
import resource
import sys

# Only `os`, `sys`, `resource` and `builtins` load for every run (each import costs the start of
# every sandboxed program); `json` loads in the roles that talk over a pipe, `ctypes` for the
# keyring.
INFINITIES = (float("inf"), float("-inf"))

VERDICT_PREFIX = "FL-VERDICT "
PLAIN_COLLECTIONS = {"Counter": dict, "OrderedDict": dict, "defaultdict": dict, "deque": list}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
KEYCTL_JOIN_SESSION_KEYRING = 1
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
# A set or dict whose elements share one hash costs quadratic time to build: a reply with more
# than this many equal hashes among its elements is refused (honest data has a handful at most).
MAX_EQUAL_HASHES = 32


class CandidateGone(Exception):
    """The candidate process closed its pipe (it exited, crashed or was killed)."""


class RemoteError(Exception):
    """The candidate raised an exception that is not a builtin one."""


class ReplyRejected(ValueError):
    """A reply too large or too costly to decode (its bytes, its elements or its hashes)."""


class Opaque:
    """A result that was not plain data: only its type name and truth value crossed the pipe."""

    __slots__ = ("kind", "truth")

    def __init__(self, kind: str, truth: bool) -> None:
        self.kind, self.truth = kind, truth

    def __bool__(self) -> bool:
        return self.truth

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{self.kind} object>"


def encode(value: object) -> object:
    """Plain data as JSON, tagging the types JSON lacks. Other objects (including subclasses of
    builtin types, whose `__eq__` the candidate could rig) become opaque tokens."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        finite = value == value and value not in INFINITIES
        return value if finite else {"$f": repr(value)}
    if kind is list:
        return [encode(item) for item in value]
    if kind is tuple:
        return {"$t": [encode(item) for item in value]}
    if kind in (set, frozenset):
        return {"$s" if kind is set else "$z": [encode(item) for item in value]}
    if kind is dict:
        return {"$d": [[encode(k), encode(v)] for k, v in value.items()]}
    if kind is bytes:
        return {"$b": value.hex()}
    if kind is complex:
        return {"$c": [encode(value.real), encode(value.imag)]}
    if kind.__module__ == "collections" and kind.__name__ in PLAIN_COLLECTIONS:
        return encode(PLAIN_COLLECTIONS[kind.__name__](value))
    # Any other object travels as an opaque token: its truth value only (`assert f(x)` with an
    # re.Match), never equal to anything, so an `__eq__` that is always true gains nothing.
    try:
        truth = bool(value)
    except Exception:  # noqa: BLE001 - a hostile __bool__ only makes the token false
        truth = False
    return {"$o": [kind.__name__, truth]}


def _spread(items: list) -> list:
    """`items` unchanged, unless too many of them share a hash (a set built from them would take
    quadratic time: integers equal modulo 2**61 - 1 all hash alike)."""
    if len(items) > MAX_EQUAL_HASHES:
        counts: dict[int, int] = {}
        for item in items:
            key = hash(item)
            counts[key] = counts.get(key, 0) + 1
            if counts[key] > MAX_EQUAL_HASHES:
                raise ReplyRejected(f"more than {MAX_EQUAL_HASHES} elements share one hash")
    return items


def decode(value: object) -> object:
    """The inverse of `encode`: fresh builtin objects only."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    (tag, inner), *_ = value.items()
    if tag == "$f":
        return float(inner)
    if tag == "$t":
        return tuple(decode(item) for item in inner)
    if tag == "$s":
        return set(_spread([decode(item) for item in inner]))
    if tag == "$z":
        return frozenset(_spread([decode(item) for item in inner]))
    if tag == "$d":
        pairs = [(decode(k), decode(v)) for k, v in inner]
        _spread([key for key, _ in pairs])
        return dict(pairs)
    if tag == "$b":
        return bytes.fromhex(inner)
    if tag == "$c":
        return complex(decode(inner[0]), decode(inner[1]))
    if tag == "$o":
        return Opaque(str(inner[0]), bool(inner[1]))
    raise ValueError(f"unknown tag {tag!r}")


def decode_reply(line: bytes, max_bytes: int, max_items: int, loads) -> object:
    """One JSON reply line, parsed only when its size and element count are within bounds (a
    12 MB line of empty lists would otherwise become ~400 MB of objects). `loads` is json.loads."""
    if len(line) > max_bytes:
        raise ReplyRejected(f"reply larger than {max_bytes} bytes")
    # Every element but the first needs a comma, every container a bracket: an upper bound on
    # the objects json.loads would make, counted without making them.
    items = line.count(b",") + line.count(b"[") + line.count(b"{") + 1
    if items > max_items:
        raise ReplyRejected(f"reply with more than {max_items} elements")
    return loads(line)


def drop_root(uid: int) -> None:
    """Become the sandbox's own unprivileged uid (and gid, no groups). Leaving uid 0 this way
    clears every capability, so nothing after this line runs as host root."""
    if uid < 0 or os.getuid() != 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or 0 in os.getresuid():
        raise SystemExit("sandbox: could not leave root")


def set_limits(cfg: dict) -> None:
    """rlimits before any untrusted code: it cannot raise the hard limits back."""
    cpu = int(cfg["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = int(cfg["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = int(cfg["file_size_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    nproc = int(cfg["nproc"])
    if nproc > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def fresh_keyring(keyctl: int, seccomp_fd: int) -> None:
    """Join a new anonymous session keyring (keys are not namespaced: the inherited one is the
    evaluator's). In the weak mode, then load the seccomp filter compiled by the evaluator."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if keyctl >= 0 and libc.syscall(keyctl, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        code = ctypes.get_errno()
        if code != 38:  # ENOSYS: a kernel without keys has no keyring to share
            raise SystemExit(f"sandbox: no fresh session keyring ({os.strerror(code)})")
    if seccomp_fd < 0:
        return
    program = os.read(seccomp_fd, 1 << 20)
    os.close(seccomp_fd)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    filters = SockFprog(len(program) // 8, program)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.prctl(
        PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(filters), 0, 0
    ):
        raise SystemExit(f"sandbox: seccomp filter not loaded ({os.strerror(ctypes.get_errno())})")


def install_guard(workdir: str) -> None:
    """Weak mode only (no bubblewrap, by the user's choice): an audit hook refusing writes outside
    the work folder, sockets, signals to other processes and new processes. It binds Python code
    only; bubblewrap is the real isolation."""
    root = os.path.realpath(workdir)
    me = os.getpid()

    def inside(path: object) -> bool:
        if isinstance(path, int):
            return True
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
                raise PermissionError(f"sandbox: {event} outside the work folder")
        elif event in {"os.rename", "os.link", "os.symlink"}:
            if not (inside(args[0]) and inside(args[1])):
                raise PermissionError(f"sandbox: {event} outside the work folder")
        elif event == "socket.__new__":
            raise PermissionError("sandbox: network access is disabled")
        elif event in {"os.kill", "os.killpg"} and args[0] not in (me, 0):
            raise PermissionError("sandbox: signalling other processes is disabled")
        elif (
            event in {"os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.system"}
            or event == "subprocess.Popen"
        ):
            raise PermissionError("sandbox: starting processes is disabled")

    sys.addaudithook(hook)


def run_program(path: str) -> None:
    """Run a script as `__main__` (plain exec: runpy's imports cost more than the program)."""
    with open(path, encoding="utf-8") as handle:
        code = compile(handle.read(), path, "exec")
    exec(code, {"__name__": "__main__", "__file__": path, "__builtins__": builtins})


def serve(path: str, requests: int, replies: int) -> None:
    """Candidate role: load the code, say ready (or why not), then answer calls until EOF."""
    import json

    incoming = os.fdopen(requests, "rb")
    outgoing = os.fdopen(replies, "wb")

    def send(message: dict) -> None:
        outgoing.write(json.dumps(message).encode() + b"\n")
        outgoing.flush()

    namespace = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        with open(path, encoding="utf-8") as handle:
            exec(compile(handle.read(), "candidate.py", "exec"), namespace)
    except Exception as error:  # noqa: BLE001 - reported to the judge, who fails the run
        send({"load_error": f"{type(error).__name__}: {str(error)[:300]}"})
        raise
    send({"ready": True})
    for line in incoming:
        name, args, kwargs = json.loads(line)
        function = namespace.get(name)
        try:
            if not callable(function):
                raise NameError(f"name {name!r} is not defined by the program")
            result = function(*decode(args), **decode(kwargs))
            reply = {"ok": encode(result)}
        except Exception as error:  # noqa: BLE001 - an exception is the call's result
            reply = {"err": [type(error).__name__, str(error)[:300]]}
        send(reply)


class Candidate:
    """The judge's side of the pipe: calls with plain arguments, plain results back."""

    def __init__(self, requests: int, replies: int, max_bytes: int, max_items: int) -> None:
        import json

        self.json = json
        self.outgoing = os.fdopen(requests, "wb")
        self.incoming = os.fdopen(replies, "rb")
        self.max_bytes, self.max_items = max_bytes, max_items

    def receive(self) -> dict:
        line = self.incoming.readline(self.max_bytes + 1)
        if not line:
            raise CandidateGone("the program exited before answering")
        if not line.endswith(b"\n"):
            raise RemoteError(f"the program returned a result larger than {self.max_bytes} bytes")
        try:
            reply = decode_reply(line, self.max_bytes, self.max_items, self.json.loads)
        except ReplyRejected as error:
            raise RemoteError(f"the program's result was refused: {error}") from None
        if not isinstance(reply, dict):
            raise RemoteError("the program's reply is not a message")
        return reply

    def call(self, name: str, args: tuple, kwargs: dict) -> object:
        try:
            message = self.json.dumps([name, encode(list(args)), encode(kwargs)])
            self.outgoing.write(message.encode() + b"\n")
            self.outgoing.flush()
        except BrokenPipeError:
            raise CandidateGone("the program exited before answering") from None
        reply = self.receive()
        if "ok" in reply:
            try:
                return decode(reply["ok"])
            except ReplyRejected as error:
                raise RemoteError(f"the program's result was refused: {error}") from None
        kind, text = reply["err"]
        builtin = getattr(builtins, kind, None)
        # StopIteration raised into the tests would end their `map`/`for` loop early: as if all
        # the remaining asserts passed. It stays a plain error.
        if kind not in ("StopIteration", "StopAsyncIteration") and (
            isinstance(builtin, type) and issubclass(builtin, Exception)
        ):
            raise builtin(text)
        raise RemoteError(f"{kind}: {text}")

    def proxy(self, name: str):
        def remote(*args, **kwargs):
            return self.call(name, args, kwargs)

        remote.__name__ = name
        return remote


def defined_functions(source_path: str) -> set[str]:
    """Names the candidate's source defines with a top-level `def`. Parsed here, in the judge's
    sandbox, never in the evaluator: hostile source can make the parser raise or run long."""
    import ast

    try:
        with open(source_path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (SyntaxError, ValueError, RecursionError, MemoryError, OSError):
        return set()
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def judge(cfg: dict, candidate: Candidate) -> dict:
    """Judge role: the verdict of the tests against the candidate, as a dict."""
    with open(cfg["code"], encoding="utf-8") as handle:
        tests = handle.read()
    entry = cfg.get("entry", "")
    names = {name for name in cfg.get("names", "").split(",") if name}
    shadowed = {name for name in cfg.get("builtins", "").split(",") if name}
    if shadowed:
        # MBPP's `def sum(a, b)`: the tests call only builtins, and the builtin the candidate
        # redefines at top level is the function under test.
        names |= shadowed & defined_functions(cfg["source"])
    try:
        hello = candidate.receive()
    except CandidateGone:
        return {"verdict": "error", "reason": "the program exited while loading"}
    except RemoteError as error:
        return {"verdict": "error", "reason": str(error)}
    if "load_error" in hello:
        return {"verdict": "error", "reason": str(hello["load_error"])[:300]}
    if not names and not entry:
        return {"verdict": "error", "reason": "the tests call no function of the program"}
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
    for name in names:  # computed by the evaluator from the tests: `runners.called_names`
        if name in sys.stdlib_module_names and not hasattr(builtins, name):
            namespace[name] = __import__(name)  # `sys.getsizeof` in a test: the module itself
        else:
            namespace[name] = candidate.proxy(name)
    try:
        exec(compile(tests, "tests.py", "exec"), namespace)
        if entry:
            namespace["check"](candidate.proxy(entry))
    except AssertionError:
        line = sys.exc_info()[2]
        while line is not None and line.tb_frame.f_code.co_filename != "tests.py":
            line = line.tb_next
        where = f" (tests.py line {line.tb_lineno})" if line is not None else ""
        return {"verdict": "failed", "reason": f"assertion failed{where}"}
    except CandidateGone as error:
        return {"verdict": "failed", "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - the candidate's exception, or a bad result
        return {"verdict": "error", "reason": f"{type(error).__name__}: {str(error)[:200]}"}
    return {"verdict": "passed", "reason": "ok"}


def main() -> None:
    cfg = dict(arg.split("=", 1) for arg in sys.argv[1:])
    drop_root(int(cfg.get("uid", -1)))
    set_limits(cfg)
    fresh_keyring(int(cfg.get("keyctl", -1)), int(cfg.get("seccomp", -1)))
    if cfg.get("guard") == "1":
        install_guard(cfg["workdir"])
    os.chdir(cfg["workdir"])
    sys.path[:0] = [cfg["workdir"]]
    sys.path.extend(p for p in cfg.get("site_packages", "").split(os.pathsep) if p)
    role = cfg["role"]
    if role == "program":
        sys.argv = [cfg["code"]]
        run_program(cfg["code"])
    elif role == "candidate":
        serve(cfg["code"], int(cfg["requests"]), int(cfg["replies"]))
    else:
        import json

        candidate = Candidate(
            int(cfg["requests"]),
            int(cfg["replies"]),
            int(cfg["reply_bytes"]),
            int(cfg["reply_items"]),
        )
        verdict = judge(cfg, candidate)
        sys.stdout.flush()
        os.write(1, (VERDICT_PREFIX + json.dumps(verdict) + "\n").encode())


if __name__ == "__main__":
    main()
