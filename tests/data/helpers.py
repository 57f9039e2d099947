"""Small real corpora (RECORD_SCHEMA parquet) for data tests."""

from __future__ import annotations

import random

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
