"""Answer extraction from free-form completions, in the study's order of rules.

Order: the last brace-matched `\\boxed{}` (or `\\fbox{}`, several boxes in one closing sentence
joined), then "the answer is ..." (Minerva's "Final Answer: The final answer is $X$" included), then
an `Answer: X` / `**Answer:** $X$` line, then a GSM8K `#### N` line, then the last number. The rule that fired is recorded with every sample, so a grader
regression can be traced to extraction or to equivalence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
ANSWER_IS = re.compile(r"answer\s+is\s*[:：]?\s*", re.IGNORECASE)
ANSWER_LABEL = re.compile(
    r"(?:^|\n)[ \t>#*_]*(?:final\s+)?answer[ \t*_]*[:：][ \t*_]*", re.IGNORECASE
)
GSM8K_MARK = re.compile(r"####\s*(.+)")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm)\{([^{}]*)\}")
BOX = re.compile(r"\\(?:boxed|fbox)")
BRACE = re.compile(r"[{}]")
SPACES = re.compile(r"\s*")
BARE_TOKEN = re.compile(r"\s*([^\s$]+)")
# Text between two boxes of one answer (`\boxed{69}, and \boxed{84}`). No two neighbouring
# quantifiers take the same characters: a long gap must not backtrack quadratically.
BOX_JOINER = re.compile(r"[\s$]*,[\s$]*(?:and\s[\s$]*)?")
ARTICLE_NEXT = re.compile(r"\s+[a-z]")
SPAN_JOINER = re.compile(r"\s*(?:,|and|,\s*and)\s*(?=\$)")


@dataclass(frozen=True)
class Extracted:
    """The extracted answer (None when nothing was found) and the rule that produced it."""

    answer: str | None
    rule: str  # boxed | answer_is | answer_line | gsm8k | last_number | none


def _closing_braces(text: str) -> dict[int, int]:
    """For each `{` that is closed, where its `}` is: one pass over the text, so that finding the
    end of every box costs no more than the text's length (a completion of ten thousand unclosed
    `\\boxed{` would otherwise be scanned to its end once per box)."""
    closing: dict[int, int] = {}
    opened: list[int] = []
    for brace in BRACE.finditer(text):
        if brace.group() == "{":
            opened.append(brace.start())
        elif opened:
            closing[opened.pop()] = brace.start()
    return closing


def _boxes(text: str) -> list[tuple[int, int, slice | None]]:
    """(start, end, where the content is) of every `\\boxed`/`\\fbox`; None when cut off
    unbalanced. Positions, not strings: nested boxes would otherwise copy the text once each."""
    found: list[tuple[int, int, slice | None]] = []
    closing: dict[int, int] | None = None
    for match in BOX.finditer(text):
        brace = SPACES.match(text, match.end()).end()
        if text.startswith(" ", match.end()) and not text.startswith("{", brace):
            # `\boxed 5` (no braces): the token up to whitespace or `$`.
            token = BARE_TOKEN.match(text, match.end())
            if token:
                found.append((match.start(), token.end(), slice(*token.span(1))))
            continue
        if not text.startswith("{", brace):
            continue
        if closing is None:
            closing = _closing_braces(text)
        close = closing.get(brace)
        if close is None:
            found.append((match.start(), len(text), None))
        else:
            found.append((match.start(), close + 1, slice(brace + 1, close)))
    return found


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}`/`\\fbox{...}` with nested braces matched, else None.

    Boxes listed together at the end (`\\boxed{69}, \\boxed{84}`) are one answer with several
    parts, joined by ", ".
    """
    boxes = _boxes(text)
    if not boxes or boxes[-1][2] is None:
        return None  # unbalanced: the completion was cut off inside the box
    parts = [text[boxes[-1][2]].strip()]  # from the last box backwards
    for (_, end, content), (start, _, _) in zip(boxes[-2::-1], boxes[:0:-1], strict=False):
        if content is None or not BOX_JOINER.fullmatch(text, end, start):
            break
        parts.append(text[content].strip())
    return ", ".join(reversed(parts))


def math_spans(tail: str) -> list[str]:
    """Leading `$...$` spans of `tail` joined by commas or "and" (`$69$, $84$` -> ["69", "84"]).

    An escaped `\\$` is a dollar sign inside the span, not its end (`$\\$40$` -> `\\$40`).
    """
    spans: list[str] = []
    at = 0  # a position, not a shrinking copy of the tail: thousands of spans stay linear
    while tail.startswith("$", at):
        fence = "$$" if tail.startswith("$$", at) else "$"
        index = at + len(fence)
        while True:
            found = tail.find(fence, index)
            if found < 0 or tail[found - 1] != "\\":
                break
            index = found + 1
        if found < 0:
            spans.append(tail[at + len(fence) :])
            return spans
        spans.append(tail[at + len(fence) : found])
        joiner = SPAN_JOINER.match(tail, found + len(fence))
        if not joiner:
            break
        at = joiner.end()
    return spans


