"""Hostile programs: none may harm the evaluator, the machine or other samples; each gets its verdict."""

import os
import socket
import threading

import pytest

from frontload.evaluate.code_exec import Job, Limits, run_program, run_programs

QUICK = Limits(timeout_s=3.0, processes=8)


def test_plain_verdicts():
    assert run_program("print(6 * 7)").verdict == "passed"
    failed = run_program("def f():\n    return 1\nassert f() == 2")
    assert (failed.verdict, failed.reason) == ("failed", "assertion failed")
    error = run_program("raise ValueError('boom')")
    assert error.verdict == "error" and "ValueError: boom" in error.stderr_tail
    assert run_program("import sys\nsys.exit(0)\nassert False").verdict == "failed"


def test_stdin_stdout_programs():
    ok = run_program(
        "a, b = map(int, input().split())\nprint(a + b)", stdin="2 3\n", expected_stdout="5\n"
    )
    assert ok.verdict == "passed"
    wrong = run_program("print(4)", stdin="2 3\n", expected_stdout="5")
    assert (wrong.verdict, wrong.reason) == ("failed", "wrong output")
    closed = run_program("input()")
    assert closed.verdict == "error" and "EOFError" in closed.stderr_tail


def test_infinite_loop_and_sleep_time_out():
    for source in ("while True:\n    pass", "import time\ntime.sleep(60)"):
        result = run_program(source, limits=Limits(timeout_s=1.0))
        assert result.verdict == "timeout"
        assert result.wall_s < 10


def test_fork_bomb_is_capped_and_cleaned_up():
    source = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    )
    result = run_program(source, limits=Limits(timeout_s=2.0, processes=8))
    assert result.verdict in ("timeout", "error")
    assert run_program("print('after')").stdout == "after\n"


def test_memory_hog_gets_an_error():
    result = run_program("x = bytearray(16 * 1024**3)", limits=Limits(memory_mb=512))
    assert result.verdict == "error" and "MemoryError" in result.stderr_tail


def test_huge_output_is_bounded():
    result = run_program(
        "while True:\n    print('x' * 10000)", limits=Limits(timeout_s=5.0, file_size_mb=2)
    )
    assert result.verdict == "error"
    assert len(result.stdout) <= Limits().output_chars


def test_writes_and_deletes_outside_its_folder_fail(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "planted.txt"
    for source in (
        f"open({str(target)!r}, 'w').write('x')",
        f"import os\nos.remove({str(victim)!r})",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
        f"import os\nos.rename({str(victim)!r}, 'mine.txt')",
    ):
        assert run_program(source, limits=QUICK).verdict == "error"
    assert victim.read_text() == "keep me"
    assert not target.exists()
    inside = run_program("open('own.txt', 'w').write('ok')\nprint(open('own.txt').read())")
    assert (inside.verdict, inside.stdout) == ("passed", "ok\n")


def test_no_network(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    accepted = []
    threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True).start()
    port = server.getsockname()[1]
    source = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'leak')"
    result = run_program(source, limits=QUICK)
    server.close()
    assert result.verdict == "error"
    assert accepted in ([], [None])


def _accept(server):
    try:
        return server.accept()
    except OSError:
        return None


def test_cannot_kill_the_evaluator():
    for source in (
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
        f"import os, signal\nos.kill({os.getpid()}, signal.SIGTERM)",
        f"import os, signal\nos.killpg(os.getpgid({os.getpid()}), signal.SIGKILL)",
    ):
        assert run_program(source, limits=QUICK).verdict == "error"
    assert os.getpid() > 0  # still alive: this line ran


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("FL_SECRET_TOKEN", "hunter2")
    result = run_program("import os\nprint(dict(os.environ))")
    assert result.verdict == "passed"
    assert "hunter2" not in result.stdout and "FL_SECRET_TOKEN" not in result.stdout


def test_pool_keeps_order_and_isolates_samples():
    jobs = [
        Job("print(1)"),
        Job("while True: pass", limits=Limits(timeout_s=1.0)),
        Job("assert False"),
        Job("print(2)"),
    ]
    verdicts = [r.verdict for r in run_programs(jobs, workers=2)]
    assert verdicts == ["passed", "timeout", "failed", "passed"]


@pytest.mark.parametrize("source", ["import os\nos._exit(0)", "import os\nos.close(1)\nprint(1)"])
def test_early_exits_do_not_pass(source):
    assert run_program(source, limits=QUICK).verdict != "passed"
