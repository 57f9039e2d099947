"""MBPP (sanitized, 427 problems): the prompt states the task and one test; code must pass all."""

from __future__ import annotations

from frontload.evaluate.tasks.base import Sample, Task, check_mode, require
from frontload.evaluate.tasks.codecommon import extract_code, run_and_grade
from frontload.grading.sandbox import Job, Limits

CHAT_TEMPLATE = (
    "You are an expert Python programmer, and here is your task: {prompt} Your code should pass "
    "these tests:\n\n{tests}\n\nAnswer with one ```python code block."
)


class MBPP(Task):
    name = "mbpp"
    version = "1"
    category = "code"
    filename = "mbpp_sanitized_427.json"
    hf_name, hf_config = "google-research-datasets/mbpp", "sanitized"
    stop = ("\n```", "\nassert", '\n"""', "\nif __name__", "\nprint(")
    max_new_tokens = 512

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(record, ("task_id", "prompt", "test_list"), f"{self.name} record {index}")
            tests = list(record["test_list"])
            if mode == "base":
                prompt = f'"""\n{record["prompt"]}\n{tests[0]}\n"""\n'
            else:
                prompt = CHAT_TEMPLATE.format(prompt=record["prompt"], tests="\n".join(tests))
            meta = {"mode": mode, "tests": tests, "imports": list(record.get("test_imports") or [])}
            samples.append(Sample(str(record["task_id"]), prompt, record.get("code"), meta=meta))
        return samples

    # CPU time catches loops; the wall limit is loose because a busy machine stretches it (task
    # 123's reference needs ~7 s of CPU and took 20+ s of wall time on a loaded 2-core machine).
    limits = Limits(timeout_s=60.0, cpu_s=20.0)

    def job(self, sample: Sample, completion: str) -> tuple[Job, str]:
        """The candidate's code (with the test imports) and the asserts, judged apart."""
        if sample.meta["mode"] == "base" and "```" not in completion:
            code, rule = completion, "continuation"
        else:
            code, rule = extract_code(completion)
        imports = "\n".join(sample.meta["imports"])
        tests = "\n".join([imports, *sample.meta["tests"]]) + "\n"
        return Job(f"{imports}\n{code}\n", tests=tests, limits=self.limits), rule

    def grade(self, samples, completions, workers: int = 2):
        built = [self.job(s, c or "") for s, c in zip(samples, completions, strict=True)]
        return run_and_grade([j for j, _ in built], [r for _, r in built], workers)
