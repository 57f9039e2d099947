"""Shared pieces of the math tasks: Minerva few-shot examples, prompts and the math grader."""

from __future__ import annotations

from collections.abc import Sequence

from frontload.evaluate.tasks.base import Graded, Sample
from frontload.grading.extract import extract_answer
from frontload.grading.grade import grade_math_batch

CHAT_SUFFIX = "\n\nPlease reason step by step, and put your final answer within \\boxed{}."

# The four fixed Minerva (Lewkowycz et al., 2022) examples used for MATH base-model prompts.
MINERVA_SHOTS = (
    (
        "Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
        "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so "
        "$x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, "
        "so $5-x>0$, which gives $x<5$. Therefore, the domain of the expression is "
        "$\\boxed{[2,5)}$.\nFinal Answer: The final answer is $[2,5)$. I hope it is correct.",
    ),
    (
        "If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find "
        "$\\det (\\mathbf{A} \\mathbf{B}).$",
        "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = "
        "(2)(12) = \\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct.",
    ),
    (
        "Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights "
        "instead, how many times must Terrell lift them in order to lift the same total weight?",
        "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ "
        "pounds of weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a "
        "total of $2\\cdot15\\cdot n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve "
        "for $n$:\n\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n"
        "\\end{align*}\nFinal Answer: The final answer is $16$. I hope it is correct.",
    ),
    (
        "If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has "
        "a solution $(x, y)$ where $x$ and $y$ are both nonzero, find $\\frac{a}{b},$ assuming $b$ "
        "is nonzero.",
        "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$"
        "Since we also know that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}="
        "\\boxed{-\\frac{2}{3}}.$$\nFinal Answer: The final answer is $-\\frac{2}{3}$. I hope it is "
        "correct.",
    ),
)
MINERVA_STOP = ("\n\nProblem:", "Problem:")


def minerva_prompt(problem: str, shots: int) -> str:
    """Minerva-style base prompt: `shots` fixed worked examples, then the problem."""
    parts = [f"Problem:\n{q}\n\nSolution:\n{a}" for q, a in MINERVA_SHOTS[:shots]]
    parts.append(f"Problem:\n{problem}\n\nSolution:\n")
    return "\n\n".join(parts)


def math_prompt(problem: str, mode: str, shots: int | None, default_shots: int = 4) -> str:
    if mode == "chat":
        return problem + CHAT_SUFFIX
    return minerva_prompt(problem, default_shots if shots is None else shots)


def grade_math(
    samples: Sequence[Sample], completions: Sequence[str], workers: int = 2
) -> list[Graded]:
    """Extract each answer, then grade all of them against the references in one pool."""
    extracted = [extract_answer(text or "") for text in completions]
    verdicts = grade_math_batch(
        [
            (item.answer, str(sample.reference))
            for item, sample in zip(extracted, samples, strict=True)
        ],
        workers=workers,
    )
    return [
        Graded(item.answer, "passed" if ok else "failed", item.rule)
        for item, ok in zip(extracted, verdicts, strict=True)
    ]


def number_text(value: object) -> str:
    """27.0 -> "27": references stored as floats compare as integers when integral."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
