"""The three ways to run untrusted code, and a pool that runs many.

- `run_program`: a stdin/stdout script; the evaluator compares the captured output itself.
- `run_tests`: assert-style tests (MBPP, HumanEval) run by a judge process that calls the
  candidate's functions through a pipe and receives plain data only.
- `run_calls`: evalplus inputs; the evaluator sends each input and compares each output.

The verdict never comes from the untrusted process, and nothing it does can fail or stall the
evaluator: each job's failure is that job's verdict, every pipe read and write has a deadline,
and replies are bounded before they are parsed.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from frontload.errors import FrontloadError
from frontload.grading.sandbox import process
from frontload.grading.sandbox.boot import VERDICT_PREFIX, decode_reply, encode
from frontload.grading.sandbox.compare import Raised, outputs_equal, outputs_match, reply_value
from frontload.grading.sandbox.isolation import sandbox_mode, scratch_folder
from frontload.grading.sandbox.process import Limits, Proc, Watchdog


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


@dataclass
class CallsResult:
    """evalplus-style run: the verdict and, per input reached, the output (or error) and seconds."""

    verdict: str
    reason: str
    outputs: list[Any] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    stderr_tail: str = ""
    wall_s: float = 0.0


@dataclass(frozen=True)
class CalledNames:
    """What the tests need from the candidate: free names to call through the pipe, and the
    builtins they call, which are the candidate's when it redefines them (MBPP's `def sum`)."""

    calls: list[str]
    builtin_calls: list[str]


def called_names(tests: str) -> CalledNames:
    """The names the judge turns into calls to the candidate: those the tests read but never bind
    and that are not builtins. Parses the tests (benchmark data), never the candidate's code: a
    tests file the parser cannot take raises ValueError."""
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise ValueError(f"the tests do not parse ({type(error).__name__})") from None
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
    names = sorted(n for n in read - bound - set(dir(builtins)) if n.isidentifier())
    shadowable = sorted(n for n in called - bound if hasattr(builtins, n))
    return CalledNames(names, shadowable)


def _new_folder() -> Path:
    return scratch_folder("sandbox")


def run_program(
    source: str,
    stdin: str | None = None,
    expected_stdout: str | None = None,
    limits: Limits | None = None,
) -> ExecResult:
    """Run a script. With `expected_stdout` it passes only when the evaluator finds that output;
    without, "passed" means only that it exited with status 0 (use `run_tests` for tests)."""
    limits = limits or Limits()
    mode = sandbox_mode()
    folder = _new_folder()
    own = folder / "program"  # what the program sees; its output files stay outside
    try:
        own.mkdir()
        (own / "program.py").write_text(source, encoding="utf-8")
        (folder / "stdin.txt").write_text(stdin or "", encoding="utf-8")
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(folder / "stdout", "wb"))
            err = stack.enter_context(open(folder / "stderr", "wb"))
            feed = stack.enter_context(open(folder / "stdin.txt", "rb")) if stdin else None
            proc = process.start(
                mode,
                own,
                "program",
                {"code": "program.py"},
                limits,
                feed or subprocess.DEVNULL,
                out,
                err,
            )
            watchdog = Watchdog([proc], limits)
            try:
                returncode = proc.process.wait()
            finally:
                watchdog.cancel()
                process.stop(proc)
        wall = time.monotonic() - started
        stderr_tail = process.tail(folder / "stderr", limits.stderr_chars)
        stdout = process.head(folder / "stdout", limits.output_chars)
        verdict, reason = watchdog.verdict(limits) or process.classify(
            returncode, stderr_tail, limits
        )
        wrong = expected_stdout is not None and not outputs_match(stdout, expected_stdout)
        if verdict == "passed" and wrong:
            verdict, reason = "failed", "wrong output"
        code = None if watchdog.expired else returncode
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
    try:
        names = called_names(tests)
    except ValueError as error:
        return ExecResult("error", str(error), None)
    mode = sandbox_mode()
    folder = _new_folder()
    to_candidate = os.pipe()
    to_judge = os.pipe()
    procs: list[Proc] = []
    try:
        # Each process sees only its own folder: the candidate never sees the tests' expected values.
        own = {"candidate": folder / "candidate", "judge": folder / "judge"}
        for path in own.values():
            path.mkdir()
        (own["candidate"] / "candidate.py").write_text(code, encoding="utf-8")
        (own["judge"] / "tests.py").write_text(tests, encoding="utf-8")
        judge_config = {
            "code": "tests.py",
            "requests": to_candidate[1],
            "replies": to_judge[0],
            "names": ",".join(names.calls),
        }
        if entry:
            judge_config["entry"] = entry
        elif not names.calls and names.builtin_calls:
            # The judge reads the candidate's top-level defs itself (this process never parses it).
            (own["judge"] / "candidate_source.py").write_text(code, encoding="utf-8")
            judge_config["builtins"] = ",".join(names.builtin_calls)
            judge_config["source"] = "candidate_source.py"
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            files = {
                name: stack.enter_context(open(folder / name, "wb"))
                for name in ("cand.out", "cand.err", "judge.out", "judge.err")
            }
            requests_in, requests_out = to_candidate
            replies_in, replies_out = to_judge
            procs.append(
                process.start(
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
            procs.append(
                process.start(
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
            watchdog = Watchdog(procs, limits)
            try:
                judge_code = procs[1].process.wait()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    procs[0].process.wait(timeout=0.2)  # a candidate that died has its status now
            finally:
                watchdog.cancel()
            candidate_code = procs[0].process.poll()
            for proc in procs:
                process.stop(proc)
        wall = time.monotonic() - started
        stderr_tail = process.tail(folder / "cand.err", limits.stderr_chars)
        # A judge that did not finish cleanly may have printed a candidate's forged line last.
        verdict = _judge_verdict(folder / "judge.out") if judge_code == 0 else None
        stopped = watchdog.verdict(limits)
        if stopped:
            verdict = {"verdict": stopped[0], "reason": stopped[1]}
        elif verdict is None:
            judged = process.classify(judge_code, process.tail(folder / "judge.err", 400), limits)
            verdict = {"verdict": "error", "reason": f"the tests did not finish: {judged[1]}"}
            if judged[0] == "timeout":
                verdict["verdict"] = "timeout"
        xcpu = (-signal.SIGXCPU, 128 + signal.SIGXCPU)
        if candidate_code in xcpu and verdict["verdict"] in ("failed", "error"):
            verdict = {
                "verdict": "timeout",
                "reason": f"cpu time limit ({process.cpu_seconds(limits)} s)",
            }
        if verdict["verdict"] == "error" and "MemoryError" in stderr_tail:
            verdict["reason"] = "MemoryError (memory limit)"
        return ExecResult(
            verdict["verdict"],
            verdict["reason"],
            judge_code,
            process.head(folder / "cand.out", limits.output_chars),
            stderr_tail,
            round(wall, 4),
        )
    finally:
        for fd in (*to_candidate, *to_judge):
            with contextlib.suppress(OSError):
                os.close(fd)
        for proc in procs:
            process.stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def _judge_verdict(path: Path) -> dict | None:
    lines = [
        line for line in process.tail(path, 4000).splitlines() if line.startswith(VERDICT_PREFIX)
    ]
    if not lines:
        return None
    try:
        verdict = json.loads(lines[-1][len(VERDICT_PREFIX) :])
        return {"verdict": str(verdict["verdict"]), "reason": str(verdict["reason"])}
    except (ValueError, KeyError, TypeError):
        return None


class _Pipe:
    """The evaluator's ends of a candidate's two pipes, non-blocking, every read and write with a
    deadline: the candidate may never read, never answer, or answer without end."""

    def __init__(self, requests: int, replies: int, max_bytes: int) -> None:
        self.requests, self.replies = requests, replies
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.closed = False
        os.set_blocking(requests, False)
        os.set_blocking(replies, False)

    def _wait(self, fd: int, event: int, deadline: float) -> bool:
        poller = select.poll()
        poller.register(fd, event)
        left = deadline - time.monotonic()
        return left > 0 and bool(poller.poll(left * 1000))

    def send(self, data: bytes, deadline: float) -> str:
        """'sent', 'timeout' or 'gone'."""
        view = memoryview(data)
        while view:
            if not self._wait(self.requests, select.POLLOUT, deadline):
                return "timeout"
            try:
                view = view[os.write(self.requests, view) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                return "gone"
        return "sent"

    def receive(self, deadline: float) -> tuple[str, bytes]:
        """('line', bytes) or ('timeout' | 'gone' | 'too large', b'')."""
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self.buffer[:newline])
                del self.buffer[: newline + 1]
                return "line", line
            if len(self.buffer) > self.max_bytes:
                return "too large", b""
            if self.closed:
                return "gone", b""
            if not self._wait(self.replies, select.POLLIN, deadline):
                return "timeout", b""
            try:
                chunk = os.read(self.replies, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                self.closed = True
            self.buffer += chunk


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
    mode = sandbox_mode()
    folder = _new_folder()
    own = folder / "candidate"
    requests_in, requests_out = os.pipe()
    replies_in, replies_out = os.pipe()
    proc = None
    watchdog = None
    result = CallsResult("passed", "ok")
    started = time.monotonic()
    try:
        own.mkdir()
        (own / "candidate.py").write_text(code, encoding="utf-8")
        with open(folder / "cand.out", "wb") as out, open(folder / "cand.err", "wb") as err:
            proc = process.start(
                mode,
                own,
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
        watchdog = Watchdog([proc], limits)  # the run's CPU budget; the deadlines below end it
        pipe = _Pipe(requests_out, replies_in, limits.reply_bytes)
        deadline = started + limits.timeout_s
        status, line = pipe.receive(deadline)
        hello = _hello(line, limits) if status == "line" else None
        if hello is None or hello.get("ready") is not True:
            why = hello.get("load_error") if isinstance(hello, dict) else None
            verdict = "timeout" if status == "timeout" else "error"
            result = CallsResult(verdict, str(why or "the program did not load")[:300])
        else:
            result = _calls(pipe, entry, inputs, limits, deadline, expected, atol, call_limits)
    finally:
        if watchdog is not None:
            watchdog.cancel()
            if watchdog.expired == "cpu":
                result = CallsResult(*watchdog.verdict(limits), result.outputs, result.seconds)
        for fd in (requests_in, requests_out, replies_in, replies_out):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if proc is not None:
            process.stop(proc)
        if (folder / "cand.err").exists():
            result.stderr_tail = process.tail(folder / "cand.err", limits.stderr_chars)
        shutil.rmtree(folder, ignore_errors=True)
    result.wall_s = round(time.monotonic() - started, 4)
    return result


def _hello(line: bytes, limits: Limits) -> dict | None:
    """The candidate's first line: {"ready": true}, or {"load_error": why}; None if neither."""
    try:
        hello = decode_reply(line, limits.reply_bytes, 10_000, json.loads)
    except Exception:  # noqa: BLE001 - a malformed hello is a program that did not load
        return None
    return hello if isinstance(hello, dict) else None


