"""Shared pieces of the code tasks: code-block extraction and grading through the sandbox."""

from __future__ import annotations

import re
from collections.abc import Sequence

from frontload.evaluate.tasks.base import Graded
from frontload.grading.sandbox import Job, run_programs

CODE_BLOCK = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
BASE_STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert")


def extract_code(text: str) -> tuple[str, str]:
    """The last fenced code block (rule `code_block`), an unclosed one, else the text itself."""
    blocks = CODE_BLOCK.findall(text or "")
    if blocks:
        return blocks[-1], "code_block"
    opened = re.search(r"```(?:python|py)?[ \t]*\n(.*)$", text or "", re.DOTALL)
    if opened:
        return opened.group(1), "open_block"
    return text or "", "raw"


def run_and_grade(jobs: Sequence[Job], rules: Sequence[str], workers: int) -> list[Graded]:
    """Run each job in the sandbox (tests judged in a separate process), one Graded per job."""
    results = run_programs(jobs, workers=workers)
    return [
        Graded(None, result.verdict, rule, f"{result.reason}\n{result.stderr_tail}".strip())
        for result, rule in zip(results, rules, strict=True)
    ]
