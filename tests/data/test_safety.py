"""`fl data tokenize` on a corpus with a truncated part file: one error naming it."""

from __future__ import annotations

from tests.fl_cli import run_fl


def test_truncated_corpus_file_is_one_clear_error(corpus_workspace, capsys, monkeypatch):
    bad = sorted(corpus_workspace.corpus_dir("dldq").glob("*.parquet"))[0]
    bad.write_bytes(bad.read_bytes()[:100])
    code, output = run_fl(
        ["data", "tokenize", "-w", str(corpus_workspace.root)], capsys, monkeypatch
    )
    assert code == 1, output
    assert f"error: {bad}: not a whole parquet file" in output
    assert "fl curate corpora" in output and "Traceback" not in output


def test_damaged_other_corpus_is_a_warning_after_tokenizing(corpus_workspace, capsys, monkeypatch):
    """Tokenizing one corpus succeeds (exit 0) even if another corpus's file is damaged."""
    bad = sorted(corpus_workspace.corpus_dir("dldq").glob("*.parquet"))[0]
    bad.write_bytes(bad.read_bytes()[:100])
    args = ["data", "tokenize", "-c", "general", "-w", str(corpus_workspace.root)]
    code, output = run_fl(args, capsys, monkeypatch)
    assert code == 0, output
    assert (corpus_workspace.tokens_dir / "general" / "manifest.json").is_file()
    assert f"warning: skipped {bad}" in output and "Traceback" not in output
