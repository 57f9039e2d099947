"""Recipes and readers: every format and mapping loads, and bad input gets a message that names
the file, line and field."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.curate.helpers import write_jsonl, write_recipe

from frontload.config import validate
from frontload.curate.readers import (
    Malformed,
    check_mapping,
    iter_raw,
    last_boxed,
    map_record,
    resolve_sources,
)
from frontload.curate.recipe import CurateRecipe, SourceConfig, load_recipe
from frontload.errors import ConfigError, InputError


def source(path, **kw) -> SourceConfig:
    return SourceConfig(name=kw.pop("name", "s"), path=str(path), **kw)


def records(src: SourceConfig):
    out = []
    for file in resolve_sources([src], None):
        for line, raw in iter_raw(file):
            out.append(
                (line, raw if isinstance(raw, Malformed) else map_record(raw, src.mapping()))
            )
    return out


def test_recipe_typo_names_the_key(tmp_path):
    path = write_recipe(
        tmp_path / "r.yaml",
        {"sources": [{"name": "a", "path": "x", "preset": "text"}], "near_dedup": {"ngrams": 3}},
    )
    with pytest.raises(ConfigError, match=r"near_dedup\.ngrams: unknown key"):
        load_recipe(path)


def test_recipe_needs_one_mapping_and_unique_names():
    with pytest.raises(ConfigError, match="map exactly one of"):
        validate(CurateRecipe, {"sources": [{"name": "a", "path": "x"}]}, "r")
    with pytest.raises(ConfigError, match="unique"):
        two = [{"name": "a", "path": "x", "preset": "text"}] * 2
        validate(CurateRecipe, {"sources": two}, "r")
    with pytest.raises(ConfigError, match="slurm"):
        validate(
            CurateRecipe,
            {
                "sources": [{"name": "a", "path": "x", "preset": "text"}],
                "executor": {"kind": "slurm"},
            },
            "r",
        )


def test_gsm8k_and_math_load_by_preset_with_references(tmp_path):
    gsm = write_jsonl(
        tmp_path / "gsm.jsonl",
        [{"question": "Tom has 3 + 4 apples?", "answer": "3 + 4 = 7\n#### 1,007"}],
    )
    (row,) = records(source(gsm, preset="gsm8k"))
    assert row[1]["prompt"] == "Tom has 3 + 4 apples?" and row[1]["reference"] == "1007"
    math = tmp_path / "math.jsonl.gz"
    with gzip.open(math, "wt") as handle:
        solution = "So $x = \\frac{1}{2}$, and \\boxed{\\frac{\\sqrt{3}}{2}}."
        handle.write(json.dumps({"problem": "Find x.", "solution": solution}) + "\n")
    (row,) = records(source(math, preset="math"))
    assert row[1]["reference"] == "\\frac{\\sqrt{3}}{2}"
    assert last_boxed("no box") is None


def test_chat_plain_text_parquet_and_datasets_folder(tmp_path):
    chat = write_jsonl(
        tmp_path / "chat.jsonl",
        [{"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "Hi?"},
                       {"role": "assistant", "content": "Hello."}]}],
    )  # fmt: skip
    (row,) = records(source(chat, preset="chat"))
    assert (row[1]["prompt"], row[1]["response"]) == ("Hi?", "Hello.")
    assert row[1]["messages"][0]["role"] == "system" and "be nice" not in row[1]["text"]

    table = pa.table({"body": ["plain web text", "more text"], "extra": [1, 2]})
    pq.write_table(table, tmp_path / "web.parquet")
    rows = records(source(tmp_path / "web.parquet", fields={"text": "body"}))
    assert [r[1]["text"] for r in rows] == ["plain web text", "more text"]

    import datasets

    data = datasets.Dataset.from_dict({"q": ["1+1?", "2+2?"], "a": ["2", "4"], "gold": ["2", "4"]})
    data.save_to_disk(str(tmp_path / "hf"))
    mapped = source(tmp_path / "hf", fields={"prompt": "q", "response": "a", "reference": "gold"})
    rows = records(mapped)
    assert [r[1]["reference"] for r in rows] == ["2", "4"]
    datasets.DatasetDict({"train": data}).save_to_disk(str(tmp_path / "hfdict"))
    assert len(records(source(tmp_path / "hfdict", preset=None, fields=mapped.fields))) == 2


def test_record_errors_name_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"prompt": "ok", "response": "fine"}\n'
        b'{"prompt": "broken", \n'
        b'{"prompt": "caf\xe9", "response": "x"}\n'
        b'{"prompt": null, "response": "x"}\n'
        b"[1, 2]\n"
        b'{"prompt": "no response"}\n'
    )
    from frontload.curate.steps import SourceReader

    files = resolve_sources([source(path, preset="prompt_response")], None)
    reader = SourceReader(files, tmp_path / "malformed")
    docs = list(reader.run(None, 0, 1))
    assert [doc.metadata["prompt"] for doc in docs] == ["ok"]
    bad = {
        row["line"]: row for row in pq.read_table(tmp_path / "malformed/00000.parquet").to_pylist()
    }
    assert set(bad) == {2, 3, 4, 5, 6}
    assert "invalid JSON" in bad[2]["reason"] and "not UTF-8" in bad[3]["reason"]
    assert "'prompt' is null" in bad[4]["reason"] and "not a JSON object" in bad[5]["reason"]
    assert "'response' missing" in bad[6]["reason"] and bad[6]["file"] == str(path)
    assert "caf" in bad[3]["raw"] and all(row["step"] == "malformed" for row in bad.values())
    assert reader.stats.stats["dropped"].total == 5


def test_field_errors_name_the_field():
    from frontload.curate.readers import RecordError

    mapping = SourceConfig(name="s", path="x", preset="gsm8k").mapping()
    with pytest.raises(RecordError, match="'question' is null"):
        map_record({"question": None, "answer": "1"}, mapping)
    with pytest.raises(RecordError, match="'answer' missing"):
        map_record({"question": "q"}, mapping)


def test_config_errors_stop_before_work(tmp_path):
    with pytest.raises(InputError, match="missing.jsonl: file not found"):
        resolve_sources([source(tmp_path / "missing.jsonl", preset="text")], None)
    with pytest.raises(InputError, match="matches no files"):
        resolve_sources([source(tmp_path / "*.jsonl", preset="text")], None)
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(ConfigError, match=r"data.csv: unknown format"):
        resolve_sources([source(tmp_path / "data.csv", preset="text")], None)
    path = write_jsonl(tmp_path / "qa.jsonl", [{"q": "x", "a": "y"}])
    (file,) = resolve_sources([source(path, preset="gsm8k")], None)
    with pytest.raises(
        ConfigError,
        match=r"qa.jsonl line 1: preset 'gsm8k' expects fields question, answer; missing",
    ):
        check_mapping(file)
    packed = tmp_path / "packed.jsonl"
    packed.write_bytes(gzip.compress(b'{"text": "hello world"}\n'))
    (file,) = resolve_sources([source(packed, preset="text", format="jsonl")], None)
    with pytest.raises(ConfigError, match="packed.jsonl: gzip-compressed, read as jsonl"):
        check_mapping(file)


def test_workspace_placeholder_and_globs(tmp_path):
    for name in ("b.jsonl", "a.jsonl"):
        write_jsonl(tmp_path / name, [{"text": "hello world"}])
    files = resolve_sources([source("{workspace}/*.jsonl", preset="text")], tmp_path)
    assert [f.path.name for f in files] == ["a.jsonl", "b.jsonl"]


def test_tasks_share_every_file_record_by_record(tmp_path):
    rows = [{"text": f"record number {i}"} for i in range(23)]
    write_jsonl(tmp_path / "a.jsonl", rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    for name in ("a.jsonl", "b.parquet"):
        (file,) = resolve_sources([source(tmp_path / name, preset="text")], None)
        shares = [[line for line, _ in iter_raw(file, rank, 4)] for rank in range(4)]
        assert sorted(sum(shares, [])) == list(range(1, 24))
        assert all(len(share) in (5, 6) for share in shares)
