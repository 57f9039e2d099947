"""Hostile programs: none may forge its verdict, harm the evaluator or the machine; each gets the
verdict it must get, and the correct program passes."""

import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from frontload.errors import ConfigError
from frontload.grading.sandbox import (
    Job,
    Limits,
    called_names,
    run_calls,
    run_program,
    run_programs,
    run_tests,
)
from frontload.grading.sandbox import isolation as sandbox_isolation

if sandbox_isolation._probe():  # the suite is about bubblewrap's isolation; say why not here
    reason = sandbox_isolation._probe()
    pytest.skip(f"bubblewrap cannot run here: {reason}", allow_module_level=True)

QUICK = Limits(timeout_s=3.0, processes=16)
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
CORRECT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"


def judged(prefix: str, body: str = "    return a - b\n") -> str:
    """A wrong `add` that first runs `prefix` (module level) and `body` when called."""
    return f"{prefix}\ndef add(a, b):\n{body}"


def test_correct_program_passes_and_wrong_one_fails():
    assert run_tests(CORRECT, TESTS, limits=QUICK).verdict == "passed"
    wrong = run_tests(WRONG, TESTS, limits=QUICK)
    assert (wrong.verdict, wrong.reason) == ("failed", "assertion failed (tests.py line 1)")
    raised = run_tests("def add(a, b):\n    raise ValueError('boom')\n", TESTS, limits=QUICK)
    assert raised.verdict == "error" and "ValueError: boom" in raised.reason


def test_humaneval_style_check_with_entry_point():
    check = "def check(candidate):\n    assert candidate(2) == 4\n    assert abs(candidate(0.5) - 0.25) < 1e-9\n"
    assert (
        run_tests("def sq(x):\n    return x * x\n", check, entry="sq", limits=QUICK).verdict
        == "passed"
    )
    assert (
        run_tests("def sq(x):\n    return x + x\n", check, entry="sq", limits=QUICK).verdict
        == "failed"
    )


FORGERIES = {
    # the old harness's verdict descriptor and every other inherited one
    "fds": "import os\nfor fd in range(3, 256):\n    try:\n        os.write(fd, b'done\\n')\n"
    '        os.write(fd, b\'FL-VERDICT {"verdict": "passed", "reason": "ok"}\\n\')\n'
    '    except OSError:\n        pass\nprint(\'FL-VERDICT {"verdict": "passed", "reason": "ok"}\')',
    # walking the stack to the harness's objects and rewriting what it will send
    "frames": "import sys\nframe = sys._getframe()\nwhile frame is not None:\n"
    "    for name, value in list(frame.f_locals.items()):\n"
    "        if callable(value) and name == 'send':\n"
    "            frame.f_locals['send'] = lambda message: value({'ok': True})\n"
    "    frame.f_globals['encode'] = lambda value: 5\n    frame = frame.f_back",
    "exit0": "import os\nos._exit(0)",
    "sys_exit0": "import sys\nsys.exit(0)",
}


def test_candidate_cannot_read_the_tests_expected_values():
    # reads every file it can find for "add(2, 3) == 5"-style lines and answers from them
    source = (
        "import os, re\nFOUND = {}\nfor root in ('/sandbox', '/tmp', '/', '/fl'):\n"
        "    for name in os.listdir(root) if os.path.isdir(root) else []:\n"
        "        try:\n            text = open(os.path.join(root, name)).read()\n"
        "        except Exception:\n            continue\n"
        "        for a, b, out in re.findall(r'add\\((-?\\d+), (-?\\d+)\\) == (-?\\d+)', text):\n"
        "            FOUND[(int(a), int(b))] = int(out)\n"
        "def add(a, b):\n    return FOUND.get((a, b), 99)\n"
    )
    result = run_tests(source, TESTS, limits=QUICK)
    assert (result.verdict, result.reason) == ("failed", "assertion failed (tests.py line 1)")


@pytest.mark.parametrize("attack", sorted(FORGERIES))
def test_forged_verdicts_do_not_pass(attack):
    result = run_tests(judged(FORGERIES[attack]), TESTS, limits=QUICK)
    assert result.verdict != "passed", result


@pytest.mark.parametrize(
    "body", ["    import os\n    os._exit(0)\n", "    import sys\n    sys.exit(0)\n"]
)
def test_early_exit_during_a_call_fails(body):
    result = run_tests(judged("", body), TESTS, limits=QUICK)
    assert result.verdict == "failed" and "exited" in result.reason


def test_always_equal_objects_never_compare_equal():
    source = judged(
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "class Int(int):\n    def __eq__(self, other):\n        return True\n",
        "    return Anything() if a > 0 else Int(7)\n",
    )
    result = run_tests(source, TESTS, limits=QUICK)
    assert (result.verdict, result.reason) == ("failed", "assertion failed (tests.py line 1)")
    int_subclass = run_tests(source, "assert add(-1, 1) == 7\n", limits=QUICK)
    assert int_subclass.verdict == "failed"


def test_subprocesses_cannot_delete_write_or_kill(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    planted = tmp_path / "planted.txt"
    for prefix in (
        f"import os\nos.system('rm -f {victim}')",
        f"import os\nos.system('echo x > {planted}')",
        f"import os\nos.system('kill -9 {os.getpid()}')\nos.system('kill -9 -1')",
        f"import subprocess\nsubprocess.run(['rm', '-rf', '{tmp_path}'])",
        f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)",
    ):
        result = run_tests(judged(prefix), TESTS, limits=QUICK)
        assert result.verdict != "passed"
    assert victim.read_text() == "keep me"
    assert not planted.exists()
    assert run_tests(CORRECT, TESTS, limits=QUICK).verdict == "passed"  # the evaluator lives


def test_machine_files_are_not_visible_and_tmp_is_private(tmp_path):
    secret = tmp_path / "benchmark_answers.json"
    secret.write_text("42")
    source = (
        f"import os\nprint(os.path.exists({str(secret)!r}), os.path.exists('/etc/hostname'))\n"
        "open('/tmp/mine.txt', 'w').write('ok')\nprint(open('/tmp/mine.txt').read())\n"
        "for path in ('/usr/planted', '/planted'):\n    try:\n        open(path, 'w')\n"
        "    except OSError as error:\n        print(type(error).__name__)"
    )
    result = run_program(source, limits=QUICK)
    assert result.stdout.split() == ["False", "False", "ok", "OSError", "OSError"]
    assert not os.path.exists("/tmp/mine.txt") or os.path.getsize("/tmp/mine.txt") != 2


def test_proc_environ_and_environment_do_not_leak(monkeypatch):
    monkeypatch.setenv("FL_SECRET_TOKEN", "hunter2")
    source = (
        "import os\nleaks = [str(dict(os.environ))]\nfor pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n        try:\n"
        "            leaks.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))\n"
        "        except OSError:\n            pass\n"
        f"for pid in ({os.getpid()}, {os.getppid()}):\n    try:\n"
        "        leaks.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))\n"
        "    except OSError:\n        pass\nprint(leaks)"
    )
    result = run_program(source, limits=QUICK)
    assert result.verdict == "passed"
    assert "hunter2" not in result.stdout and "FL_SECRET_TOKEN" not in result.stdout


def test_fork_bomb_is_capped_and_cleaned_up():
    source = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    )
    result = run_tests(judged(source), TESTS, limits=Limits(timeout_s=2.0, processes=8))
    assert result.verdict in ("timeout", "error")
    assert run_program("print('after')", limits=QUICK).stdout == "after\n"


def test_memory_hog_gets_an_error():
    result = run_program("x = bytearray(16 * 1024**3)", limits=Limits(memory_mb=512))
    assert result.verdict == "error" and "MemoryError" in result.stderr_tail
    hog = run_tests(judged("", "    return len(bytearray(16 * 1024**3))\n"), TESTS, limits=QUICK)
    assert hog.verdict == "error" and "MemoryError" in hog.reason


def test_infinite_loop_and_sleep_time_out():
    for source in ("while True:\n    pass", "import time\ntime.sleep(60)"):
        result = run_program(source, limits=Limits(timeout_s=1.0))
        assert result.verdict == "timeout" and result.wall_s < 10
    looped = run_tests(
        judged("", "    while True:\n        pass\n"), TESTS, limits=Limits(timeout_s=1.0)
    )
    assert looped.verdict == "timeout"
    spun = run_tests(
        judged("", "    while True:\n        pass\n"), TESTS, limits=Limits(30.0, cpu_s=1)
    )
    assert (spun.verdict, spun.reason) == ("timeout", "cpu time limit (1 s)")


def test_huge_output_is_bounded():
    result = run_program(
        "while True:\n    print('x' * 10000)", limits=Limits(timeout_s=5.0, file_size_mb=2)
    )
    assert result.verdict == "error" and len(result.stdout) <= Limits().output_chars
    flood = run_tests(
        judged("", "    while True:\n        print('x' * 10000)\n"),
        TESTS,
        limits=Limits(timeout_s=5.0, file_size_mb=2),
    )
    assert flood.verdict != "passed"


def test_no_network_even_to_loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    accepted = []
    threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True).start()
    port = server.getsockname()[1]
    source = (
        f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'leak')"
    )
    result = run_program(source, limits=QUICK)
    server.close()
    assert result.verdict == "error"
    assert accepted in ([], [None])


