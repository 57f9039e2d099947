"""The sample generator: deterministic, scalable, and as messy as promised."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from frontload import benchdata
from frontload.cli import app
from frontload.errors import ConfigError
from frontload.quickstart.sample import generate_sample


def test_sample_is_deterministic_and_messy(tmp_path):
    first = generate_sample(tmp_path / "a", records=400, seed=1)
    second = generate_sample(tmp_path / "b", records=400, seed=1)
    assert first == second
    assert (tmp_path / "a" / "math_qa.jsonl").read_bytes() == (
        tmp_path / "b" / "math_qa.jsonl"
    ).read_bytes()
    injected = first["injected"]
    assert injected["exact"] and injected["near"] and injected["numbers"] and injected["bench"]
    assert {item["edit"] for item in injected["bench"]} == {"verbatim", "light"}
    lines = (tmp_path / "a" / "math_qa.jsonl").read_bytes().splitlines()
    broken = 0
    for line in lines:
        try:
            json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            broken += 1
    assert broken >= 2
    with gzip.open(tmp_path / "a" / "math_long_cot.jsonl.gz", "rt") as handle:
        solutions = [json.loads(line)["solution"] for line in handle]
    words = sorted(len(s.split()) for s in solutions)
    assert words[0] < 300 and words[-1] > 3500  # short and very long chains of thought
    assert pq.read_table(tmp_path / "a" / "code.parquet").column_names == ["prompt", "response"]


def test_number_variants_differ_only_in_numbers(tmp_path):
    manifest = generate_sample(tmp_path, records=300, seed=2)
    for first, second in manifest["injected"]["numbers"]:
        strip = lambda text: "".join(c for c in text if not c.isdigit())  # noqa: E731
        assert first != second and strip(first) == strip(second)


def test_cli_scales_with_records(tmp_path):
    out = tmp_path / "big"
    result = CliRunner().invoke(
        app, ["quickstart", "sample", "--out", str(out), "--records", "3000", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"] >= 3000 and "benchmark leaks" in result.output


def test_copies_real_benchmark_questions_when_available(tmp_path):
    manifest = generate_sample(tmp_path, records=200, bench_dir=benchdata.FOLDER)
    with benchdata.open_text(Path(benchdata.shipped_path("gsm8k_test"))) as handle:
        test_questions = {json.loads(line)["question"] for line in handle}
    leaked = [item["text"] for item in manifest["injected"]["bench"]]
    assert sum(text in test_questions for text in leaked) == 3


def test_bad_bench_or_out_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no gsm8k_test.jsonl"):
        generate_sample(tmp_path / "s", records=100, bench_dir=tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot create the sample folder"):
        generate_sample(blocker, records=100)
