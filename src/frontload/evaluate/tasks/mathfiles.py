"""Math benchmark files in the layouts harnesses ship: MATH with only a worked solution, Minerva
math, and OlympiadBench (several answers, a numeric tolerance per problem)."""

from __future__ import annotations

import re

from frontload.errors import InputError
from frontload.evaluate.tasks.base import Graded, Sample, Task, check_mode
from frontload.evaluate.tasks.mathcommon import MINERVA_STOP, grade_math, math_prompt
from frontload.grading.extract import extract_answer, last_boxed
from frontload.grading.grade import math_equal, parse_number

MULTIPLE_SUFFIX = (
    "\n\nThis problem has several answers: give all of them, separated by commas, in one \\boxed{}."
)


def first_field(record: dict, names: tuple[str, ...], where: str) -> object:
    """The first of `names` present in the record; none present names the fields it looked for."""
    for name in names:
        if record.get(name) not in (None, ""):
            return record[name]
    raise InputError(
        f"{where}: needs one of the fields {', '.join(names)}",
        hint=f"fields found: {', '.join(sorted(record))}; map yours with --field",
    )


def reference_answer(record: dict, where: str) -> str:
    """`answer` when the file has it, else the last `\\boxed{}` of the worked solution."""
    if record.get("answer") not in (None, ""):
        return str(record["answer"])
    solution = str(first_field(record, ("solution",), where))
    boxed = last_boxed(solution)
    if boxed is None:
        raise InputError(
            f"{where}: no answer field and no \\boxed{{}} in the solution",
            hint="map the answer field with --field TASK.answer=FIELD",
        )
    return boxed


class MathSolutions(Task):
    """MATH (hendrycks) with `problem` and `solution`: the answer is the solution's last box."""

    name, version, category = "math", "1", "math"
    filename = "math_test.jsonl"
    hf_name = "EleutherAI/hendrycks_math"
    stop = MINERVA_STOP
    max_new_tokens = 1024
    problem_fields: tuple[str, ...] = ("problem", "question")

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            where = f"{self.name} record {index + 1}"
            problem = str(first_field(record, self.problem_fields, where))
            meta = {key: record[key] for key in ("subject", "type", "level") if key in record}
            samples.append(
                Sample(
                    str(record.get("unique_id", record.get("idx", index))),
                    math_prompt(problem, mode, shots),
                    reference_answer(record, where),
                    meta=meta,
                )
            )
        return samples

    def grade(self, samples, completions, workers: int = 2):
        return grade_math(samples, completions, workers)


class MinervaMath(MathSolutions):
    """Minerva math (272 problems): `problem`/`question` with `answer` or a boxed `solution`."""

    name, filename = "minerva_math", "minerva_math.jsonl"
    hf_name = "math-ai/minervamath"


def split_answers(text: str) -> list[str]:
    """Top-level comma-separated parts (commas inside brackets or braces stay)."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def within(prediction: str, reference: str, tolerance: float | None) -> bool:
    """Numeric closeness under the problem's stated error; exact grading otherwise."""
    if tolerance is not None:
        left, right = parse_number(prediction), parse_number(reference)
        if left is not None and right is not None:
            return abs(float(left[0]) - float(right[0])) <= tolerance
    return math_equal(prediction, reference)


class OlympiadBench(Task):
    """OlympiadBench open-ended problems: `question` (+`context`), `final_answer` (a list),
    `is_multiple_answer`, `error` (numeric tolerance), `unit`."""

    name, version, category = "olympiadbench", "1", "math"
    filename = "olympiadbench.jsonl"
    hf_name = "Hothan/OlympiadBench"
    stop = MINERVA_STOP
    max_new_tokens = 2048

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            where = f"{self.name} record {index + 1}"
            question = str(first_field(record, ("question", "problem"), where))
            if record.get("context"):
                question = f"{record['context']}\n\n{question}"
            answers = first_field(record, ("final_answer", "answer"), where)
            answers = answers if isinstance(answers, list) else [answers]
            answers = [str(a).strip().strip("$").strip() for a in answers]
            multiple = bool(record.get("is_multiple_answer")) or len(answers) > 1
            if multiple:
                answers = [part.strip("$ ") for a in answers for part in split_answers(a)]
            error = record.get("error")
            try:
                tolerance = float(str(error).split(",")[0]) if error not in (None, "") else None
            except ValueError:
                raise InputError(f"{where}: error {error!r} is not a number") from None
            prompt = math_prompt(question + (MULTIPLE_SUFFIX if multiple else ""), mode, shots)
            meta = {"multiple": multiple, "tolerance": tolerance, "unit": record.get("unit")}
            samples.append(Sample(str(record.get("id", index)), prompt, answers, meta=meta))
        return samples

    def grade_one(self, sample: Sample, completion: str) -> Graded:
        found = extract_answer(completion)
        if found.answer is None:
            return Graded(None, "failed", found.rule)
        references = sample.reference
        tolerance = sample.meta["tolerance"]
        if not sample.meta["multiple"]:
            ok = within(found.answer, references[0], tolerance)
            return Graded(found.answer, "passed" if ok else "failed", found.rule)
        predictions = split_answers(re.sub(r"\\text\{\s*and\s*\}|\band\b", ",", found.answer))
        unmatched = list(predictions)
        for reference in references:
            match = next((p for p in unmatched if within(p, reference, tolerance)), None)
            if match is None:
                return Graded(found.answer, "failed", found.rule, f"missing {reference}")
            unmatched.remove(match)
        verdict = "failed" if unmatched else "passed"
        return Graded(found.answer, verdict, found.rule, f"{len(references)} answers")

    def grade(self, samples, completions, workers: int = 2):
        return [self.grade_one(s, c or "") for s, c in zip(samples, completions, strict=True)]