def _calls(
    pipe: _Pipe,
    entry: str,
    inputs: Sequence[Sequence[Any]],
    limits: Limits,
    deadline: float,
    expected: Sequence[Any] | None,
    atol: float,
    call_limits: Sequence[float] | None,
) -> CallsResult:
    """Send each input, read and compare each reply; the first failure ends the run."""
    result = CallsResult("passed", "ok")
    for index, args in enumerate(inputs):
        budget = deadline - time.monotonic()
        if call_limits is not None:
            budget = min(budget, call_limits[index])
        sent = time.monotonic()
        message = json.dumps([entry, encode(list(args)), encode({})]).encode() + b"\n"
        status = pipe.send(message, sent + budget)
        if status == "sent":
            status, line = pipe.receive(sent + budget)
        took = time.monotonic() - sent
        if status == "too large":
            output = Raised("InvalidReply", f"a reply larger than {limits.reply_bytes} bytes")
        elif status != "line":
            gone = status == "gone"
            return CallsResult(
                "failed" if gone else "timeout",
                f"input {index}: "
                + ("the program exited" if gone else f"time limit ({max(budget, 0):.2f} s)"),
                result.outputs,
                result.seconds,
            )
        else:
            output = reply_value(line, limits.reply_bytes, limits.reply_items)
        result.outputs.append(output)
        result.seconds.append(took)
        if isinstance(output, Raised) and output.kind == "InvalidReply":
            return CallsResult("error", f"input {index}: {output}", result.outputs, result.seconds)
        if expected is not None and not outputs_equal(output, expected[index], atol):
            failed = "error" if isinstance(output, Raised) else "failed"
            why = str(output) if isinstance(output, Raised) else "wrong output"
            return CallsResult(failed, f"input {index}: {why}", result.outputs, result.seconds)
    return result


