"""Benchmark files in the layouts harnesses ship, task files with field mappings, the workspace store."""

import json

import pytest
from tests.evaluate.helpers import build
from typer.testing import CliRunner

from frontload.errors import ConfigError, InputError
from frontload.evaluate.tasks import get_task
from frontload.evaluate.tasks.files import add_benchmark, load_task_records, parse_fields
from frontload.evaluate.tasks.sources import BenchFiles, store_folder


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_task_file_with_a_field_mapping(tmp_path):
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [{"meta": {"q": "Tom has 2 apples and buys 3."}, "sol": "2+3=5\n#### 5"}],
    )
    fields = parse_fields(["gsm8k.question=meta.q", "gsm8k.answer=sol"])
    task = get_task("gsm8k")
    location, records = load_task_records(task, BenchFiles.of(), None, {"gsm8k": str(path)}, fields)
    assert location.path == str(path.resolve()) and location.label == "--task-file"
    sample = task.build(records, "chat", 0, None)[0]
    assert sample.reference == "5" and "Tom has 2 apples" in sample.prompt
    assert task.grade([sample], ["so \\boxed{5}"])[0].correct
    with pytest.raises(InputError, match=r"record 1 has no field 'solution'"):
        load_task_records(
            task, BenchFiles.of(), None, {"gsm8k": str(path)}, {"gsm8k": {"answer": "solution"}}
        )
    with pytest.raises(ConfigError, match="TASK.FIELD=SOURCE"):
        parse_fields(["question=prompt"])


def test_add_benchmark_stores_the_file_in_the_workspace(workspace, tmp_path, monkeypatch):
    from frontload.cli import app

    monkeypatch.delenv("FL_BENCH_DIR", raising=False)
    store = store_folder(workspace.root)
    assert not store.exists()
    source = write_jsonl(
        tmp_path / "math_minerva.jsonl", [{"question": "What is 1/2 + 1/4?", "ans": "3/4"}]
    )
    result = CliRunner().invoke(
        app, ["evaluate", "add-benchmark", "minerva_math", str(source), "--field", "answer=ans"]
    )
    assert result.exit_code == 0, result.output
    assert (store / "minerva_math.jsonl").is_file()
    manifest = json.loads((store / "tasks.json").read_text())
    assert manifest["minerva_math"]["fields"] == {"answer": "ans"}
    task = get_task("minerva_math")
    files = BenchFiles.for_run(store=store)
    location, records = load_task_records(task, files)
    assert location.label == "workspace store" and location.fields == {"answer": "ans"}
    sample = task.build(records, "chat", None, files)[0]
    assert sample.reference == "3/4"
    assert task.grade([sample], ["\\boxed{\\frac{3}{4}}"])[0].correct
    missing = CliRunner().invoke(app, ["evaluate", "add-benchmark", "gsm8k", "nope.jsonl"])
    assert isinstance(missing.exception, InputError) and "not found" in str(missing.exception)


def test_math_with_only_a_solution_uses_its_last_box():
    task = get_task("math")
    records = [
        {
            "problem": "Find x.",
            "solution": "First $\\boxed{2}$ is wrong; so $x=\\boxed{\\frac{1}{2}}$.",
        }
    ]
    sample = task.build(records, "chat", None, None)[0]
    assert sample.reference == "\\frac{1}{2}"
    with pytest.raises(InputError, match=r"no answer field and no \\boxed"):
        task.build([{"problem": "p", "solution": "no box"}], "chat", None, None)


def test_olympiadbench_several_answers_and_tolerance():
    task = get_task("olympiadbench")
    records = [
        {
            "id": 1,
            "question": "Find all x with x^2 = 4.",
            "final_answer": ["$2$, $-2$"],
            "is_multiple_answer": True,
            "error": None,
        },
        {"id": 2, "question": "Estimate g.", "final_answer": ["9.8"], "error": "0.1"},
    ]
    samples = task.build(records, "chat", None, None)
    assert samples[0].reference == ["2", "-2"] and "several answers" in samples[0].prompt
    graded = task.grade(
        samples * 2,
        ["\\boxed{-2, 2}", "\\boxed{9.75}", "\\boxed{2}", "\\boxed{9.6}"],
    )
    assert [g.correct for g in graded] == [True, True, False, False]


