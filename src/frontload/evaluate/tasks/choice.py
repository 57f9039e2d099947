"""Multiple-choice tasks: MMLU, MMLU-Pro, GPQA-Diamond (letters; log-likelihood for base models,
a generated "The answer is (X)" for chat models)."""

from __future__ import annotations

import ast
import csv
import hashlib
import random
import re
from collections import defaultdict
from pathlib import Path

from frontload.benchdata import open_text
from frontload.errors import InputError
from frontload.evaluate.tasks.base import (
    Graded,
    Sample,
    Task,
    check_mode,
    pick_shots,
    read_records,
    require,
)
from frontload.evaluate.tasks.sources import BenchFiles
from frontload.grading.extract import extract_choice

LETTERS = "ABCDEFGHIJ"
CHAT_SUFFIX = '\n\nThink step by step, then finish with "The answer is (X)" where X is the letter.'


def question_block(question: str, options: list[str]) -> str:
    lines = [question.strip()]
    lines += [f"{LETTERS[i]}. {option}" for i, option in enumerate(options)]
    return "\n".join(lines) + "\nAnswer:"


class ChoiceTask(Task):
    """Records normalised to {question, options, answer (letter), subject}."""

    loglik = True
    category = "science"
    default_shots = 5
    max_new_tokens = 1024

    def normalise(self, records: list[dict]) -> list[dict]:
        return records

    def shot_pool(self, records: list[dict], files: BenchFiles | None) -> list[dict]:
        return records

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        items = self.normalise(records)
        pool_by_subject: dict[str, list[dict]] = defaultdict(list)
        for item in self.shot_pool(items, files):
            pool_by_subject[item["subject"]].append(item)
        shots = self.default_shots if shots is None else shots
        samples = []
        for index, item in enumerate(items):
            subject = item["subject"]
            examples = (
                pick_shots(pool_by_subject[subject], shots, f"{self.name}/{subject}", exclude=item)
                if shots
                else []
            )
            header = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
            body = "".join(
                question_block(e["question"], e["options"]) + f" {e['answer']}\n\n"
                for e in examples
            )
            prompt = header + body + question_block(item["question"], item["options"])
            if mode == "chat":
                prompt += CHAT_SUFFIX
            letters = LETTERS[: len(item["options"])]
            samples.append(
                Sample(
                    str(item.get("id", index)),
                    prompt,
                    item["answer"],
                    choices=[f" {letter}" for letter in letters],
                    meta={
                        "subject": subject,
                        "letters": letters,
                        "gold_index": LETTERS.index(item["answer"]),
                    },
                )
            )
        return samples

    def grade(self, samples, completions, workers: int = 2):
        graded = []
        for sample, completion in zip(samples, completions, strict=True):
            found = extract_choice(completion or "", sample.meta["letters"])
            verdict = "passed" if found.answer == sample.reference else "failed"
            graded.append(Graded(found.answer, verdict, found.rule))
        return graded


class MMLU(ChoiceTask):
    """hendrycks/test layout: `<dir>/test/<subject>_test.csv`, shots from `<dir>/dev`."""

    name, version, filename = "mmlu", "1", "mmlu"
    hf_name, hf_config = "cais/mmlu", "all"

    def read(self, path: Path) -> list[dict]:
        if path.is_file():  # the hub layout saved as records (`fl evaluate add-benchmark mmlu hf:`)
            return read_records(path)
        folder = path / "test" if (path / "test").is_dir() else path
        return read_mmlu_folder(folder, "_test.csv")

    def shot_pool(self, records, files):
        dev = files.find(f"{self.filename}/dev") if files else None
        return read_mmlu_folder(dev, "_dev.csv") if dev and dev.is_dir() else records

    def normalise(self, records):
        if records and "options" in records[0]:
            return records
        return [  # hub layout: question, subject, choices, answer index
            {
                "question": r["question"],
                "options": list(r["choices"]),
                "answer": LETTERS[int(r["answer"])],
                "subject": r.get("subject", "all"),
            }
            for r in records
        ]


def read_mmlu_folder(folder: Path, suffix: str) -> list[dict]:
    """Rows `question, A, B, C, D, answer` (letter, or an index when the file has a header), one
    file per subject, plain or gzip-compressed (`<subject>_test.csv[.gz]`)."""
    paths = sorted([*folder.glob(f"*{suffix}"), *folder.glob(f"*{suffix}.gz")])
    if not paths:
        raise InputError(
            f"no *{suffix} files in {folder}", hint="point --data-dir at the MMLU data folder"
        )
    records = []
    for path in paths:
        subject = path.name.removesuffix(".gz").removesuffix(suffix)
        with open_text(path) as handle:
            for number, row in enumerate(csv.reader(handle), 1):
                if number == 1 and row and row[0] == "question":
                    continue
                if len(row) != 6:
                    raise InputError(f"{path}:{number}: expected 6 columns, found {len(row)}")
                answer = row[5].strip()
                answer = LETTERS[int(answer)] if answer.isdigit() else answer.upper()
                if answer not in "ABCD":
                    raise InputError(f"{path}:{number}: answer {row[5]!r} is not A-D or 0-3")
                records.append(
                    {
                        "id": f"{subject}/{number}",
                        "question": row[0],
                        "options": row[1:5],
                        "answer": answer,
                        "subject": subject,
                    }
                )
    return records


