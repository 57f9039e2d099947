"""The math-grading fidelity suite (tests/evaluate/test_fidelity.py, benchmarks/evaluate.py): cases built from benchmark answer keys, with known verdicts.

Each gold answer yields: the gold against itself; the gold stated in the answer styles models use
(boxed, "the answer is", Minerva's "Final Answer: The final answer is", `**Answer:**`, `Answer:`
lines); equivalent forms (decimals, thousands commas, fractions, a known unit); and near-miss
wrong answers (other numbers, the number times a variable, "thousand"/"million", and a bare
number against a gold that is a number times a variable). The tests assert the counts; the
benchmark (`benchmarks/evaluate.py`) compares fl with plain Math-Verify on the same cases.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from frontload.evaluate.tasks.base import read_records
from frontload.evaluate.tasks.sources import BenchFiles
from frontload.grading.grade import parse_number

STYLES = {
    "boxed": "Adding these up, the result is $\\boxed{{{x}}}$.",
    "answer_is": "Adding these up.\nThe answer is {x}.",
    "answer_is_math": "Adding these up, the answer is ${x}$.",
    "minerva": "Adding these up.\nFinal Answer: The final answer is ${x}$. I hope it is correct.",
    "bold_answer": "Adding these up.\n\n**Answer:** ${x}$",
    "answer_line": "Adding these up.\nAnswer: {x}",
}
VARIABLES = ("x", "i", "k", "\\pi", "e", "n")
TIMES_VARIABLE = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(?:\\pi|[a-zA-Z])$")


@dataclass(frozen=True)
class Case:
    """One graded pair: a full response, the gold answer, and whether they should match."""

    source: str  # benchmark file
    category: str  # gold | style:<name> | equivalent | near:<kind>
    response: str
    gold: str
    expected: bool


def _rows(files: BenchFiles, name: str, per_file: int | None) -> list[dict]:
    """The first `per_file` records of a benchmark file (none when no folder holds it)."""
    path = files.find(name)
    return read_records(path)[:per_file] if path else []


def gold_answers(
    files: BenchFiles | None = None, per_file: int | None = None
) -> list[tuple[str, str]]:
    """(file, gold answer) pairs from MATH-500, GSM8K, AIME 24/25 and AMC 23 answer keys
    (default: the files shipped with fl)."""
    files = files or BenchFiles.shipped()
    found: list[tuple[str, str]] = []

    def rows(name: str) -> list[dict]:
        return _rows(files, name, per_file)

    found += [("math500", str(r["answer"]).strip()) for r in rows("math500_test.jsonl")]
    found += [
        ("gsm8k", r["answer"].split("####")[-1].strip().replace(",", ""))
        for r in rows("gsm8k_test.jsonl")
    ]
    for name in ("aime24", "aime25"):
        found += [(name, str(r["expected_answer"]).strip()) for r in rows(f"{name}.jsonl")]
    found += [("amc23", str(int(float(r["answer"])))) for r in rows("amc23.jsonl")]
    return [(source, gold) for source, gold in found if gold]


def solution_cases(files: BenchFiles | None = None, per_file: int | None = None) -> list[Case]:
    """Worked solutions against their answers: MATH-500 `solution` (boxed) and GSM8K `answer`
    (`#### N`) texts, the realistic workload for grading throughput."""
    files = files or BenchFiles.shipped()
    cases = []
    for name, source, text_field in (
        ("math500_test.jsonl", "math500", "solution"),
        ("gsm8k_test.jsonl", "gsm8k", "answer"),
    ):
        for row in _rows(files, name, per_file):
            gold = str(row["answer"]).strip()
            if source == "gsm8k":
                gold = gold.split("####")[-1].strip().replace(",", "")
            cases.append(Case(source, "solution", row[text_field], gold, True))
    return cases


def _equivalents(value: Fraction) -> list[str]:
    if value.denominator == 1:
        n = value.numerator
        forms = [f"{n}.0", f"\\frac{{{2 * n}}}{{2}}", f"{n} \\text{{ cm}}"]
        if abs(n) >= 1000:
            forms.append(f"{n:,}")
        return forms
    p, q = value.numerator, value.denominator
    forms = [f"{p}/{q}", f"\\dfrac{{{p}}}{{{q}}}"]
    decimal = float(value)
    if round(decimal, 7) == decimal:
        forms.append(repr(decimal))
    else:
        forms.append(f"{decimal:.7f}")  # rounded, as Math-Verify accepts
    return forms


def _near_misses(value: Fraction, text: str) -> list[tuple[str, str]]:
    misses: list[tuple[str, str]] = []
    if value.denominator == 1:
        n = value.numerator
        misses += [("other_number", str(n + 1)), ("other_number", str(n - 1))]
        if n != 0:
            misses.append(("other_number", str(10 * n)))
    else:
        misses.append(("other_number", f"\\frac{{{value.numerator + 1}}}{{{value.denominator}}}"))
    if value != 0:
        misses += [("times_variable", f"{text}{v}") for v in VARIABLES]
        misses += [("times_variable", f"{text} {v}") for v in ("x", "\\pi")]
        misses += [("scale_word", f"{text} thousand"), ("scale_word", f"{text} million")]
    return misses


def build_cases(golds: Iterable[tuple[str, str]]) -> list[Case]:
    """All cases for the given gold answers (deterministic order)."""
    cases: list[Case] = []
    for source, gold in golds:
        cases.append(Case(source, "gold", gold, gold, True))
        for style, template in STYLES.items():
            cases.append(Case(source, f"style:{style}", template.format(x=gold), gold, True))
        parsed = parse_number(gold)
        if parsed is not None and not parsed[1]:
            value = parsed[0]
            for form in _equivalents(value):
                cases.append(Case(source, "equivalent", f"\\boxed{{{form}}}", gold, True))
            for kind, miss in _near_misses(value, gold):
                cases.append(Case(source, f"near:{kind}", f"\\boxed{{{miss}}}", gold, False))
        bare = TIMES_VARIABLE.match(gold)
        if bare and float(bare.group(1)) != 0:
            cases.append(
                Case(source, "near:times_variable", f"\\boxed{{{bare.group(1)}}}", gold, False)
            )
    return cases


def tally(cases: Sequence[Case], verdicts: Sequence[bool]) -> dict[str, dict[str, int]]:
    """Per category: cases, false negatives (should match, did not), false positives."""
    table: dict[str, Counter] = {}
    for case, verdict in zip(cases, verdicts, strict=True):
        group = case.category.split(":")[0] if case.category.startswith("style") else case.category
        counts = table.setdefault(group, Counter())
        counts["cases"] += 1
        counts["fn"] += int(case.expected and not verdict)
        counts["fp"] += int(not case.expected and verdict)
    return {name: dict(counts) for name, counts in sorted(table.items())}


def grade_with_fl(cases: Sequence[Case], workers: int = 2) -> list[bool]:
    """fl's pipeline: extract the answer from the response, then grade it (gold-against-gold
    cases grade the bare answers: there is no response to extract from)."""
    from frontload.grading.extract import extract_answer
    from frontload.grading.grade import grade_math_batch

    pairs = [
        (
            case.response if case.category == "gold" else extract_answer(case.response).answer,
            case.gold,
        )
        for case in cases
    ]
    return grade_math_batch(pairs, workers=workers)


def grade_with_math_verify(cases: Sequence[Case]) -> list[bool]:
    """Plain Math-Verify the way lighteval's math metrics call it: the gold parsed as LaTeX or an
    expression, the response with boxed answers first, then `verify` (main thread, its own
    signal timeouts)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    gold_config = [LatexExtractionConfig(), ExprExtractionConfig()]
    pred_config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    verdicts = []
    for case in cases:
        try:
            gold = parse(f"${case.gold}$", extraction_config=gold_config) or parse(
                case.gold, extraction_config=gold_config
            )
            if case.category == "gold":
                pred = gold
            else:
                pred = parse(case.response, extraction_config=pred_config)
            verdicts.append(bool(gold and pred and verify(gold, pred)))
        except Exception:  # noqa: BLE001 - a Math-Verify failure is a "no match"
            verdicts.append(False)
    return verdicts
