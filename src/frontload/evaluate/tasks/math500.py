"""MATH-500: 4-shot Minerva base prompt, chat prompt asking for a boxed answer."""

from __future__ import annotations

from frontload.evaluate.tasks.base import Sample, Task, check_mode, require
from frontload.evaluate.tasks.mathcommon import MINERVA_STOP, grade_math, math_prompt


class Math500(Task):
    name = "math500"
    version = "1"
    category = "math"
    filename = "math500_test.jsonl"
    hf_name = "HuggingFaceH4/MATH-500"
    stop = MINERVA_STOP
    max_new_tokens = 1024

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(record, ("problem", "answer"), f"{self.name} record {index}")
            meta = {key: record[key] for key in ("subject", "level") if key in record}
            samples.append(
                Sample(
                    str(record.get("unique_id", index)),
                    math_prompt(record["problem"], mode, shots),
                    record["answer"],
                    meta=meta,
                )
            )
        return samples

    def grade(self, samples, completions, workers: int = 2):
        return grade_math(samples, completions, workers)
