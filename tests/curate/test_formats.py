"""The public long-CoT formats, read by their presets from small hand-written fixtures (the
published schemas, a few records each and one malformed record per format): records, roles,
the reasoning/answer split and per-generation labels; a preset on the wrong file; URL paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.curate.helpers import write_jsonl, write_recipe

from frontload.curate.readers import (
    Malformed,
    RecordError,
    check_mapping,
    iter_raw,
    map_records,
    resolve_sources,
    split_reasoning,
)
from frontload.curate.recipe import SourceConfig
from frontload.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures"


def read(preset: str, path: Path | None = None, **kw):
    """(records with their keep flag, malformed reasons) of a fixture read by its preset."""
    src = SourceConfig(
        name=preset, path=str(path or FIXTURES / f"{preset}.jsonl"), preset=preset, **kw
    )
    records, bad = [], []
    for file in resolve_sources([src], None):
        check_mapping(file)
        for line, raw in iter_raw(file):
            if isinstance(raw, Malformed):
                bad.append(raw.reason)
                continue
            try:
                records += map_records(raw, src, f"row{line}")
            except RecordError as error:
                bad.append(str(error))
    return records, bad


def test_numina_cot_maps_problem_solution_and_messages():
    records, bad = read("numina_cot")
    assert len(records) == 3 and bad == ["field 'solution' is null"]
    first = records[0][0]
    assert first["prompt"].startswith("What is the sum of the first 5")
    assert first["reference"] == "25" and first["reasoning"] is None
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]


def test_openmathreasoning_splits_think_and_reads_expected_answer():
    records, bad = read("openmathreasoning")
    assert len(records) == 3 and bad == ["field 'generated_solution' is null"]
    record = records[0][0]
    assert record["reasoning"].startswith("Area is length times width")
    assert "<think>" not in record["response"] and record["response"].endswith("$\\boxed{12}$.")
    assert record["reference"] == "12"
    assert record["text"].count("<think>") == 1 and record["text"].endswith(record["response"])


def test_s1k_reads_the_trajectory_list_as_reasoning():
    records, bad = read("s1k")
    assert len(records) == 2 and bad == ["field 'thinking_trajectories' is a dict, not text"]
    record = records[0][0]
    assert record["reasoning"] == (
        "Each element is in or out of a subset, two choices each.\n\n"
        "So there are 2^7 = 128 subsets."
    )
    assert record["response"].startswith("A set with $7$ elements")


def test_limo_keeps_the_solution_and_the_answer_field():
    records, bad = read("limo")
    assert [r["reference"] for r, _ in records] == ["2", "6"]
    assert len(bad) == 1 and bad[0].startswith("invalid JSON")
    assert all(r["reasoning"] is None for r, _ in records)


def test_openr1_math_explodes_generations_with_their_labels():
    records, bad = read("openr1_math")
    assert bad == ["field 'correctness_math_verify' does not hold one label per 'generations' item"]
    assert len(records) == 8  # 2 problems x 4 generations
    metas = [json.loads(r["meta"]) for r, _ in records]
    assert [m["generation"] for m in metas] == [0, 1, 2, 3] * 2
    assert {m["id"] for m in metas} == {"6a5e4b2c-0001", "6a5e4b2c-0002"}
    assert metas[0]["group"] == metas[3]["group"] != metas[4]["group"]
    assert [keep for _, keep in records] == [True, False, True, True] * 2
    assert [r["verified"] for r, _ in records] == [True, False, True, True] * 2
    wrong = records[1][0]
    assert wrong["response"].endswith("$\\boxed{90}$ km/h.") and wrong["reference"] == "40"
    assert wrong["reasoning"].endswith("(attempt 2)")
    # `all` keeps every generation; `dedup` leaves siblings without a group for dedup to merge
    every, _ = read("openr1_math", siblings="all")
    assert all(keep for _, keep in every)
    merged, _ = read("openr1_math", siblings="dedup")
    assert "group" not in json.loads(merged[0][0]["meta"])


@pytest.mark.parametrize("preset", ["openthoughts", "bespoke_stratos"])
def test_openthoughts_conversations_roles_system_and_thought_tags(preset):
    records, bad = read(preset)
    assert len(records) == 2 and len(bad) == 1
    record = records[0][0]
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
    assert record["messages"][0]["content"].startswith("Your role as an assistant")
    assert "<|begin_of_thought|>" not in record["reasoning"]
    assert "<|begin_of_solution|>" not in record["response"]
    assert record["messages"][-1]["content"] == record["response"]
    assert record["prompt"].startswith("Return your final response")


def test_sharegpt_human_gpt_roles_and_custom_keys(tmp_path):
    records, bad = read("sharegpt", fields={"id": "id"})
    assert bad == ["field 'conversations' is not a non-empty list of turns"]
    first = records[0][0]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["reasoning"].startswith("7 * 8 = 56") and first["response"] == "7 * 8 = 56."
    assert json.loads(first["meta"]) == {"id": "sg-1"}
    # chat under any key names and role names maps to `messages`
    path = write_jsonl(
        tmp_path / "chat.jsonl",
        [{"dialog": [{"speaker": "Q", "text": "Hi?"}, {"speaker": "A", "text": "Hello."}]}],
    )
    fields = {
        "messages": "dialog",
        "role_key": "speaker",
        "content_key": "text",
        "roles": {"Q": "user", "A": "assistant"},
    }
    src = SourceConfig(name="c", path=str(path), fields=fields)
    (file,) = resolve_sources([src], None)
    check_mapping(file)
    ((record, _),) = map_records(next(iter_raw(file))[1], src, "g")
    assert record["messages"] == [
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."},
    ]
    assert record["prompt"] == "Hi?" and record["response"] == "Hello."


def test_think_tags_are_configurable_and_edge_cases():
    assert split_reasoning("<think>a</think>\n\nb", ("<think>", "</think>")) == ("a", "b")
    assert split_reasoning("a</think>b", ("<think>", "</think>")) == ("a", "b")
    assert split_reasoning("<think>cut off", ("<think>", "</think>")) == ("cut off", "")
    assert split_reasoning("[R]x[/R] y", ("[R]", "[/R]")) == ("x", "y")
    assert split_reasoning("plain", ("<think>", "</think>")) == (None, "plain")


def test_parquet_dump_with_list_columns_reads_the_same(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "openr1_math.jsonl").read_text().splitlines()]
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows[:2]), path)
    records, bad = read("openr1_math", path=path)
    assert len(records) == 8 and not bad
    assert [keep for _, keep in records] == [True, False, True, True] * 2


def fl(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed `fl` as a user runs it (errors are printed by the CLI's main)."""
    command = [sys.executable, "-c", "from frontload.cli import main; main()", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_preset_on_another_format_names_expected_and_found_fields(tmp_path):
    source = {"name": "r1", "path": str(FIXTURES / "limo.jsonl"), "preset": "openr1_math"}
    recipe = write_recipe(tmp_path / "r.yaml", {"sources": [source]})
    result = fl("curate", "run", str(recipe), "-w", str(tmp_path / "ws"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error, hint = result.stderr.strip().splitlines()
    assert "limo.jsonl line 1: preset 'openr1_math' expects fields problem, generations" in error
    assert "found answer, question, solution" in error
    assert hint.startswith("  hint:")
    assert not (tmp_path / "ws" / "pool").exists()


def test_unreachable_hub_path_is_one_line_and_a_local_copy_works(tmp_path):
    source = {
        "name": "r1",
        "path": "hf://datasets/open-r1/OpenR1-Math-220k/data/*.parquet",
        "preset": "openr1_math",
    }
    recipe = write_recipe(tmp_path / "r.yaml", {"sources": [source]})
    result = fl(
        "curate", "run", str(recipe), "-w", str(tmp_path / "ws"), env={"HF_HUB_OFFLINE": "1"}
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error, hint = result.stderr.strip().splitlines()
    assert error.startswith("error: hf://datasets/open-r1/OpenR1-Math-220k/data/*.parquet: cannot")
    assert "local copy" in hint
    # the same recipe on a local copy: only `path` changes
    local = tmp_path / "copy" / "data"
    local.mkdir(parents=True)
    rows = [json.loads(line) for line in (FIXTURES / "openr1_math.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows[:2]), local / "train-00000-of-00001.parquet")
    records, bad = read("openr1_math", path=local / "*.parquet")
    assert len(records) == 8 and not bad


def test_single_hub_file_offline_says_offline(tmp_path):
    """A plain file URL (no glob) lists nothing offline: say the hub is offline, not 'no files'."""
    url = "hf://datasets/open-r1/OpenR1-Math-220k/data/train-00000-of-00010.parquet"
    source = {"name": "r1", "path": url, "preset": "openr1_math"}
    recipe = write_recipe(tmp_path / "r.yaml", {"sources": [source]})
    result = fl(
        "curate", "run", str(recipe), "-w", str(tmp_path / "ws"), env={"HF_HUB_OFFLINE": "1"}
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error, hint = result.stderr.strip().splitlines()
    assert error.startswith(f"error: {url}: cannot reach the Hugging Face hub"), error
    assert "HF_HUB_OFFLINE" in error and "local copy" in hint


def test_keep_fields_must_exist(tmp_path):
    src = SourceConfig(name="l", path=str(FIXTURES / "limo.jsonl"), preset="limo", keep=["level"])
    (file,) = resolve_sources([src], None)
    with pytest.raises(ConfigError, match="missing level"):
        check_mapping(file)


def test_fsspec_url_is_read_like_a_local_file():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/hub/ORG/NAME/data/train.jsonl", (FIXTURES / "limo.jsonl").read_bytes())
    records, bad = read("limo", path="memory://hub/ORG/NAME/data/*.jsonl")
    assert [r["reference"] for r, _ in records] == ["2", "6"] and len(bad) == 1
    folder, _ = read("limo", path="memory://hub/ORG/NAME")  # a whole repo: its data files
    assert len(folder) == 2


def test_quality_seed_texts_from_an_exploded_source_are_its_kept_generations(tmp_path):
    from frontload.curate.quality_specs import read_spec
    from frontload.workspace import Workspace

    src = SourceConfig(name="r1", path=str(FIXTURES / "openr1_math.jsonl"), preset="openr1_math")
    texts = list(read_spec("source:r1", Workspace.resolve(tmp_path), sources=[src]))
    assert len(texts) == 6 and all("<think>" in t and "boxed{90}" not in t for t in texts)


def test_verification_reads_the_final_answer_not_the_trace():
    from datatrove.data import Document

    from frontload.curate.verify import VerifyStep

    def doc(reasoning: str, response: str, reference: str | None, verified=None) -> Document:
        meta = {"reasoning": reasoning, "response": response, "reference": reference}
        return Document(text="", id="x", metadata={**meta, "verified": verified})

    docs = [
        doc("maybe \\boxed{7}? no, recheck", "So the answer is $\\boxed{12}$.", "12"),
        doc("it is \\boxed{12} surely", "On reflection the answer is $\\boxed{7}$.", "12"),
        doc("trace", "The answer is 5.", None, verified=True),  # a source label stands
    ]
    out = list(VerifyStep(workers=1).run(iter(docs)))
    assert [d.metadata["verified"] for d in out] == [True, False, True]


def test_example_long_cot_recipe_validates():
    from frontload.curate.recipe import load_recipe

    recipe = load_recipe(Path(__file__).parents[2] / "recipes" / "examples" / "long_cot.yaml")
    assert [s.preset for s in recipe.sources] == ["openr1_math", "openthoughts", "numina_cot"]
    assert recipe.sources[0].mapping().explode == "generations"
