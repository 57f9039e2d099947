"""The shipped benchmark files are the originals, whole: checksums, record counts, provenance,
a reproducible rebuild, and a wheel that carries them."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from frontload import benchdata
from frontload.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
ALL_FILES = [
    (name, entry) for name, dataset in benchdata.datasets().items() for entry in dataset["files"]
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("name", "entry"), ALL_FILES, ids=[e["path"] for _, e in ALL_FILES])
def test_every_shipped_file_matches_its_manifest_entry(name, entry):
    path = benchdata.FOLDER / entry["path"]
    shipped = path.read_bytes()
    assert sha256(shipped) == entry["sha256"], f"{name}: {path} changed since the manifest"
    assert len(shipped) == entry["bytes"]
    original = shipped if entry["original"].endswith(".gz") else gzip.decompress(shipped)
    assert sha256(original) == entry["original_sha256"], f"{name}: not the original's content"
    assert len(original) == entry["original_bytes"]
    assert benchdata.count_records(path) == entry["records"]


def test_manifest_lists_every_shipped_file_and_its_provenance():
    on_disk = {p.relative_to(benchdata.FOLDER).as_posix() for p in benchdata.FOLDER.rglob("*.gz")}
    assert on_disk == {entry["path"] for _, entry in ALL_FILES}
    for name, dataset in benchdata.datasets().items():
        assert dataset["source"] and dataset["license"] and dataset["kind"], name
        assert dataset["records"] == sum(f["records"] for f in dataset["files"])
    assert {"gpqa_diamond", "livecodebench"} <= set(benchdata.manifest()["left_out"])
    assert benchdata.datasets()["math_test_minus_math500"]["kind"].startswith("training text")
    assert (benchdata.PACKAGE / "LICENSES.md").is_file()


def test_published_record_counts():
    counts = {name: dataset["records"] for name, dataset in benchdata.datasets().items()}
    assert counts["gsm8k_test"] == 1319 and counts["gsm8k_train"] == 7473
    assert counts["math500_test"] == 500 and counts["math_test_minus_math500"] == 4500
    assert counts["humaneval"] == 164 and counts["mbpp"] == 427
    assert counts["mmlu_test"] == 14042 and counts["mmlu_dev"] == 285
    assert counts["mmlu_pro_test"] == 12032 and counts["aime24"] == counts["aime25"] == 30


def test_shipped_references_resolve_and_unknown_names_list_the_known():
    assert benchdata.expand_shipped("shipped:gsm8k_train").endswith("gsm8k_train.jsonl.gz")
    assert Path(benchdata.expand_shipped("shipped:gsm8k_train")).is_file()
    assert benchdata.expand_shipped("shipped:mmlu_test").endswith("mmlu/test/*_test.csv.gz")
    assert benchdata.expand_shipped("data/x.jsonl") == "data/x.jsonl"
    with pytest.raises(ConfigError, match="gsm8k_test"):
        benchdata.expand_shipped("shipped:gsm8k")


def load_script():
    spec = importlib.util.spec_from_file_location(
        "build_benchdata", REPO / "scripts" / "build_benchdata.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rebuild_from_the_originals_gives_the_same_bytes(tmp_path):
    """The script that made the package data rebuilds it bit for bit (small datasets, for time)."""
    script = load_script()
    names = ["aime24", "amc23", "humaneval", "mmlu_dev"]
    originals = tmp_path / "originals"
    for name in names:
        for entry in benchdata.datasets()[name]["files"]:
            data = (benchdata.FOLDER / entry["path"]).read_bytes()
            target = originals / entry["original"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data if entry["original"].endswith(".gz") else gzip.decompress(data))
    rebuilt = script.build(originals, tmp_path / "out", {n: script.SOURCES[n] for n in names})
    for name in names:
        assert rebuilt["datasets"][name] == benchdata.datasets()[name]


def test_a_built_wheel_carries_the_benchmark_files(tmp_path):
    """A non-editable install gets the files: package-data in pyproject.toml covers them."""
    source = tmp_path / "src-copy"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "wheel"),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "wheel").glob("frontload-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for _, entry in ALL_FILES:
        assert f"frontload/benchdata/files/{entry['path']}" in names
    assert {"frontload/benchdata/manifest.json", "frontload/benchdata/LICENSES.md"} <= names
