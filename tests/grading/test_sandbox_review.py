"""The second review of issue 22's sandbox: what a new set of hostile programs still reached as
root, one test per class. Each program is benign (it probes, it changes nothing of the machine),
and each test asserts the verdict and that the host is as it was, with markers the test makes."""

import ctypes
import errno
import os
import random
import socket
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from frontload.grading.extract import extract_answer, extract_choice
from frontload.grading.sandbox import (
    Job,
    Limits,
    cgroups,
    isolation,
    run_program,
    run_programs,
    seccomp,
)
from frontload.grading.sandbox.cgroups import Hierarchy, RunGroup
from frontload.train.posttrain.rewards import extract_program

if isolation._probe():  # the suite is about bubblewrap's isolation; say why it cannot run here
    pytest.skip(f"bubblewrap cannot run here: {isolation._probe()}", allow_module_level=True)

QUICK = Limits(timeout_s=10.0, processes=16)
AIO_IN_USE = Path("/proc/sys/fs/aio-nr")  # the host-wide count of AIO events reserved


def test_sockets_that_leave_the_network_namespace_are_refused():
    # AF_VSOCK reaches the hypervisor whatever the network namespace (on this machine's VM a
    # connect to the host's CID is answered); AF_ALG is the kernel crypto API of the "Copy Fail"
    # page-cache write. Only creating sockets is tried: nothing is bound or connected. The kernel
    # reads the family as an int, so high bits must not slip a refused family past the filter.
    vsock_here = os.path.exists("/dev/vsock")
    if vsock_here:  # the test's own process (no filter) may open one: the filter is what refuses
        socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()
    probe = textwrap.dedent(
        f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def opened(family, kind):
            fd = libc.syscall({seccomp.syscall_number("socket")}, ctypes.c_long(family), kind, 0)
            if fd >= 0:
                os.close(fd)
                return "open"
            return str(ctypes.get_errno())
        refused = [(40, 1), (38, 5), (17, 3), (31, 1), (40 | 1 << 32, 1), (38 | 1 << 32, 5)]
        allowed = [(1, 1), (2, 1), (10, 2), (16, 3)]
        print(*[opened(f, k) for f, k in refused])
        print(*[opened(f, k) for f, k in allowed])
        context = ctypes.c_ulong(0)
        aio = libc.syscall({seccomp.syscall_number("io_setup")}, 4096, ctypes.byref(context))
        print(aio if aio >= 0 else ctypes.get_errno())
        """
    )
    aio_before = AIO_IN_USE.read_text()
    result = run_program(probe, limits=QUICK)
    assert result.verdict == "passed", result
    refused, allowed, aio = result.stdout.splitlines()
    assert refused.split() == [str(errno.EAFNOSUPPORT)] * 6
    assert allowed.split() == ["open"] * 4  # local, IP and netlink sockets still work
    # an AIO context would take from the host-wide pool (fs.aio-max-nr) while the run lives
    assert aio == str(errno.EPERM)
    assert AIO_IN_USE.read_text() == aio_before


def test_the_private_tmp_holds_at_most_the_memory_limit_even_without_a_memory_cgroup(
    monkeypatch,
):
    if not isolation.tmpfs_size_supported():
        pytest.skip(f"{isolation.bwrap_binary()} has no --size (bubblewrap 0.10 and later)")
    # a tmpfs is memory no rlimit counts: without a memory cgroup, files in /tmp grew to half of
    # the machine's memory (3 GB of them with a 512 MB limit)
    fill = textwrap.dedent(
        """
        import errno
        chunk, written = b"x" * (1 << 20), 0
        try:
            for number in range(1000):
                with open(f"/tmp/fill{number}", "wb") as handle:
                    for _ in range(8):
                        handle.write(chunk)
                        written += 1
        except OSError as error:
            print(written, errno.errorcode[error.errno])
        """
    )
    monkeypatch.setattr(cgroups, "machine_plan", lambda: {})
    free_before = _available_mb()
    result = run_program(fill, limits=Limits(timeout_s=20.0, memory_mb=64))
    assert result.verdict == "passed", result
    written, why = result.stdout.split()
    assert int(written) <= 64 and why == "ENOSPC"
    assert _available_mb() > free_before - 512  # nothing of it is left on the host
    # a program's ordinary temporary files still fit
    small = (
        "open('/tmp/data', 'wb').write(b'x' * (8 << 20))\n"
        "print(open('/tmp/data', 'rb').read()[:1].decode())\n"
    )
    assert run_program(small, limits=Limits(timeout_s=20.0, memory_mb=64)).stdout == "x\n"


def _available_mb() -> int:
    with open("/proc/meminfo") as handle:
        line = next(line for line in handle if line.startswith("MemAvailable:"))
    return int(line.split()[1]) // 1024


# Two evaluator processes seeded alike, as transformers' `set_seed` seeds every rank of a
# training run: the first holds 30 processes, the second (a second later) needs a thread.
SEEDED_EVALUATOR = """
import random, sys, time
from frontload.grading.sandbox import Limits, run_program
random.seed(1234)
if sys.argv[1] == "holder":
    source = (
        "import os, time\\n"
        "for _ in range(30):\\n"
        "    if os.fork() == 0:\\n"
        "        time.sleep(4)\\n"
        "        os._exit(0)\\n"
        "time.sleep(4)\\n"
    )
else:
    time.sleep(1.5)
    source = "import threading\\nt = threading.Thread(target=print, args=('ran',))\\nt.start()\\nt.join()\\n"
result = run_program(source, limits=Limits(timeout_s=10.0, processes=32))
print(result.verdict, result.stdout.strip())
"""


def test_sandboxes_of_evaluators_seeded_alike_never_share_a_uid(tmp_path):
    # the uid came from the `random` module: the same seed drew the same uid in both evaluators,
    # and RLIMIT_NPROC (counted per uid) failed the second, correct, program
    started = [
        subprocess.Popen(
            [sys.executable, "-c", SEEDED_EVALUATOR, role],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in ("holder", "needs_a_thread")
    ]
    outputs = [process.communicate(timeout=60) for process in started]
    holder, second = (out.strip() for out, _ in outputs)
    assert holder == "passed", outputs[0]
    assert second == "passed ran", outputs[1]
    # within one evaluator, a running sandbox's uid is never drawn again, whatever the seed
    random.seed(5)
    first = isolation.sandbox_uid()
    random.seed(5)
    second_uid = isolation.sandbox_uid()
    try:
        if os.geteuid() == 0:
            assert first != second_uid
    finally:
        isolation.release_uid(first)
        isolation.release_uid(second_uid)


def test_a_new_run_group_never_takes_a_running_ones(tmp_path):
    # a cgroup's name came from the `random` module: re-seeded, an evaluator drew the name of a
    # group still in use, and making "its" group killed the other run's processes
    hierarchy = Hierarchy(2, tmp_path, frozenset({"cpu"}))
    random.seed(99)
    running = RunGroup.make(4, 64, {"cpu": hierarchy})
    (folder,) = running.folders
    other_run = subprocess.Popen(["sleep", "30"])  # stands for the running group's member
    try:
        (folder / "cgroup.procs").write_text(str(other_run.pid))
        random.seed(99)
        new = RunGroup.make(4, 64, {"cpu": hierarchy})
        time.sleep(0.1)
        assert other_run.poll() is None  # still running
        assert folder.exists() and folder not in new.folders
    finally:
        other_run.kill()
        other_run.wait()


@pytest.mark.parametrize(
    "completion",
    [
        "```" + "\n" * 200_000,  # the code reward's fence pattern
        "```" + " \n" * 100_000,
        "\\boxed{" * 30_000,  # unclosed boxes: each scanned to the end
        "\\boxed{" * 20_000 + "1" + "}" * 20_000,  # nested boxes: each copied
        "answer is" + " " * 200_000,  # two neighbouring quantifiers over the same spaces
        "\\boxed{1}, " + " " * 200_000 + "x\\boxed{2}",
        "The answer is " + "$1$ and " * 30_000,
    ],
)
def test_hostile_completions_are_read_in_linear_time(completion):
    # extraction runs in the trainer and the evaluator themselves, on text a model wrote (or a
    # corpus held, in curation's answer check): each of these took from 30 s to minutes
    started = time.process_time()
    extract_program(completion)
    extract_answer(completion)
    extract_choice(completion, letters="ABCDEFGHIJ")
    assert time.process_time() - started < 2.0


def test_filter_refuses_high_bit_families_in_a_bare_child():
    # the compiled filter alone (no bubblewrap), so the rule itself is what is checked
    program = seccomp.program()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)

            class Prog(ctypes.Structure):
                _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

            prog = Prog(len(program) // 8, program)
            assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
            assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0  # PR_SET_SECCOMP, FILTER
            codes = []
            for family in (40, 40 | 1 << 32, 38 | 1 << 32, 1 | 1 << 32, 0, 3, 15, 17):
                fd = libc.syscall(seccomp.syscall_number("socket"), ctypes.c_long(family), 1, 0)
                codes.append(ctypes.get_errno() if fd < 0 else 0)
            os.write(write, " ".join(map(str, codes)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        codes = handle.read().split()
    os.waitpid(pid, 0)
    assert codes == [str(errno.EAFNOSUPPORT)] * 8


def test_a_pool_of_jobs_keeps_no_programs_whole_output():
    # each result held a million characters of the program's output (4 MB as a string) until the
    # pool's last job ended: `fl evaluate score` on 4,270 MBPP rows would have held 15 GB
    flood = (
        "import sys\n"
        "sys.stdout.write('\\U0001F600' * 1_000_000)\n"
        "def add(a, b):\n    return a + b\n"
    )
    limits = Limits(timeout_s=20.0)
    jobs = [Job(flood, tests="assert add(1, 2) == 3\n", limits=limits)] * 3
    jobs.append(Job(flood, expected_stdout="3", limits=limits))
    tracemalloc.start()
    try:
        results = run_programs(jobs, workers=2)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r.verdict for r in results] == ["passed"] * 3 + ["failed"]
    assert all(len(r.stdout) <= limits.stderr_chars for r in results)
    assert held < 4 * 1024 * 1024, f"{held / 2**20:.1f} MB"
    # a single run still returns what the program printed (the evaluator compares it)
    single = run_program("print('x' * 5000)", limits=QUICK)
    assert single.stdout == "x" * 5000 + "\n"
