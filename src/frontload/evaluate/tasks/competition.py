"""AIME 2024, AIME 2025 (integer answers) and AMC 2023: competition math, graded like MATH."""

from __future__ import annotations

from frontload.evaluate.tasks.base import Sample, Task, check_mode, require
from frontload.evaluate.tasks.mathcommon import MINERVA_STOP, grade_math, math_prompt, number_text


class Competition(Task):
    category = "math"
    answer_field = "expected_answer"
    stop = MINERVA_STOP
    max_new_tokens = 2048

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(record, ("problem", self.answer_field), f"{self.name} record {index}")
            samples.append(
                Sample(
                    str(record.get("id", index)),
                    math_prompt(record["problem"], mode, shots),
                    number_text(record[self.answer_field]),
                )
            )
        return samples

    def grade(self, samples, completions, workers: int = 2):
        return grade_math(samples, completions, workers)


class AIME24(Competition):
    name, version, filename = "aime24", "1", "aime24.jsonl"


class AIME25(Competition):
    name, version, filename = "aime25", "1", "aime25.jsonl"


class AMC23(Competition):
    name, version, filename = "amc23", "1", "amc23.jsonl"
    answer_field = "answer"
