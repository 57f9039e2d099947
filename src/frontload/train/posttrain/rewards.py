"""Verifiable rewards for GRPO, built on the evaluation graders so training and scoring agree.

Each reward has TRL's signature `f(prompts, completions, **columns) -> list[float | None]` and
returns None for rows it does not apply to (a code reward on a math prompt). `guarded` wraps a
reward so that a grader that raises on one sample records the error, skips that sample (None, which
TRL leaves out of the advantage baseline) and counts it; when errors pass 5% of a reward's samples
the run stops with a TrainingError naming the reward and its first exception.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frontload.errors import TrainingError
from frontload.grading.extract import extract_answer, extract_choice
from frontload.grading.grade import math_equal
from frontload.grading.sandbox import Job, Limits, called_names, run_programs

# `[ \t]*\n`, not `\s*\n`: two quantifiers that both take newlines backtrack quadratically on
# a completion of "```" and thousands of newlines, in the trainer's own process.
CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)
Reward = Callable[..., list[float | None]]


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the content of chat messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))


def math_reward(prompts, completions, reference, task, **_: Any) -> list[float | None]:
    """1 when the extracted final answer equals the reference (Math-Verify), else 0."""

    scores: list[float | None] = []
    for completion, ref, kind in zip(completions, reference, task, strict=True):
        if kind != "math":
            scores.append(None)
            continue
        answer = extract_answer(completion_text(completion)).answer
        scores.append(float(math_equal(answer, ref)))
    return scores


def format_reward(prompts, completions, task, **_: Any) -> list[float | None]:
    """1 when the final answer is stated explicitly (boxed or "the answer is"), for math prompts."""

    scores: list[float | None] = []
    for completion, kind in zip(completions, task, strict=True):
        rule = extract_answer(completion_text(completion)).rule
        scores.append(float(rule in ("boxed", "answer_is")) if kind == "math" else None)
    return scores


def choice_reward(prompts, completions, reference, task, **_: Any) -> list[float | None]:
    """1 when the chosen letter matches the reference letter."""

    scores: list[float | None] = []
    for completion, ref, kind in zip(completions, reference, task, strict=True):
        if kind != "choice":
            scores.append(None)
            continue
        letter = extract_choice(completion_text(completion), letters="ABCDEFGHIJ").answer
        scores.append(float(letter is not None and letter == ref.strip().upper()))
    return scores


def extract_program(text: str) -> str:
    """The last fenced code block, else the whole completion."""
    blocks = CODE_BLOCK.findall(text)
    return blocks[-1] if blocks else text


def make_code_reward(timeout_s: float, workers: int = 2) -> Reward:
    """1 when the program passes the row's assert tests, judged outside the program's process by
    the evaluation sandbox; 0 when it fails, errs or times out (the program's fault, not the
    reward's). A sandbox that cannot run raises, and is counted as a reward error."""

    def code_reward(prompts, completions, reference, task, **_: Any) -> list[float | None]:

        limits = Limits(timeout_s=timeout_s)
        rows = [i for i, kind in enumerate(task) if kind == "code"]
        jobs = [
            Job(extract_program(completion_text(completions[i])), tests=reference[i], limits=limits)
            for i in rows
        ]
        for job in jobs:
            # Tests that never call the program (stdin/stdout cases as JSON, a reference solution)
            # would pass every sample: a reward error, not a reward of 1. Only the tests are
            # parsed here; the program is parsed, if at all, inside the sandbox.
            names = called_names(job.tests or "")
            if not names.calls and not names.builtin_calls:
                raise ValueError(
                    "the code reference calls no function of the program: expected assert-style "
                    f"tests such as `assert f(1) == 2`, got {(job.tests or '')[:80]!r}"
                )
        results = run_programs(jobs, workers=workers) if jobs else []
        scores: list[float | None] = [None] * len(completions)
        for i, result in zip(rows, results, strict=True):
            scores[i] = float(result.verdict == "passed")
        return scores

    return code_reward


ERROR_SHARE = 0.05  # more reward errors than this share of samples stops the run
ERROR_MIN_SAMPLES = 20  # ... once this many samples were scored (the end of a run checks all)


class RewardLog:
    """Counts and records reward errors, and writes a few sample completions per call."""

    def __init__(self, run_dir: Path, samples_per_call: int) -> None:
        self.errors_path = run_dir / "reward_errors.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        self.samples_per_call = samples_per_call
        self.errors = 0
        self.calls = 0
        self.failed: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.first: dict[str, str] = {}
        self._lock = threading.Lock()

    def error(self, reward: str, index: int, error: Exception, completion: Any) -> None:
        with self._lock:
            self.errors += 1
            self.failed[reward] = self.failed.get(reward, 0) + 1
            self.first.setdefault(reward, f"{type(error).__name__}: {error}")
            row = {"reward": reward, "index": index, "error": repr(error)}
            row["completion"] = completion_text(completion)[:2000]
            with self.errors_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")

    def scored(self, reward: str, count: int) -> None:
        with self._lock:
            self.seen[reward] = self.seen.get(reward, 0) + count

    def check(self, minimum: int = ERROR_MIN_SAMPLES) -> None:
        """Stop the run (TrainingError) when a reward erred on more than 5% of its samples."""

        for reward, failed in self.failed.items():
            seen = self.seen.get(reward, 0)
            if seen >= minimum and failed > ERROR_SHARE * seen:
                raise TrainingError(
                    f"{reward} failed on {failed} of {seen} samples (over "
                    f"{ERROR_SHARE:.0%}); first error: {self.first[reward]}",
                    hint=f"see {self.errors_path}; fix the grader or the data before training",
                )

    def samples(self, step: int, prompts, completions, scores, reference) -> None:
        with self._lock:
            self.calls += 1
            rows = zip(prompts, completions, scores, reference, strict=False)
            with self.samples_path.open("a", encoding="utf-8") as handle:
                for prompt, completion, score, ref in list(rows)[: self.samples_per_call]:
                    row = {"step": step, "prompt": completion_text(prompt)[:2000]}
                    row.update(completion=completion_text(completion)[:4000], reward=score)
                    row["reference"] = ref
                    handle.write(json.dumps(row) + "\n")


def guarded(reward: Reward, name: str, log: RewardLog, sample: bool = False) -> Reward:
    """Score a batch; if the grader raises, score row by row and skip (None) the rows that fail."""

    def run(prompts, completions, **columns: Any) -> list[float | None]:
        failed_before = log.failed.get(name, 0)
        try:
            scores = reward(prompts, completions, **columns)
        except Exception:  # noqa: BLE001 - any grader failure is recorded per row below
            scores = []
            for i in range(len(completions)):
                row = {k: v[i : i + 1] if isinstance(v, list) else v for k, v in columns.items()}
                try:
                    scores += reward(prompts[i : i + 1], completions[i : i + 1], **row)
                except Exception as error:  # noqa: BLE001
                    log.error(name, i, error, completions[i])
                    scores.append(None)
        erred = log.failed.get(name, 0) - failed_before
        log.scored(name, sum(score is not None for score in scores) + erred)
        log.check()
        if sample and log.samples_per_call:
            state = columns.get("trainer_state")
            step = state.global_step if state is not None else 0
            log.samples(step, prompts, completions, scores, columns.get("reference", []))
        return scores

    run.__name__ = name
    return run


def build_rewards(
    kinds: list[str], code_timeout_s: float, log: RewardLog
) -> tuple[list[Reward], list[str]]:
    """The guarded reward functions for the recipe's kinds, and their names (TRL logs per name)."""
    makers: dict[str, Reward] = {
        "math": math_reward,
        "format": format_reward,
        "choice": choice_reward,
        "code": make_code_reward(code_timeout_s),
    }
    names = [f"{kind}_reward" for kind in kinds]
    rewards = [
        guarded(makers[kind], name, log, sample=(i == 0))
        for i, (kind, name) in enumerate(zip(kinds, names, strict=True))
    ]
    return rewards, names


def task_of(domain: str | None, reference: str) -> str:
    """Which grader a prompt needs: code by domain, a lone letter as multiple choice, else math."""
    if domain == "code":
        return "code"
    if re.fullmatch(r"\(?[A-J]\)?", reference.strip()):
        return "choice"
    return "math"
