"""A toy arithmetic chat task, a tiny tokenizer and a tiny model saved as an HF folder."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from frontload.curate.schema import RECORD_SCHEMA


def arithmetic(n: int, seed: int, high: int = 9) -> list[tuple[str, str, str]]:
    """(prompt, response, reference) triples: sums of two numbers in 0..high."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(0, high), rng.randint(0, high)
        rows.append((f"What is {a}+{b}?", f"{a}+{b}={a + b}. The answer is {a + b}.", str(a + b)))
    return rows


def write_corpus(folder: Path, rows: list[tuple[str, str, str]], domain: str = "math") -> None:
    """Rows as a corpus part in the record schema."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "id": f"r{i}",
            "source": "toy",
            "domain": domain,
            "tags": ["curated"],
            "prompt": p,
            "response": r,
            "reference": ref,
            "text": f"{p}\n{r}",
            "messages": None,
            "quality": 0.9,
            "answer_tokens": len(r.split()),
            "total_tokens": len(p.split()) + len(r.split()),
            "dup_cluster": None,
            "contaminated": [],
            "verified": True,
        }
        for i, (p, r, ref) in enumerate(rows)
    ]
    pq.write_table(
        pa.Table.from_pylist(records, schema=RECORD_SCHEMA), folder / "part-00000.parquet"
    )


def build_tokenizer(out_dir: Path, texts: list[str]):
    """The workspace tokenizer (byte-level BPE with the generation-marked chat template)."""
    from frontload.data.tokenizer import load_tokenizer, train_tokenizer

    return load_tokenizer(train_tokenizer(texts, vocab_size=320, out_dir=out_dir))


def build_model(out_dir: Path, vocab_size: int, seed: int = 0):
    """Our hybrid model at the tiny preset (Mamba-2, attention, FFN), saved as an HF folder."""
    import torch

    from frontload.model import HybridForCausalLM, preset

    torch.manual_seed(seed)
    model = HybridForCausalLM(preset("tiny", vocab_size=vocab_size, hidden_size=48))
    model.save_pretrained(str(out_dir))
    return model


@pytest.fixture
def toy_workspace(workspace):
    """Workspace with corpora `dshq` (arithmetic), a tokenizer, and a base model at runs/base/hf."""
    rows = arithmetic(400, seed=1)
    write_corpus(workspace.corpus_dir("dshq"), rows)
    texts = [f"{p} {r}" for p, r, _ in rows] * 3
    tokenizer = build_tokenizer(workspace.tokenizer_dir, texts)
    hf = workspace.runs_dir / "base" / "hf"
    build_model(hf, len(tokenizer))
    tokenizer.save_pretrained(str(hf))
    return workspace


@pytest.fixture
def tiny_model_factory():
    """build_model(out_dir, vocab_size) for tests that need a second model."""
    return build_model