def test_gpqa_with_inline_options_is_shuffled_with_a_fixed_seed():
    task = get_task("gpqa_diamond")
    question = "Which is a noble gas?\n(A) Neon\n(B) Iron\n(C) Carbon\n(D) Sodium"
    records = [{"question": question, "answer": "A"}, {"problem": question, "answer": "Neon"}]
    first, second = task.build(records, "chat", 0, None)
    assert first.prompt == second.prompt  # same seed, same order
    options = [
        line[3:] for line in first.prompt.splitlines() if line[:3] in ("A. ", "B. ", "C. ", "D. ")
    ]
    assert sorted(options) == ["Carbon", "Iron", "Neon", "Sodium"]
    assert options["ABCD".index(first.reference)] == "Neon"
    assert task.grade([first], [f"The answer is ({first.reference})"])[0].correct
    with pytest.raises(InputError, match="no inline options"):
        task.build([{"question": "No options here", "answer": "A"}], "chat", 0, None)


def evalplus_rows():
    """Two problems in evalplus's HumanEval+ layout (a hand-written fixture)."""
    return [
        {
            "task_id": "HumanEval/0",
            "prompt": 'def halve(x: float) -> float:\n    """Half of x."""\n',
            "canonical_solution": "    return x / 2\n",
            "entry_point": "halve",
            "base_input": [[1.0], [3.0]],
            "plus_input": [[1e-9], [7.5]],
            "atol": 1e-6,
        },
        {
            "task_id": "HumanEval/1",
            "prompt": 'def count_up(n: int) -> list:\n    """[0, ..., n-1]."""\n',
            "canonical_solution": "    return list(range(n))\n",
            "entry_point": "count_up",
            "base_input": [[0], [3]],
            "plus_input": [[50]],
            "atol": 0,
        },
    ]


def test_evalplus_base_and_plus_inputs_with_atol(tmp_path):
    path = write_jsonl(tmp_path / "HumanEvalPlus.jsonl", evalplus_rows())
    task = get_task("humaneval_plus")
    samples = build(task, tmp_path, "base", None)
    assert samples[0].meta["inputs"] == [[1.0], [3.0], [1e-9], [7.5]] and path.exists()
    references = [r["canonical_solution"] for r in evalplus_rows()]
    assert all(g.correct for g in task.grade(samples, references))
    wrong_plus = "    return x / 2 if x > 1e-6 else 1.0\n"  # right on base, wrong on plus
    close = "    return x / 2 + 1e-8\n"  # within atol
    slow = "    import time\n    time.sleep(0.2 if n < 10 else 30)\n    return list(range(n))\n"
    graded = task.grade([samples[0], samples[0], samples[1]], [wrong_plus, close, slow])
    assert graded[0].verdict == "failed" and "input 2" in graded[0].detail
    assert graded[1].correct
    assert graded[2].verdict == "timeout" and "input 2" in graded[2].detail


def test_mbpp_plus_reference_outputs_come_from_the_canonical_solution(tmp_path):
    rows = [
        {
            "task_id": "Mbpp/2",
            "prompt": '"""\nWrite a function to find the shared elements.\n'
            'assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n"""\n',
            "canonical_solution": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
            "entry_point": "similar_elements",
            "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]]],
            "plus_input": [[[1, 2], [3]]],
            "atol": 0,
        }
    ]
    write_jsonl(tmp_path / "MbppPlus.jsonl", rows)
    task = get_task("mbpp_plus")
    samples = build(task, tmp_path, "chat", None)
    right = "```python\ndef similar_elements(a, b):\n    return tuple(set(a) & set(b))\n```"
    wrong = "```python\ndef similar_elements(a, b):\n    return tuple(a)\n```"
    assert [g.correct for g in task.grade(samples * 2, [right, wrong])] == [True, False]


