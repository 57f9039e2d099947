"""Where each task reads: --task-file, --data-dir, the workspace store, $FL_BENCH_DIR, then the
files shipped with fl -- first match wins, per file."""

from __future__ import annotations

import gzip
import json

import pytest

from frontload import benchdata
from frontload.errors import InputError
from frontload.evaluate.tasks import get_task
from frontload.evaluate.tasks.files import add_benchmark, load_task_records
from frontload.evaluate.tasks.sources import BenchFiles


def gsm8k_file(folder, question, name="gsm8k_test.jsonl"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"question": question, "answer": "so 1\n#### 1"}) + "\n")
    return path


def read(files, task_files=None):
    location, records = load_task_records(get_task("gsm8k"), files, None, task_files)
    return location.label, records[0]["question"]


def test_each_source_wins_over_the_ones_after_it(tmp_path, monkeypatch):
    data_dir, store, env = tmp_path / "data", tmp_path / "ws" / "benchmarks", tmp_path / "env"
    monkeypatch.delenv("FL_BENCH_DIR", raising=False)
    assert read(BenchFiles.for_run(None, store))[0] == "shipped"  # no store folder yet: skipped
    gsm8k_file(env, "from env")
    monkeypatch.setenv("FL_BENCH_DIR", str(env))
    assert read(BenchFiles.for_run(None, store)) == ("$FL_BENCH_DIR", "from env")
    add_benchmark(store, get_task("gsm8k"), gsm8k_file(tmp_path / "src", "from store"))
    assert read(BenchFiles.for_run(None, store)) == ("workspace store", "from store")
    gsm8k_file(data_dir, "from data dir")
    assert read(BenchFiles.for_run(data_dir, store)) == ("--data-dir", "from data dir")
    own = gsm8k_file(tmp_path / "own", "from task file", "mine.jsonl")
    task_files = {"gsm8k": str(own)}
    assert read(BenchFiles.for_run(data_dir, store), task_files) == (
        "--task-file",
        "from task file",
    )


def test_shipped_files_answer_when_nothing_else_does(monkeypatch):
    monkeypatch.delenv("FL_BENCH_DIR", raising=False)
    files = BenchFiles.for_run()
    for name in ("gsm8k", "math500", "aime24", "aime25", "amc23", "humaneval", "mbpp", "mmlu"):
        location, records = load_task_records(get_task(name), files)
        assert location.label == "shipped" and records, name
    assert len(load_task_records(get_task("mmlu_pro"), files)[1]) == 12032
    with pytest.raises(InputError, match="gpqa_diamond.*add-benchmark"):
        load_task_records(get_task("gpqa_diamond"), files)


def test_companion_files_come_from_the_first_folder_that_has_them(tmp_path, monkeypatch):
    """A folder with only GSM8K test draws its 8 shots from the shipped train split."""
    monkeypatch.delenv("FL_BENCH_DIR", raising=False)
    gsm8k_file(tmp_path, "What is 0 + 1?")
    files = BenchFiles.for_run(tmp_path)
    task = get_task("gsm8k")
    _, records = load_task_records(task, files)
    (sample,) = task.build(records, "base", 8, files)
    with benchdata.open_text(benchdata.FOLDER / "gsm8k_train.jsonl.gz") as handle:
        train = [json.loads(line)["question"] for line in handle]
    shown = [q for q in train if q in sample.prompt]
    assert len(shown) == 8 and sample.prompt.count("Question:") == 9


def test_a_users_gzip_file_reads_like_the_plain_one(tmp_path):
    plain = gsm8k_file(tmp_path / "plain", "compressed?")
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "gsm8k_test.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    assert read(BenchFiles.of(tmp_path / "gz"))[1] == "compressed?"


def test_named_folders_that_are_missing_are_errors(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="--data-dir .*not a folder"):
        BenchFiles.for_run(tmp_path / "typo")
    monkeypatch.setenv("FL_BENCH_DIR", str(tmp_path / "nope"))
    with pytest.raises(InputError, match=r"\$FL_BENCH_DIR .*not a folder"):
        BenchFiles.for_run()


def test_a_store_manifest_naming_a_lost_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FL_BENCH_DIR", raising=False)
    store = tmp_path / "benchmarks"
    stored = add_benchmark(store, get_task("gsm8k"), gsm8k_file(tmp_path / "src", "q"))
    stored.unlink()
    with pytest.raises(InputError, match="not there"):
        read(BenchFiles.for_run(None, store))


def test_fl_evaluate_benchmarks_shows_shipped_stored_and_where_each_task_reads(
    workspace, tmp_path, capsys, monkeypatch
):
    from tests.fl_cli import run_fl

    monkeypatch.delenv("FL_BENCH_DIR", raising=False)
    source = gsm8k_file(tmp_path / "src", "mine")
    assert run_fl(["evaluate", "add-benchmark", "gsm8k", str(source)], capsys, monkeypatch)[0] == 0
    code, output = run_fl(["evaluate", "benchmarks"], capsys, monkeypatch)
    assert code == 0, output
    rows = {line.split("│")[1].strip(): line for line in output.splitlines() if line.count("│") > 3}
    assert "shipped:math_test_minus_math500" in rows["math_test_minus_math500"]
    assert "training text" in rows["math_test_minus_math500"]
    assert "workspace store" in rows["gsm8k"] and "gsm8k_test.jsonl" in rows["gsm8k"]
    assert "shipped" in rows["math500"] and "missing" in rows["gpqa_diamond"]
    assert "not shipped: livecodebench" in output and "not shipped: gpqa_diamond" in output
