"""Fixtures: one tokenizer trained per session, and a workspace with small real corpora."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from .helpers import chat_rows, random_text, text_rows, write_corpus


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
