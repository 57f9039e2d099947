"""`fl tokenizer` and `fl data` end to end on a small workspace, plus their error messages."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from .helpers import text_rows, write_corpus

runner = CliRunner()


def fl(*args: str):
    from frontload.cli import app

    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_tokenize_inspect_blend(corpus_workspace):
    ws = corpus_workspace
    out = ws.root / "tok2"
    assert "tokenizer:" in fl(
        "tokenizer",
        "train",
        "-c",
        "dldq",
        "-c",
        "general",
        "--vocab-size",
        "350",
        "--out",
        str(out),
    )
    info = json.loads(fl("tokenizer", "info", str(out), "--corpus", "general", "--json"))
    assert info["special_tokens"]["eos"] == "<|eos|>" and info["generation_markers"]
    assert info["compression"]["bytes_per_token"] > 1.5  # merges were learned
    assert "dldq:" in fl("data", "tokenize", "--corpus", "dldq")  # workspace tokenizer by default
    fl(
        "data",
        "tokenize",
        "--corpus",
        "dshq",
        "--field",
        "messages",
        "--workers",
        "2",
        "--rows-per-shard",
        "20",
    )
    assert "all shards valid" in fl("data", "info", "dshq")
    exported = json.loads(fl("data", "blend-export", "-s", "dldq=1", "-s", "dshq=3"))
    assert [s["token_weight"] for s in exported["sources"]] == [0.25, 0.75]

    from frontload.data.blend import IGNORE_INDEX, Blend, BlendSource
    from frontload.data.tokenizer import load_tokenizer, tokenizer_hash

    digest = tokenizer_hash(load_tokenizer(ws.tokenizer_dir))
    sources = [
        BlendSource(ws.tokens_dir / "dldq", weight=1),
        BlendSource(ws.tokens_dir / "dshq", weight=1),
    ]
    batch = Blend(sources, 64, expected_tokenizer_hash=digest).next_batch(8)
    masked_rows = (batch["labels"] == IGNORE_INDEX).any(axis=1)
    assert 0 < masked_rows.sum() < 8  # chat rows hide prompts, text rows train on everything


def test_plan_blend_export(corpus_workspace):
    ws = corpus_workspace
    write_corpus(ws, "dalf_plus", [{**r, "text": None} for r in text_rows(0, 5)])
    out = fl("data", "tokenize")  # every corpus; an empty one is skipped, not fatal
    assert all(f"{name}:" in out for name in ("dldq", "dshq", "general"))
    assert "dalf_plus: skipped" in out
    assert "dshq-chat:" in fl(
        "data", "tokenize", "-c", "dshq", "--field", "messages", "--name", "dshq-chat"
    )
    ws.plans_dir.mkdir(parents=True)
    plan = {
        "name": "p",
        "phases": [
            {
                "name": "pretrain",
                "budget_tokens": 1000,
                "general_corpus": "general",
                "general_tokens": 800,
                "entries": [{"corpus": "dldq", "tokens": 200, "epochs": 1, "weight": 0.2}],
            }
        ],
    }
    (ws.plans_dir / "p.json").write_text(json.dumps(plan))
    exported = json.loads(fl("data", "blend-export", "--plan", "p"))
    assert [s["name"] for s in exported["sources"]] == ["dldq", "general"]
    assert np.allclose([s["token_weight"] for s in exported["sources"]], [0.2, 0.8])


def test_user_errors_are_one_line(corpus_workspace, monkeypatch, capsys):
    from frontload.cli import main

    for argv, message in (
        (["tokenizer", "train", "-c", "dldq", "--vocab-size", "100"], "too small"),
        (["data", "tokenize", "--corpus", "missing"], "no part-*.parquet"),
        (["data", "blend-export", "-s", "dldq=-1"], ">= 0"),
        (["data", "info", "dldq"], "fl data tokenize"),
    ):
        monkeypatch.setattr(sys, "argv", ["fl", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and "Traceback" not in err


def test_empty_corpus_via_cli(corpus_workspace):
    from frontload.cli import app
    from frontload.errors import DataError

    write_corpus(corpus_workspace, "empty", [{**r, "text": None} for r in text_rows(0, 5)])
    result = runner.invoke(app, ["data", "tokenize", "--corpus", "empty"])
    assert isinstance(result.exception, DataError)