def run_job(job: Job) -> ExecResult:
    """One `Job`: tests through the judge when it has tests, else a stdin/stdout program.

    The result keeps the start of the program's output only (`limits.stderr_chars`, as much as of
    its errors): the verdict is decided by then, and a pool holds every result until its last job
    ends (a million-character output each, 4 MB as a string, made 15 GB for `fl evaluate score`
    on MBPP with ten samples per problem). `run_program` and `run_tests` return the whole output.
    """
    if job.tests is not None:
        result = run_tests(job.source, job.tests, entry=job.entry, limits=job.limits)
    else:
        result = run_program(job.source, job.stdin, job.expected_stdout, job.limits)
    result.stdout = result.stdout[: job.limits.stderr_chars]
    return result


def run_job_safely(job: Job) -> ExecResult:
    """`run_job`, with any failure of the evaluator's own side made this job's `error` verdict
    (one program must never take the other programs of its chunk down with it)."""
    try:
        return run_job(job)
    except FrontloadError:
        raise  # no sandbox at all: every job would fail the same way
    except Exception as error:  # noqa: BLE001 - the job's verdict, not the chunk's
        return ExecResult("error", f"evaluator: {type(error).__name__}: {str(error)[:200]}", None)


def run_programs(jobs: Sequence[Job], workers: int = 2, progress: bool = False) -> list[ExecResult]:
    """Run many jobs, `workers` at a time (each in its own sandboxed processes)."""
    from frontload.progress import make_progress

    if jobs:
        sandbox_mode()  # refuse (or warn) once, before any work
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(run_job_safely, job) for job in jobs]
        if progress:
            with make_progress() as bar:
                task = bar.add_task("running programs", total=len(futures), status="")
                for future in futures:
                    future.result()
                    bar.advance(task)
        return [future.result() for future in futures]