def _accept(server):
    try:
        return server.accept()
    except OSError:
        return None


def test_hash_seed_is_fixed():
    source = "print(hash('frontload'), list({'a', 'b', 'c', 'd', 'e'}))"
    first, second = run_program(source, limits=QUICK), run_program(source, limits=QUICK)
    assert first.verdict == "passed" and first.stdout == second.stdout


def test_stdin_stdout_programs_are_compared_by_the_evaluator():
    ok = run_program(
        "a, b = map(int, input().split())\nprint(a + b)", stdin="2 3\n", expected_stdout="5\n"
    )
    assert ok.verdict == "passed"
    wrong = run_program("print(4)", stdin="2 3\n", expected_stdout="5")
    assert (wrong.verdict, wrong.reason) == ("failed", "wrong output")
    early = run_program("import os\nos._exit(0)\nprint(5)", stdin="2 3\n", expected_stdout="5")
    assert early.verdict == "failed"


def test_calls_compare_outputs_with_tolerance_and_per_call_limits():
    code = "def f(x):\n    if x < 0:\n        while True:\n            pass\n    return x / 3\n"
    ok = run_calls(code, "f", [[3], [1]], QUICK, expected=[1.0, 0.3333333333], atol=1e-6)
    assert ok.verdict == "passed" and ok.outputs == [1.0, 1 / 3]
    wrong = run_calls(code, "f", [[3], [1]], QUICK, expected=[1.0, 0.5])
    assert (wrong.verdict, wrong.reason) == ("failed", "input 1: wrong output")
    slow = run_calls(code, "f", [[3], [-1]], QUICK, expected=[1.0, 0], call_limits=[1.0, 0.3])
    assert slow.verdict == "timeout" and "input 1" in slow.reason


def test_pool_keeps_order_and_isolates_samples():
    jobs = [
        Job(CORRECT, tests=TESTS, limits=QUICK),
        Job("while True: pass", limits=Limits(timeout_s=1.0)),
        Job(WRONG, tests=TESTS, limits=QUICK),
        Job("print(2)", expected_stdout="2"),
    ]
    verdicts = [r.verdict for r in run_programs(jobs, workers=2)]
    assert verdicts == ["passed", "timeout", "failed", "passed"]


def test_without_isolation_fl_refuses_unless_the_user_opts_in(monkeypatch):
    monkeypatch.setattr(sandbox_isolation, "_probe", lambda: "bwrap cannot run here (test)")
    monkeypatch.delenv("FL_SANDBOX", raising=False)
    monkeypatch.setitem(sandbox_isolation._weak_state, "allowed", False)
    with pytest.raises(ConfigError, match="no sandbox for untrusted code"):
        run_program("print(1)")
    from frontload.evaluate.score import score_predictions

    with pytest.raises(ConfigError, match="--weak-sandbox"):  # before any file is read
        score_predictions("mbpp", Path("no-such-predictions.jsonl"), None)
    monkeypatch.setenv("FL_SANDBOX", "weak")
    if sandbox_isolation._weak_probe():
        # as root, with the interpreter where other uids cannot read it (a pyenv in a 0700
        # /root), the weak mode cannot leave root and still run Python: it refuses as well
        with pytest.raises(ConfigError, match="weak mode cannot run either"):
            run_tests(CORRECT, TESTS, limits=QUICK)
        system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
        if not system.exists():
            return
        # ... and runs with an interpreter the sandbox uid can read (the system's, stdlib only)
        monkeypatch.setattr(sys, "executable", str(system))
        sandbox_isolation._weak_probe.cache_clear()
        monkeypatch.setattr(sandbox_isolation, "site_packages", lambda: [])
    try:
        assert run_tests(CORRECT, TESTS, limits=QUICK).verdict == "passed"
        assert run_tests(WRONG, TESTS, limits=QUICK).verdict == "failed"
        uid = run_program("import os\nprint(os.getuid())", limits=QUICK)
        assert uid.verdict == "passed" and (int(uid.stdout) != 0 or os.geteuid() != 0)
        tmp_write = run_program("open('/usr/planted', 'w')", limits=QUICK)
        assert tmp_write.verdict == "error" and "PermissionError" in tmp_write.reason
    finally:
        sandbox_isolation._weak_probe.cache_clear()


