"""The record schema of the pool and the corpora (design.md section 3), as one pyarrow schema."""

from __future__ import annotations

import pyarrow as pa

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

RECORD_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # stable hash of source + content
        pa.field("source", pa.string(), nullable=False),  # source name from the recipe
        pa.field("domain", pa.string(), nullable=False),  # math / code / science / general
        pa.field("tags", pa.list_(pa.string())),  # the source's tags (diverse, curated, general)
        pa.field("prompt", pa.string()),  # question / instruction ("" for plain text)
        pa.field("response", pa.string()),  # final answer ("" for plain text)
        pa.field("reasoning", pa.string()),  # reasoning trace (a `<think>` block), null if none
        pa.field("reference", pa.string()),  # reference final answer from the source, if any
        pa.field("text", pa.string()),  # what pretraining sees
        pa.field("messages", pa.list_(MESSAGE)),  # chat form, when the source is chat
        pa.field("quality", pa.float32()),  # fastText P(high quality), 0..1
        pa.field("answer_tokens", pa.int32()),  # tokens in `reasoning` + `response`
        pa.field("reasoning_tokens", pa.int32()),  # of which in `reasoning`
        pa.field("total_tokens", pa.int32()),  # tokens in `text`
        pa.field("dup_cluster", pa.string()),  # MinHash cluster id (null if unique)
        pa.field("contaminated", pa.list_(pa.string())),  # benchmarks sharing its n-grams
        pa.field("verified", pa.bool_()),  # answer checked against `reference` (null: no reference)
        pa.field("meta", pa.string()),  # JSON: the source's id, kept fields, generation index
    ]
)

COLUMNS: tuple[str, ...] = tuple(RECORD_SCHEMA.names)
