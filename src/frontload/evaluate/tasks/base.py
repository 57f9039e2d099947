"""What every benchmark task provides, and the file readers they share.

A task loads records (local file or `hf:` dataset), turns each into a `Sample` (prompt, reference,
choices for log-likelihood scoring) and grades completions into `Graded` rows. Generation and
scoring live in the runner, so a task is only data handling and can be added as one file.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontload.errors import ConfigError, InputError
from frontload.evaluate.tasks.hub import PREFIX, load_hub
from frontload.evaluate.tasks.sources import BenchFiles

MODES = ("base", "chat")


@dataclass
class Sample:
    """One benchmark item ready for a model: its prompt and what a correct answer is."""

    id: str
    prompt: str
    reference: Any
    choices: list[str] | None = None  # log-likelihood tasks: continuations to score
    meta: dict = field(default_factory=dict)


@dataclass
class Graded:
    """The extracted answer, its verdict (passed/failed/timeout/error) and the rule that fired."""

    answer: str | None
    verdict: str
    rule: str
    detail: str = ""

    @property
    def correct(self) -> bool:
        return self.verdict == "passed"


class Task:
    """Base class: subclasses set the class attributes and implement `records`/`build`/`grade`."""

    name: str = ""
    version: str = "1"
    category: str = ""  # math | code | science | general
    filename: str = ""  # default file name in a benchmark folder (also found as NAME.gz)
    hf_name: str | None = None  # e.g. "openai/gsm8k"
    hf_config: str | None = None
    hf_split: str = "test"
    loglik: bool = False  # base mode scores choices by log-likelihood instead of generating
    chat_loglik: bool = False  # no generation even in chat mode (ARC-C, HellaSwag, ...)
    stop: tuple[str, ...] = ()  # base-mode stop strings for generation
    max_new_tokens: int = 512

    def load(self, source: str | Path) -> list[dict]:
        """Raw records from a local file (or folder) or a hub dataset (`hf:DATASET[:SPLIT]`)."""
        where = str(source)
        if where.startswith(PREFIX):
            return load_hub(where, self.hf_config, self.hf_split)
        return self.read(Path(where))

    def read(self, path: Path) -> list[dict]:
        return read_records(path)

    def build(
        self, records: list[dict], mode: str, shots: int | None, files: BenchFiles | None
    ) -> list[Sample]:
        """Samples for `mode`; `files` finds companion files (few-shot pools) when the task has any."""
        raise NotImplementedError

    def grade(
        self, samples: Sequence[Sample], completions: Sequence[str], workers: int = 2
    ) -> list[Graded]:
        raise NotImplementedError

    def grade_index(self, sample: Sample, index: int) -> Graded:
        """Log-likelihood scoring: the highest-scoring choice against the gold choice."""
        chosen = sample.choices[index].strip() if sample.choices else str(index)
        verdict = "passed" if index == sample.meta["gold_index"] else "failed"
        return Graded(chosen, verdict, "loglik")


def require(record: dict, fields: Sequence[str], where: str) -> None:
    """Raise a clear InputError when a record lacks a field the task needs."""
    missing = [name for name in fields if name not in record]
    if missing:
        raise InputError(
            f"{where}: missing field(s) {', '.join(missing)}",
            hint=f"records need the fields {', '.join(fields)}",
        )


def read_records(path: Path) -> list[dict]:
    """JSON lines (optionally .gz), a JSON list, or a CSV with a header, with errors naming the line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} not found")
    opener = gzip.open if path.suffix == ".gz" else open
    stem = path.name.removesuffix(".gz")
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            if stem.endswith(".json"):
                data = json.load(handle)
                if not isinstance(data, list):
                    raise InputError(f"{path}: expected a JSON list of records")
                return _objects(data, path, "item")
            if stem.endswith(".csv"):
                return list(csv.DictReader(handle))
            records = []
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise InputError(
                            f"{path}:{number}: not valid JSON ({error.msg})",
                            hint="each line must be one JSON object",
                        ) from None
            return _objects(records, path, "record")
    except (UnicodeDecodeError, OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: cannot read ({error})") from None


def _objects(records: list, path: Path, unit: str) -> list[dict]:
    """Every record must be a JSON object; say which one is not (1-based, as editors count)."""
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise InputError(
                f"{path}: {unit} {number}: expected a JSON object, found {type(record).__name__}",
                hint="each record is an object with the task's fields",
            )
    return records


def file_hash(path: str | Path) -> str:
    """sha256 of a data file (first 16 hex digits), recorded in every summary."""
    if str(path).startswith("hf:"):
        return str(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def pick_shots(pool: Sequence[Any], k: int, seed: str, exclude: Any = None) -> list[Any]:
    """k few-shot examples drawn deterministically (seeded by the task name), never the item itself."""
    candidates = [item for item in pool if item is not exclude]
    rng = random.Random(hashlib.sha256(seed.encode()).hexdigest())
    return rng.sample(candidates, min(k, len(candidates)))


def check_mode(task: Task, mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r} for {task.name}", hint="use base or chat")
