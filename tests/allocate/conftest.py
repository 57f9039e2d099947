"""A small workspace with overlapping corpora (dlmq = dldq + dshq, dalf inside dldq)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from frontload.curate.schema import RECORD_SCHEMA


def _record(i: int, kind: str) -> dict:
    long = kind == "shq" or (kind == "ldq" and i % 5 == 0)
    answer = 5000 if long else 200
    return {
        "id": f"{kind}-{i}",
        "source": kind,
        "domain": ("math", "code", "science")[i % 3],
        "tags": ["curated" if kind == "shq" else "diverse"],
        "prompt": "q",
        "response": "a",
        "reference": None,
        "text": "q a",
        "messages": None,
        "quality": 0.9 if kind == "shq" else 0.4,
        "answer_tokens": answer,
        "total_tokens": answer + 50,
        "dup_cluster": None,
        "contaminated": [],
        "verified": None,
    }


def write_corpus(root, name: str, records: list[dict]) -> None:
    folder = root / "corpora" / name
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records, schema=RECORD_SCHEMA), folder / "part-0.parquet")
    tokens = sum(r["total_tokens"] for r in records)
    manifest = {"name": name, "records": len(records), "tokens": tokens}
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def corpora_workspace(workspace):
    ldq = [_record(i, "ldq") for i in range(60)]
    shq = [_record(i, "shq") for i in range(8)]
    write_corpus(workspace.root, "dldq", ldq)
    write_corpus(workspace.root, "dshq", shq)
    write_corpus(workspace.root, "dlmq", ldq + shq)
    write_corpus(workspace.root, "dalf", [r for r in ldq if r["answer_tokens"] > 4096])
    return workspace