def test_sandbox_limits_are_configurable_per_task():
    from frontload.evaluate.tasks.files import apply_limits, parse_limits

    limits = parse_limits(["mbpp.timeout_s=30", "mbpp.memory_mb=4096", "mbpp_plus.memory_mb=8192"])
    assert limits == {
        "mbpp": {"timeout_s": 30.0, "memory_mb": 4096.0},
        "mbpp_plus": {"memory_mb": 8192.0},
    }
    mbpp, plus = get_task("mbpp"), get_task("mbpp_plus")
    apply_limits(mbpp, limits["mbpp"])
    apply_limits(plus, limits["mbpp_plus"])
    assert (mbpp.limits.timeout_s, mbpp.limits.memory_mb) == (30.0, 4096)
    assert plus.candidate_limits.memory_mb == plus.reference_limits.memory_mb == 8192
    assert get_task("mbpp").limits.timeout_s == 60.0  # other instances keep the default
    with pytest.raises(ConfigError, match="TASK.LIMIT=VALUE"):
        parse_limits(["mbpp.speed=3"])
    with pytest.raises(ConfigError, match="runs no code"):
        apply_limits(get_task("gsm8k"), {"timeout_s": 3.0})


def test_score_reads_a_task_file_with_fields_through_the_cli(workspace, tmp_path):
    from frontload.cli import app

    data = write_jsonl(tmp_path / "q.jsonl", [{"id": "a", "q": "2+3?", "sol": "#### 5"}])
    predictions = write_jsonl(
        tmp_path / "p.jsonl",
        [{"problem": "0", "completion": "The answer is 5."}],
    )
    args = ["evaluate", "score", "--task", "gsm8k", "--predictions", str(predictions)]
    args += ["--task-file", f"gsm8k={data}", "--field", "gsm8k.question=q"]
    args += ["--field", "gsm8k.answer=sol", "--out", str(tmp_path / "graded.parquet")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "graded.parquet").to_pylist()
    assert [(r["answer"], r["verdict"]) for r in rows] == [("5", "passed")]


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


HUB_ROWS = [
    {"question": "1+1?", "answer": "so 2\n#### 2"},
    {"question": "2+2?", "answer": "so 4\n#### 4"},
]


def test_add_benchmark_hf_reads_a_parquet_file_url_through_datasets(tmp_path):
    """`hf:DATASET[:SPLIT]` goes through `datasets.load_dataset`; a file:// URL is read offline."""
    parquet = write_parquet(tmp_path / "dl" / "gsm8k-test.parquet", HUB_ROWS)
    store = tmp_path / "store"
    stored = add_benchmark(store, get_task("gsm8k"), f"hf:{parquet.as_uri()}:test")
    assert stored.name == "gsm8k_test.jsonl"
    assert [json.loads(line) for line in stored.read_text().splitlines()] == HUB_ROWS
    manifest = json.loads((store / "tasks.json").read_text())
    assert manifest["gsm8k"]["source"] == f"hf:{parquet.as_uri()}:test"
    assert sorted(p.name for p in store.iterdir()) == ["gsm8k_test.jsonl", "tasks.json"]


def test_add_benchmark_hf_folder_in_hub_layout_picks_the_split(tmp_path):
    """A hub repository's layout (data/<split>-*.parquet) copied locally: the split chooses."""
    repo = tmp_path / "gsm8k-repo"
    write_parquet(repo / "data" / "test-00000-of-00001.parquet", HUB_ROWS[:1])
    write_parquet(repo / "data" / "train-00000-of-00001.parquet", HUB_ROWS)
    store = tmp_path / "store"
    for split, count in (("train", 2), ("test", 1)):
        stored = add_benchmark(store, get_task("gsm8k"), f"hf:{repo}:{split}")
        assert len(stored.read_text().splitlines()) == count


