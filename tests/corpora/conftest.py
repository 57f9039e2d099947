"""Synthetic pools written straight to parquet with RECORD_SCHEMA (no curation pipeline needed)."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from frontload.curate.schema import RECORD_SCHEMA

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "at",
    "this",
    "are",
    "from",
]
MATH = [
    "sum",
    "product",
    "integer",
    "prime",
    "divide",
    "root",
    "equation",
    "solve",
    "answer",
    "boxed",
    "total",
    "fraction",
]


def make_records(count: int, seed: int = 0) -> list[dict]:
    """Records of three sources: diverse (short), curated (long, high quality), general (web)."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        kind = ("diverse", "curated", "general")[i % 3]
        domain = "general" if kind == "general" else rng.choice(["math", "code", "science"])
        answer = {"diverse": rng.randint(20, 800), "curated": rng.randint(500, 9000), "general": 0}[
            kind
        ]
        quality = {"diverse": rng.uniform(0, 0.6), "curated": rng.uniform(0.4, 1.0)}.get(
            kind, rng.uniform(0, 0.3)
        )
        vocabulary = MATH if domain == "math" else WORDS
        response = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 30)))
        prompt = f"question {i}: " + " ".join(rng.choice(WORDS) for _ in range(5))
        has_reference = kind != "general" and i % 5 != 0
        records.append(
            {
                "id": f"{kind}-{i:06d}",
                "source": f"{kind}_source",
                "domain": domain,
                "tags": [kind],
                "prompt": "" if kind == "general" else prompt,
                "response": "" if kind == "general" else response,
                "reference": "42" if has_reference else None,
                "text": f"{prompt}\n\n{response}",
                "messages": None,
                "quality": quality,
                "answer_tokens": answer,
                "total_tokens": answer + rng.randint(10, 200),
                "dup_cluster": f"c{i % 7}" if i % 4 == 0 else None,
                "contaminated": ["gsm8k"] if i % 11 == 0 else [],
                "verified": (i % 3 != 0) if has_reference else None,
            }
        )
    return records


def write_pool(workspace, records: list[dict], parts: int = 2) -> None:
    workspace.pool_dir.mkdir(parents=True, exist_ok=True)
    step = -(-len(records) // parts)
    for part in range(parts):
        chunk = records[part * step : (part + 1) * step]
        table = pa.Table.from_pylist(chunk, schema=RECORD_SCHEMA)
        pq.write_table(table, workspace.pool_dir / f"part-{part:05d}.parquet")


@pytest.fixture
def pool(workspace):
    """A 600-record synthetic pool in the test workspace; returns its records."""
    records = make_records(600)
    write_pool(workspace, records)
    return records


REPO_ROOT = Path(__file__).resolve().parents[2]
