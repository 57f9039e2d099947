"""evalplus MBPP+ and HumanEval+: every base and plus input, compared by the evaluator.

Records carry `task_id`, `prompt`, `canonical_solution`, `entry_point`, `base_input`,
`plus_input` and `atol`. As in evalplus, the expected outputs are the canonical solution's outputs
on those inputs, and each input's time limit is the reference's time on it times a factor
(4 by default), at least 1 s. The candidate answers calls in a sandboxed process and only plain
data comes back (`sandbox.run_calls`), so no output can pretend to be equal.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from frontload.errors import FrontloadError
from frontload.evaluate.generation import truncate_at
from frontload.evaluate.tasks.base import Graded, Sample, Task, check_mode, require
from frontload.evaluate.tasks.codecommon import BASE_STOP, extract_code
from frontload.grading.sandbox import CallsResult, Limits, Raised, run_calls

CHAT_TEMPLATE = (
    "Complete the following Python task. Answer with the whole program in one ```python code "
    "block.\n\n```python\n{prompt}```"
)
GT_TIME_LIMIT_FACTOR = 4.0  # evalplus's default
MIN_TIME_LIMIT = 1.0  # seconds, evalplus's default


@dataclass
class Reference:
    """The canonical solution's outputs and seconds per input (or why it failed: a data defect)."""

    outputs: list
    seconds: list[float]
    failure: str | None = None


class EvalPlusTask(Task):
    category = "code"
    stop = BASE_STOP
    max_new_tokens = 768
    reference_limits = Limits(timeout_s=120.0, memory_mb=8192, file_size_mb=64)
    candidate_limits = Limits(timeout_s=60.0, memory_mb=4096, file_size_mb=64)
    factor = GT_TIME_LIMIT_FACTOR
    min_time_limit = MIN_TIME_LIMIT

    def __init__(self) -> None:
        self._references: dict[str, Reference] = {}
        self._lock = threading.Lock()

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        samples = []
        fields = ("task_id", "prompt", "canonical_solution", "entry_point", "base_input")
        for index, record in enumerate(records):
            require(record, fields, f"{self.name} record {index + 1}")
            inputs = [list(i) for i in record["base_input"]] + [
                list(i) for i in record.get("plus_input") or []
            ]
            prompt = record["prompt"] if mode == "base" else CHAT_TEMPLATE.format(**record)
            meta = {
                "mode": mode,
                "problem": record["prompt"],
                "entry_point": record["entry_point"],
                "inputs": inputs,
                "base_count": len(record["base_input"]),
                "atol": float(record.get("atol") or 0.0),
                "reference_code": self.reference_code(record),
            }
            samples.append(Sample(str(record["task_id"]), prompt, None, meta=meta))
        return samples

    def reference_code(self, record: dict) -> str:
        return record["prompt"] + record["canonical_solution"]

    def candidate_code(self, sample: Sample, completion: str) -> tuple[str, str]:
        meta = sample.meta
        if meta["mode"] == "base" and "```" not in completion:
            return meta["problem"] + truncate_at(completion, BASE_STOP), "continuation"
        code, rule = extract_code(completion)
        if f"def {meta['entry_point']}" not in code:
            code = meta["problem"] + code
        return code, rule

    def reference(self, sample: Sample) -> Reference:
        """The canonical outputs for a problem, computed once per process."""
        with self._lock:
            known = self._references.get(sample.id)
        if known is not None:
            return known
        meta = sample.meta
        run = run_calls(
            meta["reference_code"], meta["entry_point"], meta["inputs"], self.reference_limits
        )
        failure = None
        if run.verdict != "passed" or any(isinstance(o, Raised) for o in run.outputs):
            failure = f"reference solution: {run.reason} {run.stderr_tail[-200:]}".strip()
        reference = Reference(run.outputs, run.seconds, failure)
        with self._lock:
            self._references[sample.id] = reference
        return reference

    def time_limits(self, reference: Reference) -> list[float]:
        return [max(self.min_time_limit, self.factor * t) for t in reference.seconds]

    def grade_one(self, sample: Sample, completion: str) -> Graded:
        code, rule = self.candidate_code(sample, completion)
        reference = self.reference(sample)
        if reference.failure:
            return Graded(None, "error", rule, reference.failure)
        limits = self.time_limits(reference)
        total = Limits(
            timeout_s=sum(limits) + 5.0,
            memory_mb=self.candidate_limits.memory_mb,
            file_size_mb=self.candidate_limits.file_size_mb,
        )
        run: CallsResult = run_calls(
            code,
            sample.meta["entry_point"],
            sample.meta["inputs"],
            total,
            expected=reference.outputs,
            atol=sample.meta["atol"],
            call_limits=limits,
        )
        base = sample.meta["base_count"]
        detail = f"{run.reason}; base {min(len(run.outputs), base)}/{base}"
        return Graded(None, run.verdict, rule, f"{detail}\n{run.stderr_tail}".strip())

    def grade_safely(self, sample: Sample, completion: str) -> Graded:
        """`grade_one`, with a failure on the evaluator's side made this sample's error verdict
        (never its chunk's)."""
        try:
            return self.grade_one(sample, completion)
        except FrontloadError:
            raise  # no sandbox at all: every sample would fail the same way
        except Exception as error:  # noqa: BLE001 - this sample's verdict
            return Graded(None, "error", "", f"evaluator: {type(error).__name__}: {error}"[:300])

    def grade(self, samples, completions, workers: int = 2):
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(self.grade_safely, samples, [c or "" for c in completions]))


class HumanEvalPlus(EvalPlusTask):
    name, version, filename = "humaneval_plus", "1", "HumanEvalPlus.jsonl"
    hf_name = "evalplus/humanevalplus"


class MBPPPlus(EvalPlusTask):
    name, version, filename = "mbpp_plus", "1", "MbppPlus.jsonl"
    hf_name = "evalplus/mbppplus"

    def reference_code(self, record: dict) -> str:
        solution = record["canonical_solution"]
        if f"def {record['entry_point']}" in solution:
            return solution
        return record["prompt"] + solution