def test_add_benchmark_hf_checks_fields_like_a_local_file(tmp_path):
    parquet = write_parquet(tmp_path / "x.parquet", [{"q": "1+1?"}])
    with pytest.raises(InputError, match="missing field|no field"):
        add_benchmark(tmp_path / "store", get_task("gsm8k"), f"hf:{parquet.as_uri()}")
    assert not (tmp_path / "store" / "gsm8k_test.jsonl").exists()
    text = tmp_path / "y.txt"
    text.write_text("1+1?")
    with pytest.raises(InputError, match="cannot read .txt"):
        add_benchmark(tmp_path / "store", get_task("gsm8k"), f"hf:{text.as_uri()}")
    with pytest.raises(InputError, match="not found"):
        add_benchmark(tmp_path / "store", get_task("gsm8k"), "hf:file:///no/such.parquet")


def test_hub_source_names_and_splits():
    from frontload.evaluate.tasks.hub import HubSource

    assert HubSource.parse("hf:openai/gsm8k") == HubSource("openai/gsm8k", None)
    assert HubSource.parse("hf:openai/gsm8k:train") == HubSource("openai/gsm8k", "train")
    url = "file:///data/gsm8k.parquet"
    assert HubSource.parse(f"hf:{url}") == HubSource(url, None)
    assert HubSource.parse(f"hf:{url}:test") == HubSource(url, "test")
    assert HubSource.parse(f"hf:{url}").local_path().as_posix() == "/data/gsm8k.parquet"
    with pytest.raises(InputError, match="no dataset named"):
        HubSource.parse("hf:")


def test_add_benchmark_hf_offline_is_one_line(workspace):
    """A fresh `fl` process with the hub switched off, as an offline user runs it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("FL_DEBUG", None)
    args = ["evaluate", "add-benchmark", "gsm8k", "hf:openai/gsm8k", "-w", str(workspace.root)]
    done = subprocess.run(
        [sys.executable, "-m", "frontload.cli", *args], env=env, capture_output=True, text=True
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output
    assert output.startswith("error: cannot load hf:openai/gsm8k split test"), output
    assert not (workspace.root / "benchmarks" / "gsm8k_test.jsonl").exists()


def test_add_benchmark_checks_the_file_before_replacing_the_stored_one(tmp_path):
    store, task = tmp_path / "store", get_task("gsm8k")
    good = write_jsonl(tmp_path / "good.jsonl", [{"q": "What is 2+3?", "a": "#### 5"}])
    stored = add_benchmark(store, task, good, {"question": "q", "answer": "a"})
    before = stored.read_bytes(), (store / "tasks.json").read_text()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{bad\n", encoding="utf-8")
    with pytest.raises(InputError, match="broken.jsonl"):
        add_benchmark(store, task, broken)
    with pytest.raises(InputError, match="no field 'zz'"):
        add_benchmark(store, task, good, {"question": "zz"})
    assert (stored.read_bytes(), (store / "tasks.json").read_text()) == before
    assert sorted(p.name for p in store.iterdir()) == ["gsm8k_test.jsonl", "tasks.json"]


def test_options_naming_a_task_outside_the_run_are_an_error(workspace, tmp_path):
    from frontload.cli import app

    data = write_jsonl(tmp_path / "q.jsonl", [{"q": "2+3?", "sol": "#### 5"}])
    predictions = write_jsonl(tmp_path / "p.jsonl", [{"problem": "0", "completion": "5"}])
    args = ["evaluate", "score", "--task", "gsm8k", "--predictions", str(predictions)]
    args += ["--task-file", f"gsm8k={data}", "--field", "gsm8k.question=q"]
    args += ["--field", "gsm8k.answer=sol"]
    typo = CliRunner().invoke(app, [*args, "--field", "gsm8.question=q"])
    assert isinstance(typo.exception, ConfigError)
    assert "--field names task 'gsm8'" in str(typo.exception)
    limit = CliRunner().invoke(app, [*args, "--sandbox-limit", "gsm8k.timeout_s=3"])
    assert isinstance(limit.exception, ConfigError) and "runs no code" in str(limit.exception)
