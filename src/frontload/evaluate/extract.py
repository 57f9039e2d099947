"""Answer extraction from free-form completions, in the study's order of rules.

Order: the last brace-matched `\\boxed{}` (or `\\fbox{}`), then "the answer is ...", then a GSM8K
`#### N` line, then the last number. The rule that fired is recorded with every sample, so a grader
regression can be traced to extraction or to equivalence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOXED_COMMANDS = ("\\boxed", "\\fbox")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
ANSWER_IS = re.compile(r"answer\s+is\s*[:：]?\s*", re.IGNORECASE)
GSM8K_MARK = re.compile(r"####\s*(.+)")
LETTER = re.compile(r"\b([A-J])\b")


@dataclass(frozen=True)
class Extracted:
    """The extracted answer (None when nothing was found) and the rule that produced it."""

    answer: str | None
    rule: str  # boxed | answer_is | gsm8k | last_number | none


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}`/`\\fbox{...}` with nested braces matched, else None."""
    best_start = -1
    for command in BOXED_COMMANDS:
        best_start = max(best_start, text.rfind(command))
    if best_start < 0:
        return None
    rest = text[best_start:]
    command = next(c for c in BOXED_COMMANDS if rest.startswith(c))
    rest = rest[len(command) :]
    if rest.startswith(" ") and not rest.lstrip().startswith("{"):
        # `\boxed 5` (no braces): the token up to whitespace or `$`.
        token = re.match(r"\s*([^\s$]+)", rest)
        return token.group(1) if token else None
    rest = rest.lstrip()
    if not rest.startswith("{"):
        return None
    depth = 0
    for index, char in enumerate(rest):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return rest[1:index].strip()
    return None  # unbalanced: the completion was cut off inside the box


def _answer_is(text: str) -> str | None:
    matches = list(ANSWER_IS.finditer(text))
    if not matches:
        return None
    tail = text[matches[-1].end() :].strip()
    if tail.startswith("$"):
        # Minerva style: "The final answer is $x^2$. I hope it is correct."
        end = tail.find("$", 1)
        candidate = tail[1:end] if end > 0 else tail[1:]
    else:
        candidate = tail.split("\n", 1)[0]
        candidate = re.split(r"\.(?:\s|$)", candidate, maxsplit=1)[0]
    candidate = candidate.strip().strip("*").strip().rstrip(".").strip()
    if len(candidate.split()) > 5 and not re.search(r"[\d\\]", candidate):
        return None  # prose ("the answer is not obvious yet ..."), not a stated answer
    return candidate or None


def last_number(text: str) -> str | None:
    """The last number in the text, commas between digits removed."""
    numbers = NUMBER.findall(text)
    if not numbers:
        return None
    return numbers[-1].rstrip(",").replace(",", "")


def extract_answer(text: str) -> Extracted:
    """Apply the rules in order; the first that finds something wins."""
    if not text or not text.strip():
        return Extracted(None, "none")
    boxed = last_boxed(text)
    if boxed:
        return Extracted(boxed, "boxed")
    stated = _answer_is(text)
    if stated:
        return Extracted(stated, "answer_is")
    marks = GSM8K_MARK.findall(text)
    if marks:
        mark = marks[-1].strip()
        number = last_number(mark)
        return Extracted(number if number is not None else mark, "gsm8k")
    number = last_number(text)
    if number is not None:
        return Extracted(number, "last_number")
    return Extracted(None, "none")


def extract_choice(text: str, letters: str = "ABCD") -> Extracted:
    """A multiple-choice letter: "The answer is (B)", a boxed letter, else the last lone letter."""
    allowed = set(letters)
    for rule, candidate in (
        ("boxed", last_boxed(text or "")),
        ("answer_is", _answer_is(text or "")),
    ):
        if candidate:
            found = re.search(r"\(?([A-J])\)?", candidate)
            if found and found.group(1) in allowed:
                return Extracted(found.group(1), rule)
    lone = [m for m in LETTER.findall(text or "") if m in allowed]
    if lone:
        return Extracted(lone[-1], "last_letter")
    return Extracted(None, "none")