def _statement(tail: str) -> str | None:
    """The stated answer at the start of `tail`: its math spans, else the text up to the sentence end."""
    tail = tail.strip().lstrip("*").strip()
    spans = [span.strip() for span in math_spans(tail) if span.strip()]
    if spans:
        candidate = ", ".join(spans)
    else:
        boxed = last_boxed(tail.split("\n", 1)[0])
        if boxed:
            return boxed
        candidate = tail.split("\n", 1)[0]
        candidate = re.split(r"\.(?:\s|$)", candidate, maxsplit=1)[0]
    candidate = candidate.strip().strip("*").strip().rstrip(".").strip()
    candidate = candidate.removeprefix("\\$").strip()  # `$\$40$`: the currency, not the answer
    if len(candidate.split()) > 5 and not re.search(r"[\d\\]", candidate):
        return None  # prose ("the answer is not obvious yet ..."), not a stated answer
    return candidate or None


def _answer_is(text: str) -> str | None:
    matches = list(ANSWER_IS.finditer(text))
    if not matches:
        return None
    return _statement(text[matches[-1].end() :])


def _answer_line(text: str) -> str | None:
    """`Answer: X`, `**Answer:** $X$`, `Final answer: X` (the last such label)."""
    matches = list(ANSWER_LABEL.finditer(text))
    if not matches:
        return None
    return _statement(text[matches[-1].end() :])


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
    labelled = _answer_line(text)
    if labelled:
        return Extracted(labelled, "answer_line")
    marks = GSM8K_MARK.findall(text)
    if marks:
        mark = marks[-1].strip()
        number = last_number(mark)
        return Extracted(number if number is not None else mark, "gsm8k")
    number = last_number(text)
    if number is not None:
        return Extracted(number, "last_number")
    return Extracted(None, "none")


CHOICE_EXPLICIT = re.compile(
    r"(?:answer\s+is|answer\s*[:：]|correct\s+(?:answer|option|choice)\s+is|(?:option|choice)\s+is)"
    r"[\s*_:$(\[{]*(?:\\(?:boxed|text|textbf|mathrm)\{[\s(]*)?"
    r"(?:option\s+|choice\s+)?\(?([A-Ja-j])(?![A-Za-z0-9])",
    re.IGNORECASE,
)
PAREN_LETTER = re.compile(r"(?<![A-Za-z0-9])\(([A-Ja-j])\)")
BARE_CAPITAL = re.compile(r"(?<![A-Za-z0-9'])([A-J])(?![A-Za-z0-9'])(?!\s+[a-z])")


def _article(text: str, match: re.Match) -> bool:
    """A lowercase `a` (or other letter) outside parentheses and followed by a word is prose."""
    start, end = match.span(1)
    return (
        match.group(1).islower()
        and text[start - 1 : start] != "("
        and ARTICLE_NEXT.match(text, end) is not None
    )


def extract_choice(text: str, letters: str = "ABCD") -> Extracted:
    """A multiple-choice letter, upper case.

    Explicit statements first ("The answer is (B)", "**Answer: D**", a boxed letter, "answer: (c)"),
    the last one winning; then the last parenthesised letter "(B)"/"(b)"; then the last capital
    standing alone (never a letter inside a word, nor the article in "A quick check").
    """
    text = text or ""
    allowed = set(letters.upper())

    def ok(letter: str | None) -> str | None:
        return letter.upper() if letter and letter.upper() in allowed else None

    boxed = last_boxed(text)
    boxed_letter = None
    if boxed:
        inner = _TEXT_WRAP.sub(r"\1", boxed).strip().strip("()").strip()
        boxed_letter = ok(inner) if len(inner) == 1 else None
    explicit = [
        (m.start(), ok(m.group(1)))
        for m in CHOICE_EXPLICIT.finditer(text)
        if not _article(text, m)  # "the answer is a prime number"
    ]
    explicit = [(pos, letter) for pos, letter in explicit if letter]
    if explicit or boxed_letter:
        box_pos = text.rfind("\\boxed") if boxed_letter else -1
        if explicit and explicit[-1][0] > box_pos:
            return Extracted(explicit[-1][1], "answer_is")
        return Extracted(boxed_letter, "boxed")
    for rule, pattern in (("paren_letter", PAREN_LETTER), ("last_letter", BARE_CAPITAL)):
        found = [ok(m.group(1)) for m in pattern.finditer(text)]
        found = [letter for letter in found if letter]
        if found:
            return Extracted(found[-1], rule)
    return Extracted(None, "none")
