"""Small real corpora (RECORD_SCHEMA parquet) and one tokenizer trained on them, for data tests."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

WORDS = [
    "the",
    "a",
    "proof",
    "integral",
    "sum",
    "of",
    "x",
    "y",
    "=",
    "+",
    "2",
    "3",
    "10",
    "∫",
    "√",
    "数学",
    "÷",
    "émigré",
    "naïve",
    "😀",
    "def",
    "return",
    "if",
    "else",
    "while",
    "print",
    "(",
    ")",
    ":",
    "\n",
    "\t",
]


def random_text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def record(index: int, text: str | None = None, **fields) -> dict:
    """A RECORD_SCHEMA row with only the fields a test cares about."""
    from frontload.curate.schema import RECORD_SCHEMA

    row = dict.fromkeys(RECORD_SCHEMA.names)
    row.update(id=f"r{index}", source="test", domain="math", text=text)
    row.update(fields)
    return row


def write_corpus(workspace, name: str, rows: list[dict], files: int = 1, row_group: int = 50):
    """corpora/<name>/part-*.parquet with RECORD_SCHEMA."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from frontload.curate.schema import RECORD_SCHEMA

    folder = workspace.corpus_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-len(rows) // files)
    for index in range(files):
        chunk = rows[index * per_file : (index + 1) * per_file]
        table = pa.Table.from_pylist(chunk, schema=RECORD_SCHEMA)
        pq.write_table(table, folder / f"part-{index:05d}.parquet", row_group_size=row_group)
    return folder


def text_rows(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    return [record(i, random_text(rng, rng.randint(1, 40))) for i in range(count)]


def chat_rows(seed: int, count: int) -> list[dict]:
    """Half with `messages` (multi-turn), half with only prompt/response."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        prompt, answer = random_text(rng, rng.randint(1, 15)), random_text(rng, rng.randint(1, 30))
        if i % 2:
            messages = [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": "  " + answer},
                {"role": "user", "content": "again?"},
                {"role": "assistant", "content": answer + "\n"},
            ]
            rows.append(record(i, None, messages=messages))
        else:
            rows.append(record(i, None, prompt=prompt, response=answer))
    return rows


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """One tokenizer for the session (training is the slow part)."""
    from frontload.data.tokenizer import train_tokenizer

    rng = random.Random(0)
    texts = [random_text(rng, 60) for _ in range(600)]
    return train_tokenizer(texts, 400, tmp_path_factory.mktemp("tok") / "tokenizer")


@pytest.fixture
def corpus_workspace(workspace, tokenizer_dir):
    """A workspace with the tokenizer and three corpora: two text, one chat."""
    shutil.copytree(tokenizer_dir, workspace.tokenizer_dir)
    write_corpus(workspace, "dldq", text_rows(1, 300), files=2)
    write_corpus(workspace, "general", text_rows(2, 500), files=1)
    write_corpus(workspace, "dshq", chat_rows(3, 120), files=2, row_group=20)
    return workspace
