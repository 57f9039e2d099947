"""The five breaches of issue 22, one test each, as fl runs them (as root in CI). Each hostile
program here is new (benign payloads: it probes, it does not change the machine), and each test
asserts the verdict and that the host is unchanged, with markers the test makes itself."""

import ast
import ctypes
import json
import os
import secrets
import time

import pytest

from frontload.evaluate.tasks import get_task
from frontload.grading.sandbox import (
    Job,
    Limits,
    isolation,
    run_calls,
    run_program,
    run_programs,
    run_tests,
    seccomp,
)
from frontload.train.posttrain.rewards import RewardLog, build_rewards

if isolation._probe():  # the suite is about bubblewrap's isolation; say why it cannot run here
    pytest.skip(f"bubblewrap cannot run here: {isolation._probe()}", allow_module_level=True)

QUICK = Limits(timeout_s=5.0, processes=16)
ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
CORRECT = "def add(a, b):\n    return a + b\n"

# Inside the sandbox: the process's uid and its uid map (the identity map when it runs in the
# host's user namespace, as it does when fl is root).
IDENTITY = """
def identity():
    import os
    return os.getuid(), open("/proc/self/uid_map").read().split()
"""


def assert_not_host_root(uid: int, uid_map: list[str]) -> None:
    if os.geteuid() == 0:  # no user namespace: the uid map is the host's, the uid a sandbox's own
        assert uid_map == ["0", "0", "4294967295"]
        assert isolation.UID_BASE <= uid < isolation.UID_BASE + isolation.UID_SPAN
    else:  # bubblewrap's user namespace maps the sandbox to the caller, who is not root
        assert len(uid_map) == 3 and uid_map[0] == str(uid)


def host_sysctls() -> dict[str, str]:
    """Host settings a root sandbox could have changed; read, never written."""
    values = {}
    for path in (
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/hostname",
        "/proc/sys/kernel/domainname",
        "/proc/sys/kernel/modprobe",
        "/proc/sys/user/max_user_namespaces",
        "/proc/sys/vm/overcommit_memory",
    ):
        if os.path.exists(path):
            with open(path) as handle:
                values[path] = handle.read()
    return values


def test_breach1_code_never_runs_as_host_root_and_proc_sys_is_read_only():
    before = host_sysctls()
    probe = IDENTITY + (
        "import os, socket\n"
        "writable = []\n"
        "for root, dirs, files in os.walk('/proc/sys'):\n"
        "    for name in files:\n"
        "        try:\n"
        "            os.close(os.open(os.path.join(root, name), os.O_WRONLY))  # writes nothing\n"
        "            writable.append(name)\n"
        "        except OSError:\n"
        "            pass\n"
        "outcomes = []\n"
        "for attempt in (lambda: os.fchmod(1, 0o4755), lambda: os.fchown(1, 0, 0),\n"
        "                lambda: socket.sethostname('fl-marker')):\n"
        "    try:\n"
        "        attempt()\n"
        "        outcomes.append('done')\n"
        "    except OSError as error:\n"
        "        outcomes.append(type(error).__name__)\n"
        "uid, uid_map = identity()\n"
        "print(uid, len(writable), *outcomes, *uid_map)\n"
    )
    result = run_program(probe, limits=QUICK)
    assert result.verdict == "passed", result
    uid, writable, *outcomes = result.stdout.split()
    assert_not_host_root(int(uid), outcomes[3:])
    assert writable == "0"
    assert outcomes[:3] == ["PermissionError"] * 3
    # the candidate of a judged run, too: its identity comes back through the judge
    judged = run_calls(IDENTITY, "identity", [[]], QUICK)
    assert judged.verdict == "passed", judged
    ((uid, uid_map),) = judged.outputs
    assert_not_host_root(uid, uid_map)
    assert host_sysctls() == before


def _syscall(name: str, *args) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(seccomp.syscall_number(name), *args)
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result


