"""A tiny real workspace for pretraining tests: a trained tokenizer and two token datasets."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

WORDS = [
    "the",
    "a",
    "red",
    "blue",
    "small",
    "big",
    "cat",
    "dog",
    "bird",
    "fish",
    "sees",
    "eats",
    "likes",
    "finds",
    "near",
    "under",
]


def _general_text(rng: random.Random) -> str:
    """Template sentences: learnable structure, many distinct tokens."""
    sentences = []
    for _ in range(rng.randint(3, 8)):
        det, adj, noun = rng.choice(WORDS[:2]), rng.choice(WORDS[2:6]), rng.choice(WORDS[6:10])
        verb, obj = rng.choice(WORDS[10:13]), rng.choice(WORDS[6:10])
        sentences.append(f"{det} {adj} {noun} {verb} the {obj}.")
    return " ".join(sentences)


def _reasoning_text(rng: random.Random) -> str:
    """Small sums with their worked answer."""
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    return f"Question: what is {a} plus {b}? Answer: {a} + {b} = {a + b}. The answer is {a + b}."


def write_token_dataset(folder: Path, docs: list[list[int]], tokenizer, digest: str) -> None:
    """Write documents in the data stage's shard format (frontload.data.shards)."""
    from frontload.data.shards import FORMAT_VERSION, ShardWriter, atomic_write_json, token_dtype

    folder.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(len(tokenizer))
    writer = ShardWriter(folder, "shard-00000", dtype, with_mask=False)
    tokens = np.concatenate([np.asarray(doc, dtype=np.int64) for doc in docs])
    writer.append(tokens, np.asarray([len(doc) for doc in docs]), None)
    meta = writer.close({"tokenizer_hash": digest, "format": FORMAT_VERSION, "source": "test"})
    manifest = {
        "name": folder.name,
        "tokens": meta["tokens"],
        "documents": meta["documents"],
        "dtype": dtype.name,
        "vocab_size": len(tokenizer),
        "eos_id": int(tokenizer.eos_token_id),
        "tokenizer_hash": digest,
        "format": FORMAT_VERSION,
        "shards": [meta],
    }
    atomic_write_json(folder / "manifest.json", manifest)


def build_workspace(root: Path):
    """Tokenizer + tokens/general + tokens/dldq in a fresh workspace."""
    from frontload.data.tokenizer import load_tokenizer, tokenizer_hash, train_tokenizer
    from frontload.workspace import Workspace

    workspace = Workspace.resolve(root).ensure()
    rng = random.Random(0)
    general = [_general_text(rng) for _ in range(400)]
    reasoning = [_reasoning_text(rng) for _ in range(400)]
    train_tokenizer(general + reasoning, 300, workspace.tokenizer_dir)
    tokenizer = load_tokenizer(workspace.tokenizer_dir)
    digest = tokenizer_hash(tokenizer)
    for name, texts in (("general", general), ("dldq", reasoning)):
        docs = [tokenizer.encode(text) + [tokenizer.eos_token_id] for text in texts]
        write_token_dataset(workspace.tokens_dir / name, docs, tokenizer, digest)
    return workspace


@pytest.fixture(scope="session")
def token_workspace_template(tmp_path_factory) -> Path:
    """Built once per session (tokenizer training is the slow part); tests copy it."""
    return build_workspace(tmp_path_factory.mktemp("template") / "ws").root


@pytest.fixture
def token_workspace(token_workspace_template, tmp_path):
    """A private copy of the template workspace (runs write into it)."""
    import shutil

    from frontload.workspace import Workspace

    root = tmp_path / "ws"
    shutil.copytree(token_workspace_template, root)
    return Workspace.resolve(root)


def unigram_entropy(workspace, corpus: str) -> float:
    """Entropy (nats) of the token frequencies of a dataset: what a model without context gets."""
    from frontload.data.shards import TokenDataset

    dataset = TokenDataset.open(workspace.tokens_dir / corpus)
    counts = np.bincount(np.concatenate([np.asarray(t) for t in dataset.tokens]))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


@pytest.fixture
def read_rows():
    from frontload.train.metrics import read_metrics

    return read_metrics


@pytest.fixture(name="unigram_entropy")
def unigram_entropy_fixture():
    return unigram_entropy
