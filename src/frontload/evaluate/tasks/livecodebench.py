"""LiveCodeBench-style problems: stdin/stdout tests, or `functional` tests calling a Solution method.

A problem passes when every test passes (tests stop at the first failure). Public tests only
overestimate pass@1 compared with the hidden tests of the official harness.
"""

from __future__ import annotations

import ast
import json
import re

from frontload.errors import FrontloadError
from frontload.evaluate.tasks.base import Graded, Sample, Task, check_mode, require
from frontload.evaluate.tasks.codecommon import extract_code
from frontload.grading.sandbox import Limits, run_program, same_json

PROMPT = (
    "You will be given a competitive programming problem. Write a correct and efficient Python "
    "program.\n\n### Problem\n{problem}\n\n{format}\n\nAnswer with one ```python code block."
)
STDIN_FORMAT = "Read the inputs from stdin and write the answer to stdout."
STARTER_FORMAT = "Use this starter code:\n```python\n{starter}\n```"
FUNCTIONAL_HARNESS = """

import json as _json
_args = [_json.loads(_line) for _line in {inputs!r}.strip().split("\\n")]
_method = {method!r} or [m for m in dir(Solution) if not m.startswith("_")][0]
_result = getattr(Solution(), _method)(*_args)
print(_json.dumps(_result))
"""


def parse_tests(value: object) -> list[dict]:
    """Tests as stored: a list, a JSON string or a Python-literal string."""
    if isinstance(value, list):
        return value
    text = str(value)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


def starter_method(starter: str) -> str:
    """The method the tests call: the first `def name(self, ...)` of the starter code."""
    found = re.search(r"def\s+(\w+)\s*\(\s*self", starter)
    return found.group(1) if found else ""


class LiveCodeBench(Task):
    name = "livecodebench"
    version = "1"
    category = "code"
    filename = "livecodebench_deepcoder279_publictests.json"
    max_new_tokens = 2048
    limits = Limits(timeout_s=6.0)

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(record, ("problem", "tests"), f"{self.name} record {index}")
            starter = record.get("starter_code") or ""
            fmt = STARTER_FORMAT.format(starter=starter) if starter else STDIN_FORMAT
            tests = parse_tests(record["tests"])
            samples.append(
                Sample(
                    str(record.get("id", index)),
                    PROMPT.format(problem=record["problem"], format=fmt),
                    None,
                    meta={"tests": tests, "method": starter_method(starter)},
                )
            )
        return samples

    def grade_one(self, sample: Sample, completion: str) -> Graded:
        code, rule = extract_code(completion)
        if not code.strip():
            return Graded(None, "failed", rule, "no code")
        for number, test in enumerate(sample.meta["tests"]):
            if test.get("testtype") == "functional":
                result = run_program(
                    code
                    + FUNCTIONAL_HARNESS.format(inputs=test["input"], method=sample.meta["method"]),
                    stdin=None,
                    expected_stdout=None,
                    limits=self.limits,
                )
                if result.verdict == "passed" and not same_json(result.stdout, test["output"]):
                    result.verdict, result.reason = "failed", "wrong output"
            else:
                result = run_program(
                    code, stdin=test["input"], expected_stdout=test["output"], limits=self.limits
                )
            if result.verdict != "passed":
                return Graded(
                    None,
                    result.verdict,
                    rule,
                    f"test {number}: {result.reason}\n{result.stderr_tail}",
                )
        return Graded(None, "passed", rule, f"{len(sample.meta['tests'])} tests")

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
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(self.grade_safely, samples, [c or "" for c in completions]))