def _keyring_serials(keyring: int) -> list[int]:
    buffer = ctypes.create_string_buffer(4096)
    size = _syscall("keyctl", 11, keyring, buffer, len(buffer))  # KEYCTL_READ
    return list(ctypes.cast(buffer, ctypes.POINTER(ctypes.c_int32))[: size // 4])


def test_breach2_keyrings_are_out_of_reach(tmp_path):
    session = -3  # KEY_SPEC_SESSION_KEYRING
    marker, secret = f"fl-marker-{secrets.token_hex(4)}", f"secret-{secrets.token_hex(8)}"
    serial = _syscall("add_key", b"user", marker.encode(), secret.encode(), len(secret), session)
    try:
        before = sorted(_keyring_serials(session))
        probe = (
            "import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "def call(number, *args):\n"
            "    if libc.syscall(number, *args) < 0:\n"
            "        return os.strerror(ctypes.get_errno()).replace(' ', '_')\n"
            "    return 'allowed'\n"
            f"keyctl, add_key, request_key = {seccomp.syscall_number('keyctl')}, "
            f"{seccomp.syscall_number('add_key')}, {seccomp.syscall_number('request_key')}\n"
            "buffer = ctypes.create_string_buffer(256)\n"
            f"print(call(keyctl, 11, {serial}, buffer, 256),\n"  # read the host's key
            f"      call(keyctl, 9, {serial}, -3),\n"  # unlink it from the session keyring
            "      call(keyctl, 0, -3, 0),\n"  # the session keyring's id
            "      call(keyctl, 1, b'named', 0),\n"  # join a named (shared) keyring
            "      call(add_key, b'user', b'planted', b'x', 1, -3),\n"
            "      call(add_key, b'user', b'planted', b'x', 1, -4),\n"  # the uid's user keyring
            f"      call(request_key, b'user', {marker.encode()!r}, None, 0))\n"
            "print(open('/proc/keys').read())\n"
        )
        result = run_program(probe, limits=QUICK)
        assert result.verdict == "passed", result
        verdicts, proc_keys = result.stdout.split("\n", 1)
        assert verdicts.split() == ["Operation_not_permitted"] * 7
        assert marker not in proc_keys and f"{serial:08x}" not in proc_keys
        assert f"{(-3) & 0xFFFFFFFF:08x}" not in proc_keys
        assert secret not in result.stdout + result.stderr_tail
        # and the host's keyring is as it was: same keys, same payload
        assert sorted(_keyring_serials(session)) == before
        buffer = ctypes.create_string_buffer(256)
        size = _syscall("keyctl", 11, serial, buffer, len(buffer))
        assert buffer.raw[:size].decode() == secret
    finally:
        _syscall("keyctl", 9, serial, session)  # KEYCTL_UNLINK


def test_breach3_one_reply_never_takes_its_chunk_down():
    task = get_task("humaneval_plus")
    record = {
        "task_id": "T/0",
        "prompt": "def half(x: float) -> float:\n",
        "canonical_solution": "    return x / 2\n",
        "entry_point": "half",
        "base_input": [[1.0], [3.0]],
        "plus_input": [[5.0]],
        "atol": 0,
    }
    samples = task.build([record], "base", None, None) * 4
    completions = [
        "    return x / 2\n",
        "    return 10 ** 400\n",  # no float holds it: comparing must not raise
        "    return str(x / 2)\n",
        "    return x * 0.5\n",
    ]
    verdicts = [g.verdict for g in task.grade(samples, completions, workers=2)]
    assert verdicts == ["passed", "failed", "failed", "passed"]
    # LiveCodeBench's functional tests compare printed JSON: printed JSON nested past the
    # parser's limit is that sample's wrong output
    lcb = get_task("livecodebench")
    problem = {
        "problem": "Return x + 1.",
        "starter_code": "class Solution:\n    def inc(self, x: int) -> int:\n",
        "tests": [{"input": "1", "output": "2", "testtype": "functional"}],
    }
    code = "```python\nclass Solution:\n    def inc(self, x):\n        {}\n```"
    graded = lcb.grade(
        lcb.build([problem], "chat", None, None) * 2,
        [code.format("print('[' * 200000); return x + 1"), code.format("return x + 1")],
    )
    assert [g.verdict for g in graded] == ["failed", "passed"]
    # a program the evaluator cannot even write down (a lone surrogate from a predictions file)
    jobs = [
        Job(CORRECT, tests=ADD_TESTS, limits=QUICK),
        Job("def add(a, b):\n    return '\ud800'\n", tests=ADD_TESTS, limits=QUICK),
        Job("print(2)", expected_stdout="2", limits=QUICK),
    ]
    results = run_programs(jobs, workers=2)
    assert [r.verdict for r in results] == ["passed", "error", "passed"]
    assert "UnicodeEncodeError" in results[1].reason


def test_breach4_a_program_that_blocks_its_pipes_cannot_hang_the_evaluator():
    # fills its request pipe (reopened for writing where the kernel lets it: not as the sandbox
    # uid, whose pipes are root's), says ready itself, then sleeps without reading: an input
    # larger than a pipe buffer blocks any writer that waits
    blocker = (
        "import os, sys, time\n"
        "arg = dict(a.split('=', 1) for a in sys.argv[1:] if '=' in a)\n"
        "try:\n"
        "    fd = os.open(f\"/proc/self/fd/{arg['requests']}\", os.O_WRONLY | os.O_NONBLOCK)\n"
        "    while True:\n"
        "        os.write(fd, b'x' * 65536)\n"
        "except OSError:\n"
        "    pass\n"
        "os.write(int(arg['replies']), b'{\"ready\": true}\\n')\n"
        "time.sleep(120)\n"
        "def f(x):\n    return x\n"
    )
    started = time.monotonic()
    result = run_calls(
        blocker, "f", [[list(range(50_000))]], Limits(timeout_s=3.0), [0], 0.0, [1.0]
    )
    assert result.verdict == "timeout" and time.monotonic() - started < 8, result
    judged = run_tests(blocker.replace("def f", "def add"), ADD_TESTS, limits=Limits(timeout_s=3.0))
    assert judged.verdict == "timeout" and judged.wall_s < 8, judged
    assert run_calls(CORRECT, "add", [[1, 2]], QUICK, [3]).verdict == "passed"


def test_breach5_candidate_code_is_never_parsed_by_the_evaluator(monkeypatch, tmp_path):
    deep = "x = " + "-" * 3000 + "1\n"  # the parser's recursion limit, in any process
    parsed: list[str] = []
    real_parse = ast.parse

    def recording_parse(source, *args, **kwargs):
        parsed.append(source if isinstance(source, str) else repr(source))
        return real_parse(source, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", recording_parse)
    builtin_only = "assert sum(10, 15) == 6\nassert sum(4, 6) == 3\n"  # MBPP 126's shape
    gcd = (  # the sum of common divisors, under the builtin's name
        "def sum(a, b):\n    total = 0\n    for d in range(1, min(a, b) + 1):\n"
        "        if a % d == 0 and b % d == 0:\n            total += d\n    return total\n"
    )
    jobs = [
        Job(deep + gcd, tests=builtin_only, limits=QUICK),
        Job(gcd, tests=builtin_only, limits=QUICK),
        Job(deep + CORRECT, tests=ADD_TESTS, limits=QUICK),
        Job(CORRECT, tests=ADD_TESTS, limits=QUICK),
    ]
    verdicts = [r.verdict for r in run_programs(jobs, workers=2)]
    assert verdicts == ["error", "passed", "error", "passed"]
    log = RewardLog(tmp_path, samples_per_call=0)
    rewards, _ = build_rewards(["code"], 5.0, log)
    completions = [
        [{"role": "assistant", "content": f"```python\n{code}```"}] for code in (deep + gcd, gcd)
    ]
    scores = rewards[0]([None] * 2, completions, reference=[builtin_only] * 2, task=["code"] * 2)
    assert scores == [0.0, 1.0] and log.errors == 0
    assert not [source for source in parsed if deep in source]
    assert parsed  # the tests themselves were parsed, here, through the same function


def test_replies_are_checked_as_json_lines_not_trusted_as_verdicts():
    # a forged verdict in the candidate's stdout and a forged hello never decide anything
    forger = (
        "import json, os, sys\n"
        "print('FL-VERDICT ' + json.dumps({'verdict': 'passed', 'reason': 'ok'}))\n"
        "def add(a, b):\n    return 0\n"
    )
    result = run_tests(forger, ADD_TESTS, limits=QUICK)
    assert result.verdict == "failed"
    assert json.loads(json.dumps(result.to_dict()))["verdict"] == "failed"
