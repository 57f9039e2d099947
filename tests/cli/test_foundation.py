"""The CLI wiring, error mapping, config loader and catalog behave as the other stages rely on."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from frontload.catalog import Catalog
from frontload.cli import app, route_bare_sql
from frontload.config import StrictModel, load_yaml
from frontload.errors import ConfigError, DataError, InputError
from frontload.workspace import Workspace


class Recipe(StrictModel):
    name: str
    threshold: float = 0.5


def test_load_yaml_names_the_mistyped_key(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("name: x\nthreshhold: 0.9\n")
    with pytest.raises(ConfigError, match="threshhold: unknown key"):
        load_yaml(path, Recipe)


def test_load_yaml_reports_line_of_syntax_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\n  - broken: [\n")
    with pytest.raises(InputError, match=r"bad.yaml:\d+"):
        load_yaml(path, Recipe)


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_yaml(tmp_path / "nope.yaml", Recipe)


def test_workspace_resolution_prefers_option_then_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FL_WORKSPACE", str(tmp_path / "env"))
    assert Workspace.resolve().root == (tmp_path / "env").resolve()
    assert Workspace.resolve(tmp_path / "opt").root == (tmp_path / "opt").resolve()


def test_catalog_views_follow_files(workspace):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with Catalog(workspace) as catalog:
        assert "pool" not in catalog.refresh()
    workspace.pool_dir.mkdir(parents=True)
    pq.write_table(
        pa.table({"id": ["a", "b"], "domain": ["math", "code"]}), workspace.pool_dir / "p.parquet"
    )
    with Catalog(workspace) as catalog:
        assert "pool" in catalog.refresh()
        assert catalog.query("SELECT count(*) AS n FROM pool").to_pylist() == [{"n": 2}]


def test_bare_sql_routes_to_query():
    assert route_bare_sql(["fl", "stats", "SELECT 1"]) == ["fl", "stats", "query", "SELECT 1"]
    assert route_bare_sql(["fl", "stats", "summary"]) == ["fl", "stats", "summary"]


def test_stats_query_runs_sql(workspace):
    result = CliRunner().invoke(app, ["stats", "query", "SELECT 41 + 1 AS answer"])
    assert result.exit_code == 0, result.output
    assert "42" in result.output


def test_bad_sql_is_one_line_error_not_traceback(workspace):
    done = subprocess.run(
        [sys.executable, "-m", "frontload.cli", "stats", "SELECT * FROM no_such_view"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "error: SQL failed" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_does_not_import_torch():
    code = "import sys; from frontload.cli import app; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_unreadable_path_is_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = subprocess.run(
        [sys.executable, "-m", "frontload.cli", "stats", "views", "-w", str(blocker / "ws")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr


def write_pool(workspace, ids):
    import pyarrow as pa
    import pyarrow.parquet as pq

    workspace.pool_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": ids}), workspace.pool_dir / "p.parquet")


def test_catalog_opens_from_any_working_folder_in_plain_duckdb(workspace, tmp_path, monkeypatch):
    """The documented way: `duckdb.connect("<workspace>/catalog.duckdb")` from elsewhere."""
    import duckdb

    write_pool(workspace, ["a", "b", "c"])
    with Catalog(workspace) as catalog:
        catalog.refresh()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with duckdb.connect(str(workspace.catalog_path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM pool").fetchone() == (3,)
        assert connection.execute("SELECT root FROM fl_catalog").fetchone() == (
            str(workspace.root),
        )


def test_a_moved_or_copied_workspace_reads_its_own_files(workspace, tmp_path, monkeypatch):
    import shutil

    import duckdb

    write_pool(workspace, ["a", "b", "c"])
    with Catalog(workspace) as catalog:
        catalog.refresh()
    copy = Workspace.resolve(tmp_path / "copy")
    shutil.copytree(workspace.root, copy.root)
    write_pool(copy, ["only-one"])  # the copy's files differ from the original's
    with pytest.raises(DataError, match="views point into"):
        Catalog(copy, read_only=True)  # cannot rebuild: refuses rather than read the original
    with Catalog(copy) as catalog:  # any fl command opens it this way
        assert catalog.built_for() == str(copy.root)
    monkeypatch.chdir(tmp_path)
    with duckdb.connect(str(copy.catalog_path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM pool").fetchone() == (1,)
    with duckdb.connect(str(workspace.catalog_path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM pool").fetchone() == (3,)
