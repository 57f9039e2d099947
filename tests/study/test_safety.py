"""`fl run` in a workspace that holds another pipeline's results, and the study's vocab size."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
from tests.fl_cli import run_fl

from frontload.data.tokenizer import load_tokenizer, train_tokenizer, training_record
from frontload.study.pipeline import Study

PIPELINE = "name: mine\ncurate: curate.yaml\narms: []\n"


def test_run_refuses_a_workspace_in_use_unless_forced(workspace, tmp_path, capsys, monkeypatch):
    """The user's case: a hand-curated workspace, then `fl run` of a pipeline into it."""
    workspace.pool_dir.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"]}), workspace.pool_dir / "00000.parquet")
    (workspace.root / "pipeline" / "theirs").mkdir(parents=True)
    (workspace.runs_dir / "theirs_run").mkdir(parents=True)
    path = tmp_path / "study.yaml"
    path.write_text(PIPELINE)
    (tmp_path / "curate.yaml").write_text("name: c\nsources: []\n")
    code, output = run_fl(["run", str(path), "-w", str(workspace.root)], capsys, monkeypatch)
    assert code == 1, output
    assert "holds results that pipeline 'mine' would replace" in output
    assert "pipeline 'theirs'" in output and "pool/" in output and "1 training runs" in output
    assert "--force" in output and "Traceback" not in output
    assert (workspace.pool_dir / "00000.parquet").is_file()  # nothing was touched
    # with --force the guard lets it through (the run then fails later on the empty recipe)
    code, output = run_fl(
        ["run", str(path), "-w", str(workspace.root), "--force"], capsys, monkeypatch
    )
    assert "would replace" not in output
    # the pipeline's own workspace (state.json present) resumes without --force
    (workspace.root / "pipeline" / "mine").mkdir(parents=True, exist_ok=True)
    (workspace.root / "pipeline" / "mine" / "state.json").write_text(json.dumps({}))
    code, output = run_fl(["run", str(path), "-w", str(workspace.root)], capsys, monkeypatch)
    assert "would replace" not in output


def test_study_vocab_size_replaces_the_curation_tokenizer(workspace):
    rng = random.Random(0)
    words = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choice(words) for _ in range(40)) for _ in range(400)]
    train_tokenizer(texts, 300, workspace.tokenizer_dir)  # what curation left behind
    corpus = workspace.corpus_dir("dldq")
    corpus.mkdir(parents=True)
    pq.write_table(pa.table({"text": texts}), corpus / "part-00000.parquet")
    config = SimpleNamespace(tokenizer=SimpleNamespace(vocab_size=600, corpora=["dldq"]))
    study = SimpleNamespace(ws=workspace, config=config)
    Study._tokenizer(study, False)
    assert training_record(workspace.tokenizer_dir)["vocab_size_asked"] == 600
    assert len(load_tokenizer(workspace.tokenizer_dir)) == 600
    before = (workspace.tokenizer_dir / "tokenizer.json").read_bytes()
    Study._tokenizer(study, False)  # same size asked: kept as is
    assert (workspace.tokenizer_dir / "tokenizer.json").read_bytes() == before


def test_tokenizer_says_when_it_falls_short(workspace, capsys, monkeypatch, tmp_path):
    corpus = workspace.corpus_dir("tiny")
    corpus.mkdir(parents=True)
    pq.write_table(pa.table({"text": ["a small text, said twice"] * 20}), corpus / "part-0.parquet")
    out = tmp_path / "tok"
    code, output = run_fl(
        ["tokenizer", "train", "-c", "tiny", "--vocab-size", "4096", "--out", str(out),
         "-w", str(workspace.root)],
        capsys,
        monkeypatch,
    )  # fmt: skip
    assert code == 0, output
    got = len(load_tokenizer(out))
    assert got < 4096
    assert f"{got} tokens, not the 4096 asked" in output, output
