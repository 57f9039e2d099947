"""Small builders shared by the curation tests."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import yaml

SAMPLE_SOURCES = [
    {"name": "math_qa", "path": "{sample}/math_qa*.jsonl", "preset": "gsm8k", "domain": "math",
     "tags": ["diverse"]},
    {"name": "math_long_cot", "path": "{sample}/math_long_cot*.jsonl.gz", "preset": "math",
     "fields": {"reference": "answer"}, "domain": "math", "tags": ["curated"]},
    {"name": "code", "path": "{sample}/code*.parquet", "preset": "prompt_response",
     "domain": "code", "tags": ["diverse"]},
    {"name": "chat_science", "path": "{sample}/chat_science*.jsonl", "preset": "chat",
     "domain": "science", "tags": ["diverse"]},
    {"name": "web", "path": "{sample}/web*.jsonl.gz", "preset": "text", "domain": "general",
     "tags": ["general"]},
]  # fmt: skip


def sample_recipe(sample: Path, tasks: int = 2, workers: int = 1, **extra) -> dict:
    """The demo recipe over a generated sample folder, as plain data."""
    sources = [
        {**source, "path": source["path"].format(sample=sample)} for source in SAMPLE_SOURCES
    ]
    recipe = {
        "name": "test",
        "sources": sources,
        "decontam": {
            "benchmarks": [
                {"name": "gsm8k", "path": str(sample / "benchmarks" / "mini_gsm8k.jsonl")},
                {"name": "humaneval", "path": str(sample / "benchmarks" / "mini_humaneval.jsonl")},
            ]
        },
        "executor": {"tasks": tasks, "workers": workers},
    }
    recipe.update(extra)
    return recipe


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read_folder(folder: Path):
    """All parquet files of a folder as one list of rows, in file order."""
    rows = []
    for path in sorted(folder.glob("*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows
