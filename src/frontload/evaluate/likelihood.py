"""Likelihood metrics of `fl evaluate`: how much probability a model gives the gold solution.

Accuracy of a 1M-parameter model is 0% on every arm, so it cannot rank data; the probability of the
gold continuation moves smoothly long before accuracy does (DataDecide, Magnusson et al. 2025; OLMES).
Per sample, in one teacher-forced pass over prompt + gold:
- `bpb`: bits per UTF-8 byte of the gold solution given the prompt, in the model's own format (the
  prompt is already rendered: plain few-shot text for base models, the chat template for SFT ones;
  GSM8K's `<<48/2=24>>` calculator annotations are removed, so it scores reasoning, not GSM8K's
  tool-call format);
- `answer_logprob`: natural-log probability of the gold final answer where it sits in the solution;
- `choice_prob` (multiple choice): the gold option's probability renormalised over the options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from frontload.evaluate import metrics
from frontload.evaluate.tasks.base import Sample, Task
from frontload.evaluate.tasks.gsm8k import worked_solution

CHOICE_LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Gold:
    """A gold solution cut in three: text before the final answer, the answer, the text after."""

    body: str
    answer: str = ""
    tail: str = ""

    @property
    def text(self) -> str:
        return self.body + self.answer + self.tail


def split_boxed(solution: str) -> Gold:
    """Cut a MATH-style solution around its last \\boxed{...} (braces balanced)."""
    start = solution.rfind("\\boxed{")
    if start < 0:
        return Gold(solution)
    open_at = start + len("\\boxed{")
    depth = 1
    for index in range(open_at, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[index], 0)
        if depth == 0:
            return Gold(solution[:open_at], solution[open_at:index], solution[index:])
    return Gold(solution)


def gold_solution(task: Task, sample: Sample, record: dict, mode: str) -> Gold | None:
    """The gold continuation of one sample in the task's own prompt format, or None when the task
    has no gold solution (IFEval, LiveCodeBench). A task may define `gold_solution(sample, record,
    mode)` itself; these are the defaults for the study's benchmarks."""
    hook = getattr(task, "gold_solution", None)
    if callable(hook):
        return hook(sample, record, mode)
    chat = mode == "chat"
    if task.name == "gsm8k" and isinstance(record.get("answer"), str):
        reasoning = worked_solution(record["answer"])  # calculator annotations removed
        answer = str(sample.reference)
        if chat:  # the chat prompt asks for \boxed{}
            return Gold(f"{reasoning}\nThe final answer is $\\boxed{{", answer, "}$.")
        # the few-shot examples' own format: "Answer: <reasoning> The answer is N."
        return Gold(f" {reasoning} The answer is ", answer, ".")
    for field in ("solution", "reference_solution"):  # MATH-500; AIME (NeMo-Skills layout)
        if isinstance(record.get(field), str) and record[field].strip():
            return split_boxed(record[field])
    if task.category == "math" and sample.reference not in (None, ""):
        # only a final answer (AMC): its statement in the prompt's own format
        answer = str(sample.reference)
        if chat:
            return Gold("The final answer is $\\boxed{", answer, "}$.")
        return Gold("Final Answer: The final answer is $", answer, "$. I hope it is correct.")
    code = record.get("canonical_solution") if task.name == "humaneval" else record.get("code")
    if task.category == "code" and isinstance(code, str) and code.strip():
        if not chat:
            return Gold(code)
        full = (record.get("prompt", "") + code) if task.name == "humaneval" else code
        return Gold(f"```python\n{full.rstrip()}\n```")
    return None


def choice_continuations(task: Task, sample: Sample, chat: bool) -> list[str] | None:
    """The options to score for a multiple-choice sample (None when it has none). Chat models
    that generate "The answer is (X)" are scored on that sentence, their own format."""
    if not sample.choices or "gold_index" not in sample.meta:
        return None
    letters = sample.meta.get("letters")
    if chat and letters and not task.chat_loglik:
        return [f"The answer is ({letter})." for letter in letters]
    return list(sample.choices)


def choice_metrics(logprobs: Sequence[float], options: Sequence[str], gold: int) -> dict:
    """bpb and log-probability of the gold option, and its renormalised probability."""
    return {
        "bpb": metrics.bits_per_byte(logprobs[gold], options[gold]),
        "answer_logprob": float(logprobs[gold]),
        "choice_prob": metrics.choice_probability(logprobs, gold),
    }


def score_samples(
    model,
    tokenizer,
    task: Task,
    samples: Sequence[Sample],
    prompts: Sequence[str],
    golds: Sequence[Gold | None],
    chat: bool,
    batch_size: int,
    choice_scores: Sequence[Sequence[float]] | None = None,
) -> list[dict]:
    """Likelihood metrics of each sample in batched teacher-forced passes (missing ones: None).

    `choice_scores` are the options' log-likelihoods when the runner already computed them to pick
    an answer; otherwise multiple-choice options are scored here."""
    from frontload.evaluate.generation import score_segments

    out: list[dict] = [dict.fromkeys(metrics.LIKELIHOOD_METRICS) for _ in samples]
    option_rows, option_owner = [], []
    for i, sample in enumerate(samples):
        if choice_scores is not None:
            options = list(sample.choices or [])
            out[i] |= choice_metrics(choice_scores[i], options, sample.meta["gold_index"])
            continue
        options = choice_continuations(task, sample, chat)
        if options is not None:
            contexts = sample.meta.get("contexts") if not chat else None
            for j, option in enumerate(options):
                option_rows.append([contexts[j] if contexts else prompts[i], option])
                option_owner.append(i)
    if option_rows:
        scored = score_segments(model, tokenizer, option_rows, batch_size, eos_if_empty=True)
        per_sample: dict[int, list[float]] = {}
        for owner, row in zip(option_owner, scored, strict=True):
            per_sample.setdefault(owner, []).append(row[0][0])
        for owner, values in per_sample.items():
            options = choice_continuations(task, samples[owner], chat) or []
            out[owner] |= choice_metrics(values, options, samples[owner].meta["gold_index"])
    solution_rows = [
        (i, [prompts[i], gold.body, gold.answer, gold.tail])
        for i, gold in enumerate(golds)
        if gold is not None and gold.text
    ]
    if solution_rows:
        scored = score_segments(model, tokenizer, [row for _, row in solution_rows], batch_size)
        for (i, _), segments in zip(solution_rows, scored, strict=True):
            gold = golds[i]
            total = sum(logprob for logprob, _ in segments)
            out[i]["bpb"] = metrics.bits_per_byte(total, gold.text)
            out[i]["answer_logprob"] = segments[1][0] if gold.answer else None
    return out
