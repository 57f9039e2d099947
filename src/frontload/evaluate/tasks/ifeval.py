"""IFEval-style verifiable instructions (Zhou et al., 2023), official `input_data.jsonl` layout:
{"key", "prompt", "instruction_id_list", "kwargs"}. Score: strict prompt-level accuracy (every
instruction of a prompt followed). Instructions without a checker here (e.g. response language,
which needs a language detector) count as not followed and are named in the sample's detail."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from frontload.evaluate.tasks.base import Graded, Sample, Task, check_mode, require


def _compare(value: int, relation: str | None, target: int) -> bool:
    return value < target if relation == "less than" else value >= target


def _words(text: str) -> list[str]:
    return re.findall(r"\b\w+\b", text)


def _sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()])


def _json(text: str) -> bool:
    body = text.strip().removeprefix("```json").removeprefix("```JSON").removeprefix("```")
    body = body.removesuffix("```").strip()
    try:
        json.loads(body)
    except json.JSONDecodeError:
        return False
    return True


def _count_word(text: str, word: str) -> int:
    return len(re.findall(rf"\b{re.escape(word)}\b", text, flags=re.IGNORECASE))


def _two_responses(text: str) -> bool:
    parts = [x.strip() for x in text.split("******") if x.strip()]
    return len(parts) == 2 and parts[0] != parts[1]


def _paragraphs(text: str) -> int:
    return len([x for x in re.split(r"\s?\*\*\*\s?", text) if x.strip()])


def _bullets(text: str) -> int:
    return len(re.findall(r"^\s*[*-]\s+\S", text, flags=re.MULTILINE))


def _sections(text: str, splitter: str) -> int:
    return len(re.split(rf"\s?{re.escape(splitter)}\s?\d+\s?", text)) - 1


CHECKS: dict[str, Callable[[str, dict, str], bool]] = {
    "punctuation:no_comma": lambda r, k, p: "," not in r,
    "change_case:english_lowercase": lambda r, k, p: r == r.lower(),
    "change_case:english_capital": lambda r, k, p: r == r.upper(),
    "change_case:capital_word_frequency": lambda r, k, p: _compare(
        len([w for w in _words(r) if w.isupper()]),
        k.get("capital_relation"),
        k["capital_frequency"],
    ),
    "length_constraints:number_words": lambda r, k, p: _compare(
        len(_words(r)), k.get("relation"), k["num_words"]
    ),
    "length_constraints:number_sentences": lambda r, k, p: _compare(
        _sentences(r), k.get("relation"), k["num_sentences"]
    ),
    "length_constraints:number_paragraphs": lambda r, k, p: _paragraphs(r) == k["num_paragraphs"],
    "detectable_format:number_bullet_lists": lambda r, k, p: _bullets(r) == k["num_bullets"],
    "detectable_format:json_format": lambda r, k, p: _json(r),
    "detectable_format:title": lambda r, k, p: re.search(r"<<[^\n]+>>", r) is not None,
    "detectable_format:number_highlighted_sections": lambda r, k, p: (
        len(re.findall(r"\*[^\n*]+\*", r)) >= k["num_highlights"]
    ),
    "detectable_format:multiple_sections": lambda r, k, p: (
        _sections(r, k["section_spliter"]) >= k["num_sections"]
    ),
    "detectable_format:constrained_response": lambda r, k, p: any(
        option in r for option in ("My answer is yes.", "My answer is no.", "My answer is maybe.")
    ),
    "keywords:existence": lambda r, k, p: all(_count_word(r, w) for w in k["keywords"]),
    "keywords:forbidden_words": lambda r, k, p: (
        not any(_count_word(r, w) for w in k["forbidden_words"])
    ),
    "keywords:frequency": lambda r, k, p: _compare(
        _count_word(r, k["keyword"]), k.get("relation"), k["frequency"]
    ),
    "keywords:letter_frequency": lambda r, k, p: _compare(
        r.lower().count(k["letter"].lower()), k.get("let_relation"), k["let_frequency"]
    ),
    "startend:end_checker": lambda r, k, p: (
        r.strip().strip('"').lower().endswith(k["end_phrase"].strip().lower())
    ),
    "startend:quotation": lambda r, k, p: (
        len(r.strip()) > 1 and r.strip()[0] == '"' and r.strip()[-1] == '"'
    ),
    "detectable_content:postscript": lambda r, k, p: k["postscript_marker"].lower() in r.lower(),
    "detectable_content:number_placeholders": lambda r, k, p: (
        len(re.findall(r"\[.*?\]", r)) >= k["num_placeholders"]
    ),
    "combination:repeat_prompt": lambda r, k, p: (
        r.strip().lower().startswith(k["prompt_to_repeat"].strip().lower())
    ),
    "combination:two_responses": lambda r, k, p: _two_responses(r),
}


def follows(instruction: str, response: str, kwargs: dict, prompt: str) -> bool | None:
    """True/False for a supported instruction; None when there is no checker for it."""
    check = CHECKS.get(instruction)
    if check is None:
        return None
    try:
        return bool(check(response, {k: v for k, v in kwargs.items() if v is not None}, prompt))
    except (KeyError, TypeError, re.error):
        return False


class IFEval(Task):
    name, version, category = "ifeval", "1", "general"
    filename = "ifeval_input_data.jsonl"
    hf_name, hf_split = "google/IFEval", "train"
    max_new_tokens = 1024

    def build(self, records, mode, shots, files) -> list[Sample]:
        check_mode(self, mode)
        samples = []
        for index, record in enumerate(records):
            require(
                record, ("prompt", "instruction_id_list", "kwargs"), f"{self.name} record {index}"
            )
            meta = {
                "instructions": list(record["instruction_id_list"]),
                "kwargs": list(record["kwargs"]),
            }
            samples.append(Sample(str(record.get("key", index)), record["prompt"], None, meta=meta))
        return samples

    def grade(self, samples, completions, workers: int = 2) -> list[Graded]:
        graded = []
        for sample, completion in zip(samples, completions, strict=True):
            response = completion or ""
            outcomes = [
                follows(instruction, response, kwargs or {}, sample.prompt)
                for instruction, kwargs in zip(
                    sample.meta["instructions"], sample.meta["kwargs"], strict=True
                )
            ]
            missing = [
                i for i, o in zip(sample.meta["instructions"], outcomes, strict=True) if o is None
            ]
            followed = sum(bool(o) for o in outcomes)
            verdict = "passed" if outcomes and all(outcomes) else "failed"
            detail = f"{followed}/{len(outcomes)} instructions followed"
            if missing:
                detail += f"; no checker for {', '.join(missing)}"
            graded.append(Graded(f"{followed}/{len(outcomes)}", verdict, "instructions", detail))
        return graded
