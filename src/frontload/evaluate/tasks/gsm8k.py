"""GSM8K: 8-shot chain-of-thought base prompt (examples from the train split), zero-shot chat."""

from __future__ import annotations

import re
from collections.abc import Sequence

from frontload.evaluate.tasks.base import (
    Graded,
    Sample,
    Task,
    check_mode,
    pick_shots,
    read_records,
    require,
)
from frontload.evaluate.tasks.mathcommon import CHAT_SUFFIX, grade_math

CALCULATOR = re.compile(r"<<[^<>]*>>")


def strip_calculator(text: str) -> str:
    """GSM8K's solutions carry calculator annotations (`<<48/2=24>>`), a tool-call format no
    model is asked to write: they are removed wherever a solution is shown or scored."""
    return CALCULATOR.sub("", text)


def worked_solution(answer: str) -> str:
    """The chain of thought of a GSM8K answer (before `####`), calculator annotations removed."""
    return strip_calculator(answer.split("####")[0]).strip()


def reference_answer(answer: str) -> str:
    """The number after `####` in a GSM8K solution, commas removed."""
    return answer.split("####")[-1].strip().replace(",", "")


def worked_example(record: dict) -> str:
    reasoning = worked_solution(record["answer"])
    return f"Question: {record['question']}\nAnswer: {reasoning} The answer is {reference_answer(record['answer'])}."


class GSM8K(Task):
    name = "gsm8k"
    version = "2"  # 2: few-shot examples without calculator annotations
    category = "math"
    filename = "gsm8k_test.jsonl"
    shots_filename = "gsm8k_train.jsonl"
    hf_name, hf_config = "openai/gsm8k", "main"
    stop = ("\n\nQuestion:", "Question:")
    max_new_tokens = 512

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        shots = 8 if shots is None else shots
        for index, record in enumerate(records):
            require(record, ("question", "answer"), f"{self.name} record {index}")
        pool: list[dict] = []
        own_pool = False  # shots drawn from the test records themselves: never an item's own
        if mode == "base" and shots:
            pool_path = files.find(self.shots_filename) if files else None
            if pool_path:
                pool = read_records(pool_path)
                for index, record in enumerate(pool):
                    require(record, ("question", "answer"), f"{pool_path} record {index}")
            else:
                pool, own_pool = records, True
        shared = pick_shots(pool, shots, self.name) if pool and not own_pool else []
        samples = []
        for index, record in enumerate(records):
            if mode == "chat":
                prompt = record["question"] + CHAT_SUFFIX
            else:
                examples = pick_shots(pool, shots, self.name, record) if own_pool else shared
                prefix = "".join(worked_example(example) + "\n\n" for example in examples)
                prompt = f"{prefix}Question: {record['question']}\nAnswer:"
            samples.append(Sample(str(index), prompt, reference_answer(record["answer"])))
        return samples

    def grade(
        self, samples: Sequence[Sample], completions: Sequence[str], workers: int = 2
    ) -> list[Graded]:
        return grade_math(samples, completions, workers)
