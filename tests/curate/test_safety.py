"""Curation never loses the pool to a mistake, reads shared files as data, and is reproducible."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests.curate.helpers import sample_recipe, write_recipe
from tests.fl_cli import run_fl

from frontload.quickstart.sample import generate_sample
from frontload.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[2]


def _digests(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    generate_sample(root, records=200, seed=5)
    return root


def test_wrong_format_keeps_the_previous_pool(sample, tmp_path, capsys, monkeypatch):
    """The user's case: `format: jsonl` on a parquet source after a good run."""
    ws = tmp_path / "ws"
    good = write_recipe(tmp_path / "good.yaml", sample_recipe(sample, tasks=1))
    code, output = run_fl(["curate", "run", str(good), "-w", str(ws)], capsys, monkeypatch)
    assert code == 0, output
    before = _digests(ws / "pool")
    removed_before = _digests(ws / "removed")
    assert before
    recipe = sample_recipe(sample, tasks=1)
    recipe["sources"][2]["format"] = "jsonl"  # the `code` source is a parquet file
    bad = write_recipe(tmp_path / "bad.yaml", recipe)
    code, output = run_fl(["curate", "run", str(bad), "-w", str(ws)], capsys, monkeypatch)
    assert code == 1, output
    assert "source 'code'" in output and "rejected" in output and "not UTF-8" in output
    assert "previous pool is kept" in output and "Traceback" not in output
    assert _digests(ws / "pool") == before and _digests(ws / "removed") == removed_before
    code, output = run_fl(["stats", "summary", "-w", str(ws)], capsys, monkeypatch)
    assert code == 0 and "code" in output, output
    # fixing the recipe publishes the new run; the refused run's folder is cleaned up
    code, output = run_fl(["curate", "run", str(good), "-w", str(ws)], capsys, monkeypatch)
    assert code == 0 and "already complete" in output, output
    assert _digests(ws / "pool") == before


def test_curation_twice_from_nothing_is_byte_identical(tmp_path):
    from frontload.curate.pipeline import run_curation
    from frontload.curate.recipe import load_recipe

    recipe = yaml.safe_load((REPO_ROOT / "recipes" / "tiny" / "curate.yaml").read_text())
    recipe["executor"] = {"tasks": 2, "workers": 1}
    recipe["quality"] = {"bootstrap": {"bucket": 50_000, "dim": 16, "epochs": 20}}
    recipe["length"] = {"vocab_size": 512}
    recipe["corpora"] = {"dshq_min_answer_tokens": 128, "dalf_min_answer_tokens": 256}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    results = []
    for _ in range(2):
        workspace = Workspace.resolve(tmp_path / "ws")
        if workspace.root.exists():
            shutil.rmtree(workspace.root)
        workspace.ensure()
        generate_sample(workspace.root / "sample", records=200, seed=1)
        run_curation(load_recipe(path), workspace)
        manifest = yaml.safe_load((workspace.corpus_dir("dldq") / "manifest.json").read_text())
        model = (workspace.models_dir / "quality.bin").read_bytes()
        results.append(
            (
                _digests(workspace.pool_dir),
                _digests(workspace.corpora_dir),
                hashlib.sha256(model).hexdigest(),
                manifest["quality_model"],
            )
        )
    first, second = results
    assert first[0] and first[1]
    assert first[0] == second[0], "pool differs between two identical runs"
    assert first[1] == second[1], "corpora differ between two identical runs"
    assert first[2] == second[2], "quality model differs between two identical runs"
    assert first[3] == second[3] and first[3]["sha256"] == first[2]


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_decontam_index_is_refused_and_never_runs(sample, tmp_path, capsys, monkeypatch):
    """A shared workspace whose unfinished run carries an index with a pickled payload."""
    from frontload.curate.readers import resolve_sources
    from frontload.curate.recipe import load_recipe
    from frontload.curate.stages import RunFolders, run_id_for

    ws = Workspace.resolve(tmp_path / "ws").ensure()
    path = write_recipe(tmp_path / "recipe.yaml", sample_recipe(sample, tasks=1))
    recipe = load_recipe(path)
    folders = RunFolders(ws, run_id_for(recipe, resolve_sources(recipe.sources, ws.root)))
    folders.root.mkdir(parents=True)
    marker = tmp_path / "pwned"
    hostile = np.array([_Payload(marker)], dtype=object)
    np.savez(folders.index, needed=np.ones(1), names=hostile, whole_h=np.zeros(0), whole_i=hostile)
    code, output = run_fl(["curate", "run", str(path), "-w", str(ws.root)], capsys, monkeypatch)
    assert code == 1, output
    assert "decontam_index.npz: not a plain decontamination index" in output, output
    assert "Traceback" not in output
    assert not marker.exists(), "the payload ran"
    # the plain index written by a real run round-trips without pickles
    from frontload.curate.decontam import DecontamIndex, build_index

    build_index(recipe.decontam, ws.root).save(tmp_path / "plain.npz")
    with np.load(tmp_path / "plain.npz", allow_pickle=False) as data:
        assert data["names"].dtype.kind == "U"
    assert DecontamIndex.load(tmp_path / "plain.npz").names
