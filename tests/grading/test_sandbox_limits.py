"""The limits of issue 22 that did not hold, one test each: a CPU budget over all of a sample's
processes, cgroup v2 as well as v1 (and a stated fallback without either), the seccomp filter,
replies bounded in size and decoding cost, and evalplus's type checks."""

import ctypes
import errno
import os
import time
import tracemalloc

import pytest

from frontload.evaluate.tasks import get_task
from frontload.grading.sandbox import (
    Limits,
    cgroups,
    isolation,
    outputs_equal,
    run_calls,
    run_program,
    seccomp,
)
from frontload.grading.sandbox.cgroups import RunGroup

if isolation._probe():  # the suite is about bubblewrap's isolation; say why it cannot run here
    pytest.skip(f"bubblewrap cannot run here: {isolation._probe()}", allow_module_level=True)


@pytest.fixture
def drawn_uids(monkeypatch) -> set[int]:
    """The sandbox uids this test's runs drew (other tests may run sandboxes meanwhile)."""
    drawn: set[int] = set()
    draw = isolation.sandbox_uid

    def recording() -> int:
        uid = draw()
        drawn.add(uid)
        return uid

    monkeypatch.setattr(isolation, "sandbox_uid", recording)
    return drawn


def sandbox_processes(uids: set[int]) -> list[int]:
    """Processes on the host that run as one of `uids` (there must be none after the runs)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/status") as handle:
                    uid = int(next(line for line in handle if line.startswith("Uid:")).split()[1])
            except (OSError, StopIteration, ValueError):
                continue
            if uid in uids:
                found.append(int(entry.name))
    return found


def leftover_groups() -> list[str]:
    mine = f"fl-sandbox-{os.getpid()}-"
    return [
        str(path)
        for hierarchy in cgroups.machine_plan().values()
        for path in hierarchy.parent.glob(mine + "*")
    ]


SPINNERS = (
    "import os, time\n"
    "for _ in range(3):\n"
    "    if os.fork() == 0:\n"
    "        while True:\n"  # spin, reporting this child's own CPU time as it grows
    "            t = os.times()\n"
    "            print(os.getpid(), t.user + t.system, flush=True)\n"
    "            end = time.perf_counter() + 0.02\n"
    "            while time.perf_counter() < end:\n"
    "                pass\n"
    "time.sleep(60)\n"
)


def test_cpu_budget_counts_every_process_of_a_sample(drawn_uids):
    if "cpu" not in cgroups.machine_plan():
        pytest.skip(f"no cgroup counts CPU time here: {cgroups.summary()['cpu']}")
    started = time.monotonic()
    result = run_program(SPINNERS, limits=Limits(timeout_s=30.0, cpu_s=1))
    assert (result.verdict, result.reason) == ("timeout", "cpu time limit (1 s, all processes)")
    last: dict[str, float] = {}
    for line in result.stdout.splitlines():
        pid, used = line.split()
        last[pid] = float(used)
    assert len(last) == 3
    # per-process limits alone would allow 3 x 1 s; the budget is 1 s (+0.25 s for the start,
    # + one 50 ms poll on 2 cores, + a busy machine's delay)
    assert sum(last.values()) < 2.0, last
    assert time.monotonic() - started < 10
    assert sandbox_processes(drawn_uids) == [] and leftover_groups() == []


def test_process_cap_holds_with_cgroups_and_without(monkeypatch, drawn_uids):
    forks = (
        "import os, time\nmade = 0\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        made += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "print(made)\n"
    )
    limits = Limits(timeout_s=10.0, processes=8)
    with_groups = run_program(forks, limits=limits)
    assert with_groups.verdict == "passed" and int(with_groups.stdout) < 8
    # no writable cgroup at all: said once, and RLIMIT_NPROC under the sandbox's own uid caps it
    monkeypatch.setattr(cgroups, "machine_plan", lambda: {})
    without = run_program(forks, limits=limits)
    assert without.verdict == "passed" and int(without.stdout) < 8
    assert sandbox_processes(drawn_uids) == []


def test_no_writable_cgroup_is_said_once(monkeypatch, capsys):
    monkeypatch.setitem(cgroups._warned, "done", False)
    cgroups.warn_if_missing({})
    cgroups.warn_if_missing({})
    said = capsys.readouterr().err
    assert said.count("no writable cgroup for pids, memory, cpu") == 1
    assert "RLIMIT_NPROC" in said


def fake_v2(root, controllers="cpu memory pids", enabled="memory pids"):
    """A cgroup v2 hierarchy laid out in a temporary folder, and its mountinfo line."""
    mount = root / "cg2"
    (mount / "fl").mkdir(parents=True)
    (mount / "cgroup.controllers").write_text(controllers)
    (mount / "cgroup.subtree_control").write_text(enabled)
    (mount / "fl" / "cgroup.subtree_control").write_text("")
    return f"99 25 0:99 / {mount} rw,relatime - cgroup2 cgroup2 rw\n"


def test_cgroup_v2_path_on_a_laid_out_hierarchy(tmp_path):
    mountinfo = fake_v2(tmp_path)
    v1 = tmp_path / "pids"
    v1.mkdir()
    mountinfo += f"40 25 0:40 / {v1} rw,relatime - cgroup cgroup rw,pids\n"
    found = cgroups.discover(mountinfo, "3:pids:/\n0::/fl\n")
    # fl's own cgroup enables nothing for its children; the root enables pids and memory
    v2 = next(h for h in found if h.version == 2)
    assert (v2.parent, v2.gives) == (tmp_path / "cg2", frozenset({"pids", "memory"}))
    plan = cgroups.choose(found)
    assert plan["pids"] == v2 and plan["memory"] == v2 and "cpu" not in plan
    group = RunGroup.make(processes=8, memory_mb=100, plan=plan)
    (folder,) = group.folders
    assert folder.parent == tmp_path / "cg2" and folder.name.startswith("fl-sandbox-")
    assert (folder / "pids.max").read_text() == str(8 + cgroups.EXTRA_PROCESSES)
    assert int((folder / "memory.max").read_text()) == (100 + cgroups.MEMORY_SLACK_MB) << 20
    assert (folder / "memory.swap.max").read_text() == "0"
    assert f"echo $$ > {folder / 'cgroup.procs'}" in group.launcher(["bwrap"])[2]
    # CPU time of all the run's processes, as v2's cpu.stat counts it
    (folder / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    assert RunGroup([folder], folder / "cpu.stat", cpu_v2=True).cpu_seconds() == 1.5
    assert cgroups.summary(plan)["cpu"] == "none (RLIMIT_CPU per process)"


def test_cgroup_v2_is_preferred_and_used_where_the_kernel_has_it():
    mounts = cgroups.parse_mounts(cgroups.MOUNTINFO.read_text())
    plan = cgroups.machine_plan()
    if os.geteuid() != 0 or not plan:
        pytest.skip("no writable cgroup here (not root)")
    v2 = [m for m in mounts if m.version == 2]
    if v2:  # every v2 cgroup counts CPU time: the budget comes from v2 (a real kernel's cpu.stat)
        assert plan["cpu"].version == 2
        group = RunGroup.make(4, 64, {"cpu": plan["cpu"]})
        try:
            assert group.cpu_seconds() == 0.0
        finally:
            group.remove()
    for resource, hierarchy in plan.items():
        assert resource in hierarchy.gives


def test_seccomp_filter_denies_what_it_must(tmp_path):
    # the compiled filter, loaded into a child of this test (no bubblewrap), then each call tried
    program = seccomp.program()
    names = [
        "keyctl",
        "add_key",
        "request_key",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "ptrace",
        "perf_event_open",
        "bpf",
        "mount",
        "umount2",
        "unshare",
        "setns",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
    ]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: filter, then harmless arguments to each call (never a real effect)
        try:
            libc = ctypes.CDLL(None, use_errno=True)

            class Prog(ctypes.Structure):
                _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

            prog = Prog(len(program) // 8, program)
            assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
            assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0  # PR_SET_SECCOMP, FILTER
            codes = []
            for name in names:
                args = (0x10000000,) if name == "unshare" else (0, 0, 0, 0, 0)
                libc.syscall(seccomp.syscall_number(name), *args)
                codes.append(ctypes.get_errno())
            for flags in (0x10000000 | 17, 0x00020000 | 17):  # clone(NEWUSER), clone(NEWNS)
                result = libc.syscall(seccomp.syscall_number("clone"), flags, 0, 0, 0, 0)
                if result == 0:
                    os._exit(0)
                codes.append(ctypes.get_errno())
            libc.syscall(seccomp.syscall_number("clone3"), 0, 0)
            codes.append(ctypes.get_errno())
            keyring = libc.syscall(seccomp.syscall_number("keyctl"), 1, None)  # join a new one
            codes.append(0 if keyring > 0 else ctypes.get_errno())
            pid_child = os.fork()  # ordinary processes still work
            if pid_child == 0:
                os._exit(7)
            codes.append(os.WEXITSTATUS(os.waitpid(pid_child, 0)[1]))
            os.write(write, repr(codes).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        codes = eval(handle.read())  # noqa: S307 - our own child's list of ints
    os.waitpid(pid, 0)
    assert codes[: len(names)] == [errno.EPERM] * len(names), dict(zip(names, codes, strict=False))
    assert codes[len(names) :] == [errno.EPERM, errno.EPERM, errno.ENOSYS, 0, 7]


def test_the_sandbox_loads_the_filter():
    # io_uring and a user namespace are open to any unprivileged process on this kernel unless
    # filtered; inside the sandbox both are refused
    probe = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"libc.syscall({seccomp.syscall_number('io_uring_setup')}, 4, ctypes.create_string_buffer(120))\n"
        "print(ctypes.get_errno())\n"
        f"libc.syscall({seccomp.syscall_number('unshare')}, 0x10000000)\n"
        "print(ctypes.get_errno())\n"
        "print(open('/proc/self/status').read().split('Seccomp:')[1].split()[0])\n"
    )
    result = run_program(probe, limits=Limits(timeout_s=5.0))
    assert result.stdout.split() == [str(errno.EPERM), str(errno.EPERM), "2"], result


def test_a_reply_of_empty_lists_does_not_grow_the_evaluator():
    flood = "def f(x):\n    return [[] for _ in range(4_000_000)]\n"  # 12 MB of JSON
    tracemalloc.start()
    try:
        result = run_calls(flood, "f", [[1]], Limits(timeout_s=30.0), expected=[[]])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.verdict == "error" and "more than 1000000 elements" in result.reason, result
    assert peak < 64 * 1024 * 1024, f"{peak / 2**20:.0f} MB"


def test_a_reply_too_costly_to_decode_is_refused_quickly():
    # a set of integers that all hash alike: quadratic to build on the evaluator's side
    colliding = (
        "import os, sys\n"
        "arg = dict(a.split('=', 1) for a in sys.argv[1:] if '=' in a)\n"
        "items = ','.join(str(i * (2**61 - 1)) for i in range(1, 60001))\n"
        "reply = ('{\"ok\": {\"$s\": [' + items + ']}}\\n').encode()\n"
        "def f(x):\n"
        "    os.write(int(arg['replies']), reply)\n"
        "    os._exit(0)\n"
    )
    started = time.monotonic()
    result = run_calls(colliding, "f", [[1]], Limits(timeout_s=30.0), expected=[set()])
    assert result.verdict == "error" and "share one hash" in result.reason, result
    assert time.monotonic() - started < 5
    oversized = run_calls(
        "def f(x):\n    return 'x' * 3_000_000\n",
        "f",
        [[1]],
        Limits(timeout_s=30.0, reply_bytes=1_000_000),
        expected=[""],
    )
    assert oversized.verdict == "error" and "larger than 1000000 bytes" in oversized.reason


def test_evalplus_checks_types_as_evalplus_does():
    assert not outputs_equal("0.5", 0.5)  # a string where a float is expected
    assert not outputs_equal(["0.5"], [0.5])
    assert not outputs_equal((0.5,), [0.5000001])  # a tuple where a list is expected
    assert outputs_equal(0.50000001, 0.5)  # within 1e-6 + 1e-7 relative
    assert outputs_equal(1, 1.0)  # equal by ==, as evalplus's exact match
    assert not outputs_equal(10**400, 0.5) and not outputs_equal([10**400], [0.5])
    assert not outputs_equal(float("nan"), float("nan"))
    assert outputs_equal(float("inf"), float("inf")) and not outputs_equal(1e308, float("inf"))
    assert outputs_equal([1.0, 2.0000001], [1.0, 2.0], atol=1e-6)
    task = get_task("mbpp_plus")
    record = {
        "task_id": "Mbpp/1",
        "prompt": '"""Area of a circle."""\n',
        "canonical_solution": "def area(r):\n    return 3.141592653589793 * r * r\n",
        "entry_point": "area",
        "base_input": [[1.0], [2.0]],
        "plus_input": [],
        "atol": 0,
    }
    samples = task.build([record], "chat", None, None) * 3
    completions = [
        "```python\ndef area(r):\n    return 3.14159265358979 * r ** 2\n```",
        "```python\ndef area(r):\n    return str(3.141592653589793 * r * r)\n```",
        "```python\ndef area(r):\n    return [3.141592653589793 * r * r]\n```",
    ]
    assert [g.verdict for g in task.grade(samples, completions)] == ["passed", "failed", "failed"]