@pytest.mark.parametrize(
    ("source", "tests"),
    [
        # a candidate redefining a builtin the tests apply to both sides of the comparison
        (
            "def set(*args):\n    return 0\ndef similar(x):\n    return [9]\n",
            "assert set(similar(1)) == set((4, 5))\n",
        ),
        (
            "def abs(x):\n    return 0\ndef f(x):\n    return 123\n",
            "assert abs(f(1) - 2.5) < 1e-6\n",
        ),
        # StopIteration raised into the tests would end their loop as if every assert passed
        ("def f(x):\n    raise StopIteration\n", "assert all(map(f, [1, 2, 3]))\n"),
        (
            "def f(x):\n    raise StopIteration\n",
            "for a, b in zip([1, 2], map(f, [1, 2])):\n    assert a == b\n",
        ),
    ],
)
def test_candidate_cannot_hijack_the_tests_builtins_or_loops(source, tests):
    assert run_tests(source, tests, limits=QUICK).verdict != "passed"


def test_a_builtin_named_function_under_test_is_still_the_candidates():
    # MBPP task 126: the function under test is called `sum`, and the tests call nothing else
    tests = "assert sum(10, 15) == 6\nassert sum(4, 6) == 3\n"
    source = "import math\ndef sum(a, b):\n    return builtins_sum(d for d in range(1, min(a, b) + 1) if a % d == 0 and b % d == 0)\nimport builtins\nbuiltins_sum = builtins.sum\n"
    assert called_names(tests).calls == [] and called_names(tests).builtin_calls == ["sum"]
    assert run_tests(source, tests, limits=QUICK).verdict == "passed"


def test_code_reward_refuses_tests_that_never_call_the_program(tmp_path):
    # stdin/stdout cases given as JSON parse as a Python list: every sample would score 1.
    from frontload.errors import TrainingError
    from frontload.train.posttrain.rewards import RewardLog, build_rewards

    log = RewardLog(tmp_path, samples_per_call=0)
    rewards, _ = build_rewards(["code"], 3.0, log)
    reference = '[{"input": "1 2", "output": "3"}]'
    program = [{"role": "assistant", "content": "```python\nprint(0)\n```"}]
    with pytest.raises(TrainingError, match="code_reward failed on 20 of 20.*calls no function"):
        rewards[0]([None] * 20, [program] * 20, reference=[reference] * 20, task=["code"] * 20)


@pytest.mark.parametrize(
    "reply",
    [
        b'{"ok": {"$d": [[[1], 2]]}}',
        b'{"ok": {"$q": 1}}',
        b'{"ok": {}}',
        b"not json",
        b"[" * 200000,
    ],
)
def test_malformed_replies_fail_the_program_not_the_evaluator(reply):
    # the candidate writes its own reply line on its pipe instead of returning a value
    source = (
        "import os, sys\nfd = int([a for a in sys.argv if a.startswith('replies=')][0][8:])\n"
        f"def f(x):\n    os.write(fd, {reply!r} + b'\\n')\n    os._exit(0)\n"
    )
    result = run_calls(source, "f", [[1]], limits=QUICK, expected=[2])
    assert result.verdict == "error" and "InvalidReply" in result.reason, result


def test_humaneval_helpers_of_the_prompt_are_the_benchmarks_not_the_candidates():
    # HumanEval/38-style: the tests call the prompt's encode_cyclic, then the candidate's decoder
    from frontload.evaluate.tasks import get_task

    problem = (
        "def encode(s: str) -> str:\n    return s[1:] + s[:1]\n\n\n"
        'def decode(s: str) -> str:\n    """Undo encode."""\n'
    )
    record = {
        "task_id": "T/0",
        "prompt": problem,
        "canonical_solution": "    return s[-1:] + s[:-1]\n",
        "test": "def check(candidate):\n    for s in ('abc', 'hello'):\n"
        "        assert candidate(encode(s)) == s\n",
        "entry_point": "decode",
    }
    task = get_task("humaneval")
    sample = task.build([record], "chat", None, None)[0]
    hostile = "```python\ndef encode(s):\n    return s\ndef decode(s):\n    return s\n```"
    correct = f"```python\n{problem}{record['canonical_solution']}```"
    verdicts = [row.verdict for row in task.grade([sample] * 2, [hostile, correct])]
    assert verdicts == ["failed", "passed"]


def test_folders_of_a_killed_evaluator_are_swept(tmp_path, monkeypatch):
    import subprocess
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])  # a pid that has exited and been reaped
    dead.wait()
    stale = tmp_path / f"fl-sandbox-{dead.pid}-abc"
    live = tmp_path / f"fl-sandbox-{os.getpid()}-abc"
    other = tmp_path / f"fl-clean-{dead.pid}-abc"  # not one of fl's folders
    for folder in (stale, live, other):
        folder.mkdir()
    sandbox_isolation.sweep_scratch.__wrapped__()
    assert not stale.exists() and live.exists() and other.exists()
