"""The public benchmark files fl ships as package data, so a fresh install evaluates offline.

`files/` holds the benchmark and few-shot files the recipes and tests use, gzip-compressed in their
published layouts; `manifest.json` names each shipped dataset with its source, licence, record
count and the sha256 of both the shipped file and the original it was built from
(`scripts/build_benchdata.py` rebuilds both from a folder of originals). `LICENSES.md` carries the
licence notices the sources ask copies to keep.

Recipes name a shipped dataset as `shipped:NAME` (`shipped:gsm8k_train`, `shipped:mmlu_test`);
evaluation falls back to this folder after the user's own files (see `evaluate.tasks.files`).
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
from pathlib import Path
from typing import Any

from frontload.errors import ConfigError

PACKAGE = Path(__file__).resolve().parent
FOLDER = PACKAGE / "files"
MANIFEST = PACKAGE / "manifest.json"
SCHEME = "shipped:"


@functools.cache
def manifest() -> dict[str, Any]:
    """The shipped manifest: {"datasets": {name: {...}}, "left_out": {name: reason}, ...}."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def datasets() -> dict[str, dict[str, Any]]:
    """Shipped dataset name -> its manifest entry (path or glob, source, licence, files)."""
    return manifest()["datasets"]


def shipped_path(name: str) -> str:
    """The absolute path (or glob, for a folder of files such as MMLU) of a shipped dataset."""
    entry = datasets().get(name)
    if entry is None:
        raise ConfigError(
            f"{SCHEME}{name}: no shipped dataset of that name",
            hint=f"shipped: {', '.join(sorted(datasets()))}",
        )
    return str(FOLDER / entry["path"])


def expand_shipped(reference: str) -> str:
    """`shipped:NAME` -> the shipped file's absolute path (or glob); any other string unchanged."""
    if not reference.startswith(SCHEME):
        return reference
    return shipped_path(reference[len(SCHEME) :].strip())


def find_file(folder: Path, name: str) -> Path | None:
    """`folder/name`, else its gzip-compressed `folder/name.gz`; None when neither exists. Every
    benchmark folder may hold either form, so a user's folder and the shipped one read alike."""
    for candidate in (Path(folder) / name, Path(folder) / f"{name}.gz"):
        if candidate.exists():
            return candidate
    return None


def open_text(path: Path):
    """A text handle on a plain or .gz file."""
    path = Path(path)
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def count_records(path: Path) -> int:
    """Records in one benchmark file: JSON lines, a JSON list, or CSV rows (less a header row that
    starts with `question`, as MMLU's per-subject files have)."""
    stem = Path(path).name.removesuffix(".gz")
    with open_text(path) as handle:
        if stem.endswith(".jsonl"):
            return sum(1 for line in handle if line.strip())
        if stem.endswith(".json"):
            return len(json.load(handle))
        if stem.endswith(".csv"):
            rows = [row for row in csv.reader(handle) if row]
            return len(rows) - (1 if rows and rows[0][0] == "question" else 0)
    raise ConfigError(f"{path}: cannot count records (use .jsonl, .json or .csv, optionally .gz)")
