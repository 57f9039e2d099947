"""The code sandbox: untrusted programs (benchmark code, RL rollouts) run isolated, limited and
judged on the trusted side, so that no program can forge its verdict or harm the evaluator.

- `isolation`: bubblewrap, the sandbox's own uid, the weak mode the user may opt into;
- `seccomp`: the system-call filter on every sandbox; `cgroups`: per-run pids/memory/CPU;
- `process`: starting, watching (wall clock, CPU budget) and stopping one sandboxed process;
- `runners`: stdin/stdout programs, judged tests, evalplus calls, and the pool;
- `compare`: output comparison and bounded reply decoding; `boot`: the code inside the sandbox.

docs/readme/sandbox.md is the threat model.
"""

from frontload.grading.sandbox.compare import Raised, outputs_equal, outputs_match, same_json
from frontload.grading.sandbox.isolation import allow_weak_sandbox, isolation_summary, sandbox_mode
from frontload.grading.sandbox.process import Limits
from frontload.grading.sandbox.runners import (
    CalledNames,
    CallsResult,
    ExecResult,
    Job,
    called_names,
    run_calls,
    run_job,
    run_program,
    run_programs,
    run_tests,
)

__all__ = [
    "CallsResult",
    "ExecResult",
    "Job",
    "Limits",
    "Raised",
    "CalledNames",
    "allow_weak_sandbox",
    "sandbox_mode",
    "isolation_summary",
    "outputs_equal",
    "outputs_match",
    "run_calls",
    "run_job",
    "run_program",
    "run_programs",
    "run_tests",
    "same_json",
    "called_names",
]