class MMLUPro(ChoiceTask):
    """TIGER-Lab layout: question, options (up to 10), answer letter, category; shots from validation."""

    name, version, filename = "mmlu_pro", "1", "mmlu_pro_test_12032.jsonl"
    shots_filename = "mmlu_pro_validation_70.jsonl"
    hf_name = "TIGER-Lab/MMLU-Pro"

    def normalise(self, records):
        items = []
        for index, record in enumerate(records):
            require(record, ("question", "options", "answer"), f"{self.name} record {index}")
            options = record["options"]
            if isinstance(options, str):
                options = ast.literal_eval(options)
            items.append(
                {
                    "id": record.get("question_id", index),
                    "question": record["question"],
                    "options": [str(o) for o in options],
                    "answer": str(record["answer"]).strip(),
                    "subject": record.get("category", "all"),
                }
            )
        return items

    def shot_pool(self, records, files):
        path = files.find(self.shots_filename) if files else None
        return self.normalise(read_records(path)) if path else records


class GPQADiamond(MMLUPro):
    """GPQA-Diamond in MMLU-Pro's format, or the original CSV (options shuffled with a fixed seed)."""

    name, version, filename = "gpqa_diamond", "1", "gpqa_diamond.jsonl"
    default_shots = 0

    def normalise(self, records):
        if records and "Correct Answer" in records[0]:
            records = [gpqa_row(row, index) for index, row in enumerate(records)]
        elif records and "options" not in records[0]:
            records = [inline_row(row, index) for index, row in enumerate(records)]
        return super().normalise(records)

    def shot_pool(self, records, files):
        return records


def gpqa_row(row: dict, index: int) -> dict:
    """Original GPQA CSV row -> MMLU-Pro layout with a deterministic option order."""
    options = [
        row["Correct Answer"],
        row["Incorrect Answer 1"],
        row["Incorrect Answer 2"],
        row["Incorrect Answer 3"],
    ]
    order = list(range(4))
    random.Random(hashlib.sha256(row["Question"].encode()).hexdigest()).shuffle(order)
    shuffled = [options[i].strip() for i in order]
    return {
        "question_id": row.get("Record ID", index),
        "question": row["Question"],
        "options": shuffled,
        "answer": LETTERS[order.index(0)],
        "category": row.get("High-level domain", "gpqa"),
    }


INLINE_OPTION = re.compile(r"^\s*\(?([A-J])[).:]\s+(.+?)\s*$", re.MULTILINE)


def inline_row(row: dict, index: int) -> dict:
    """A question with its options written inline ("(A) ...", "B) ...", "C. ...", one per line)
    and the answer as a letter or as the correct option's text -> MMLU-Pro layout, the option
    order shuffled with a seed fixed by the question (the original GPQA protocol shuffles)."""
    where = f"gpqa_diamond record {index + 1}"
    question = next((row[k] for k in ("question", "problem", "Question") if row.get(k)), None)
    answer = next(
        (row[k] for k in ("answer", "expected_answer", "Answer", "correct") if row.get(k)), None
    )
    if question is None or answer is None:
        raise InputError(
            f"{where}: needs a question (question/problem) and an answer (answer/expected_answer)",
            hint="map your fields with --field gpqa_diamond.question=FIELD",
        )
    found = INLINE_OPTION.findall(str(question))
    letters = [letter for letter, _ in found]
    if len(found) < 2 or letters != list(LETTERS[: len(found)]):
        raise InputError(f"{where}: no inline options (A) ... (B) ... found in the question")
    stem = str(question)[: INLINE_OPTION.search(str(question)).start()].strip()
    options = [text for _, text in found]
    answer = str(answer).strip().strip("()").strip()
    if len(answer) == 1 and answer.upper() in letters:
        correct = letters.index(answer.upper())
    elif answer in options:
        correct = options.index(answer)
    else:
        raise InputError(f"{where}: answer {answer!r} is neither a letter nor one of the options")
    order = list(range(len(options)))
    random.Random(hashlib.sha256(stem.encode()).hexdigest()).shuffle(order)
    return {
        "question_id": row.get("id", index),
        "question": stem,
        "options": [options[i] for i in order],
        "answer": LETTERS[order.index(correct)],
        "category": row.get("domain", "gpqa"),
    }
