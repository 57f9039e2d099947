"""A truncated or foreign file in the workspace is one error naming it, from every command; the
catalog reads the workspace it sits in, even after the folder was copied."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
from tests.fl_cli import run_fl


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_truncated_pool_file_is_one_clear_error_everywhere(workspace, pool, capsys, monkeypatch):
    ws = str(workspace.root)
    bad = sorted(workspace.pool_dir.glob("*.parquet"))[-1]
    _truncate(bad)
    for command in (
        ["stats", "summary"],
        ["stats", "views"],
        ["stats", "query", "SELECT count(*) FROM pool"],
        ["stats", "SELECT 1"],
        ["curate", "corpora"],
    ):
        code, output = run_fl([*command, "-w", ws], capsys, monkeypatch)
        assert code == 1, (command, output)
        assert f"error: {bad}: not a whole parquet file" in output, (command, output)
        assert "fl curate run" in output and "Traceback" not in output, (command, output)
    code, output = run_fl(["stats", "rebuild", "-w", ws], capsys, monkeypatch)
    assert code == 0, output
    assert f"warning: skipped {bad}" in output and "views: pool" in output
    # a foreign file (here: JSON named .parquet) is named the same way
    bad.write_text('{"not": "parquet"}')
    code, output = run_fl(["stats", "views", "-w", ws], capsys, monkeypatch)
    assert code == 1 and str(bad) in output and "Traceback" not in output


def test_copied_workspace_reads_its_own_data(workspace, pool, tmp_path, capsys, monkeypatch):
    code, output = run_fl(["stats", "views", "-w", str(workspace.root)], capsys, monkeypatch)
    assert code == 0, output
    copy = tmp_path / "copy"
    shutil.copytree(workspace.root, copy)
    for path in sorted((copy / "pool").glob("*.parquet")):  # the copy's pool differs: one row
        table = pq.read_table(path)
        pq.write_table(table.slice(0, 1), path)
    shutil.rmtree(workspace.root)  # the original is gone: a stale absolute path would fail
    import duckdb

    code, output = run_fl(
        ["stats", "query", "SELECT count(*) AS n FROM pool", "-w", str(copy)], capsys, monkeypatch
    )
    assert code == 0, output
    connection = duckdb.connect(str(copy / "catalog.duckdb"))  # fl rebuilt the views for the copy
    sql = connection.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'pool'").fetchone()[
        0
    ]
    connection.close()
    assert str(workspace.root) not in sql and str(copy.resolve()) in sql, sql
    assert " 2 " in output  # one row per part file of the copy
    from frontload.catalog import Catalog
    from frontload.workspace import Workspace

    with Catalog(Workspace.resolve(copy), read_only=True) as catalog:  # no refresh at all
        assert catalog.query("SELECT count(*) AS n FROM pool").to_pylist() == [{"n": 2}]


def test_truncated_manifest_is_one_clear_error(workspace, pool, capsys, monkeypatch):
    ws = str(workspace.root)
    code, output = run_fl(["curate", "corpora", "-w", ws], capsys, monkeypatch)
    assert code == 0, output
    manifest = workspace.corpus_dir("dldq") / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    for command in (["stats", "compare", "dldq", "dshq"], ["stats", "views"]):
        code, output = run_fl([*command, "-w", ws], capsys, monkeypatch)
        assert code == 1, (command, output)
        assert f"error: {manifest}: not valid JSON" in output and "fl curate corpora" in output
        assert "Traceback" not in output


def test_raw_dump_copied_into_pool_is_named_not_merged(workspace, pool, capsys, monkeypatch):
    """A whole parquet without curated columns would be folded into the pool view with nulls."""
    import pyarrow as pa

    ws = str(workspace.root)
    foreign = workspace.pool_dir / "99999.parquet"
    pq.write_table(pa.table({"prompt": ["p"], "response": ["r"]}), foreign)
    for command in (["stats", "summary"], ["curate", "corpora"]):
        code, output = run_fl([*command, "-w", ws], capsys, monkeypatch)
        assert code == 1, (command, output)
        assert f"error: {foreign}: not curated records (no `id` column" in output, output
        assert "Traceback" not in output
    code, output = run_fl(["stats", "rebuild", "-w", ws], capsys, monkeypatch)
    assert code == 0 and f"warning: skipped {foreign}" in output, output
