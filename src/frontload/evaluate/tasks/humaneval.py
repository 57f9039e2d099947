"""HumanEval: base models continue the function body; chat models answer with a code block."""

from __future__ import annotations

from frontload.evaluate.generation import truncate_at
from frontload.evaluate.tasks.base import Sample, Task, check_mode, require
from frontload.evaluate.tasks.codecommon import (
    BASE_STOP,
    extract_code,
    run_and_grade,
)
from frontload.grading.sandbox import Job, Limits

CHAT_TEMPLATE = (
    "Complete the following Python function. Return the whole function in one ```python code "
    "block.\n\n```python\n{prompt}```"
)


class HumanEval(Task):
    name = "humaneval"
    version = "1"
    category = "code"
    filename = "humaneval_HumanEval.jsonl.gz"
    hf_name = "openai/openai_humaneval"
    stop = BASE_STOP
    max_new_tokens = 512

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(
                record, ("task_id", "prompt", "test", "entry_point"), f"{self.name} record {index}"
            )
            prompt = (
                record["prompt"]
                if mode == "base"
                else CHAT_TEMPLATE.format(prompt=record["prompt"])
            )
            meta = {
                "mode": mode,
                "problem": record["prompt"],
                "test": record["test"],
                "entry_point": record["entry_point"],
            }
            samples.append(
                Sample(record["task_id"], prompt, record.get("canonical_solution"), meta=meta)
            )
        return samples

    limits = Limits(timeout_s=10.0)

    def job(self, sample: Sample, completion: str) -> tuple[Job, str]:
        """Problem + completion (base) or the extracted function (chat); `check` judged apart."""
        meta = sample.meta
        if meta["mode"] == "base":
            code, rule = meta["problem"] + truncate_at(completion, BASE_STOP), "continuation"
        else:
            code, rule = extract_code(completion)
            if f"def {meta['entry_point']}" not in code:
                code = meta["problem"] + code
        tests = trusted_helpers(meta["problem"], meta["entry_point"]) + meta["test"]
        job = Job(code + "\n", tests=tests, entry=meta["entry_point"], limits=self.limits)
        return job, rule

    def grade(self, samples, completions, workers: int = 2):
        built = [self.job(s, c or "") for s, c in zip(samples, completions, strict=True)]
        return run_and_grade([j for j, _ in built], [r for _, r in built], workers)


def trusted_helpers(problem: str, entry: str) -> str:
    """The prompt's code but the entry's stub, run by the judge before the tests: helpers the tests
    call (`encode_cyclic` for `decode_cyclic`) are then the benchmark's own, not calls into a
    candidate that could redefine them (`encode_cyclic = lambda s: s`). The entry stays the
    candidate's (HumanEval/33's tests call `sort_third` by name). A prompt that does not parse
    alone adds nothing."""
    import ast

    try:
        tree = ast.parse(problem)
    except (SyntaxError, ValueError):
        return ""
    tree.body = [
        node
        for node in tree.body
        if not (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry)
    ]
    return ast.unparse(tree) + "\n\n" if tree.body else ""
