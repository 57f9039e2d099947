"""Heuristic cleaning for QA and reasoning data: one datatrove filter, one named reason per check."""

from __future__ import annotations

import re
from collections import Counter

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from frontload.curate.recipe import CleanConfig

# A response that stops on one of these was cut off (a generation limit, a broken export).
DANGLING_ENDINGS = re.compile(
    r"(\b(and|or|the|a|an|to|of|so|then|is|are|we|which|that|because|with|by|for)|[,(:=+\-*/\\])$",
    re.IGNORECASE,
)
WORD = re.compile(r"\w+")


def is_truncated(response: str) -> bool:
    """Unclosed code fence, unbalanced \\boxed{, a trailing '...' or a dangling word/operator."""
    stripped = response.rstrip()
    if not stripped:
        return False
    if stripped.count("```") % 2 == 1:
        return True
    boxed = stripped.rfind("\\boxed{")
    if boxed >= 0 and stripped[boxed:].count("{") > stripped[boxed:].count("}"):
        return True
    if stripped.endswith(("...", "…")) and not stripped.endswith("...)"):
        return True
    last_line = stripped.rsplit("\n", 1)[-1]
    if last_line.lstrip().startswith(("def ", "class ", "    ", "\t", "#", "import ", "return")):
        return False  # code ends without sentence punctuation legitimately
    return bool(DANGLING_ENDINGS.search(stripped))


def duplicate_line_fraction(text: str) -> float:
    """Share of characters in lines that occur more than once (non-empty lines)."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(lines) < 4:
        return 0.0
    counts = Counter(lines)
    duplicated = sum(len(line) * (n - 1) for line, n in counts.items() if n > 1)
    return duplicated / max(1, sum(len(line) for line in lines))


def top_ngram_fraction(text: str, n: int = 4) -> float:
    """Share of words covered by the most frequent word n-gram (a looping generation).

    Coverage counts each word once: overlapping occurrences ("2*2*2*2*2") no longer add up to
    more than the words they span, which wrongly dropped genuine GSM8K solutions.
    """
    words = WORD.findall(text.lower())
    if len(words) < 50:
        return 0.0
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    top, count = Counter(grams).most_common(1)[0]
    if count < 2:
        return 0.0
    covered: set[int] = set()
    for start, gram in enumerate(grams):
        if gram == top:
            covered.update(range(start, start + n))
    return len(covered) / len(words)


class CleanFilter(BaseFilter):
    """Drops empty, truncated, absurdly long or repetitive records, and wrong-language ones."""

    name = "clean"

    def __init__(self, config: CleanConfig, exclusion_writer: DiskWriter | None = None):
        super().__init__(exclusion_writer)
        self.config = config
        self._language_model = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        config, meta = self.config, doc.metadata
        is_qa = bool(meta.get("prompt")) or bool(meta.get("response"))
        response = meta.get("response") or ""
        if is_qa:
            if not meta.get("prompt", "").strip():
                return False, "empty_prompt"
            if not response.strip():
                return False, "empty_response"
            if config.min_response_chars is not None and len(response) < config.min_response_chars:
                return False, "too_short"
            if config.truncation and is_truncated(response):
                return False, "truncated"
        else:
            if not doc.text.strip():
                return False, "empty_text"
            if config.min_text_chars is not None and len(doc.text) < config.min_text_chars:
                return False, "too_short"
        if config.max_chars is not None and len(doc.text) > config.max_chars:
            return False, "too_long"
        body = response if is_qa else doc.text
        limit = config.max_duplicate_line_fraction
        if limit is not None and duplicate_line_fraction(body) > limit:
            return False, "repetition"
        limit = config.max_top_ngram_fraction
        if limit is not None and top_ngram_fraction(body) > limit:
            return False, "repetition"
        if config.language_model is not None and not self._language_ok(doc.text):
            return False, "language"
        return True

    def _language_ok(self, text: str) -> bool:
        if self._language_model is None:
            import fasttext

            self._language_model = fasttext.load_model(str(self.config.language_model))
        labels, scores = self._language_model.predict([text.replace("\n", " ")[:2000]])
        language = labels[0][0].removeprefix("__label__")
        return language in self.config.languages and scores[0][0] >= self.config.min_language_score
