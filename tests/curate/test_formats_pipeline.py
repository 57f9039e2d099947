"""`fl curate run` on an exploded dump: 4 generations per problem with per-generation labels.
The default keeps the verified ones and near-dedup keeps siblings apart; `siblings: dedup` lets
dedup merge them. The source's id, kept fields, the generation index and the reasoning split
reach the pool and the corpora."""

from __future__ import annotations

import json

import pytest
from tests.curate.helpers import read_folder, write_jsonl, write_recipe
from typer.testing import CliRunner

from frontload.cli import app
from frontload.curate.length import TokenCounter
from frontload.workspace import Workspace

PROBLEMS = [
    (
        "p-001",
        "A baker fills 12 boxes with 6 muffins each. How many muffins does she pack in total?",
        "The baker has twelve boxes and every box holds the same number of muffins, so the total "
        "is found by multiplying the count of boxes by the muffins in each box. Multiplying 12 by "
        "6 gives 72, and a quick check by repeated addition of six twelve times agrees with it.",
        "72",
        "81",
    ),
    (
        "p-002",
        "Train tickets cost 15 dollars for adults. What do 4 adult tickets cost?",
        "Each adult ticket has a fixed price, so four tickets cost four times that price. Four "
        "times 15 dollars is 60 dollars; splitting it as 4 times 10 plus 4 times 5 confirms the "
        "sum because forty and twenty together make sixty dollars for the whole family trip.",
        "60",
        "45",
    ),
    (
        "p-003",
        "A garden hose fills a 90 liter tank at 3 liters per minute. How long does it take?",
        "Filling time equals the volume of the tank divided by the flow rate of the hose. Dividing "
        "90 liters by 3 liters per minute leaves 30 minutes, and multiplying back, thirty minutes "
        "at that rate delivers exactly the ninety liters needed to reach the brim of the tank.",
        "30",
        "27",
    ),
]
LABELS = [True, False, True, True]
WORDS = ["carefully", "slowly", "calmly", "patiently"]


def dump_rows() -> list[dict]:
    """OpenR1-Math rows: 4 generations per problem, the second one wrong; the verified ones are
    near copies of one another (one word apart), as sibling generations of one model often are."""
    rows = []
    for uuid, problem, reasoning, answer, wrong in PROBLEMS:
        generations = [
            f"<think>\nLet me work {word}. {reasoning}\n</think>\n\n"
            f"So the answer is $\\boxed{{{answer if ok else wrong}}}$."
            for word, ok in zip(WORDS, LABELS, strict=True)
        ]
        rows.append(
            {
                "problem": problem,
                "solution": reasoning,
                "answer": answer,
                "problem_type": "Arithmetic",
                "question_type": "math-word-problem",
                "source": "synthetic",
                "uuid": uuid,
                "generations": generations,
                "correctness_math_verify": LABELS,
            }
        )
    return rows


QA_ROWS = [
    {"id": f"gsm-{i}", "level": i % 3, "question": f"Sam has {i} cows and buys {i + 5} more. "
     "How many cows does he have now?", "answer": f"{i} + {i + 5} = {2 * i + 5}\n#### {2 * i + 5}"}
    for i in (17, 23, 31)
]  # fmt: skip


def curate(tmp_path, name: str, **source) -> Workspace:
    data = write_jsonl(tmp_path / "openr1.jsonl", dump_rows())
    spec = {"name": "r1", "path": str(data), "preset": "openr1_math", "domain": "math"}
    spec.update(tags=["diverse"], keep=["problem_type"], **source)
    # a plain source with its own ids and a field to keep, as a user traces records back
    qa = {"name": "qa", "path": str(write_jsonl(tmp_path / "qa.jsonl", QA_ROWS)), "preset": "gsm8k"}
    qa.update(fields={"id": "id"}, keep=["level"], tags=["diverse"])
    recipe = {
        "name": name,
        "sources": [spec, qa],
        "executor": {"tasks": 1, "workers": 1},
        # a length rule on either part of the answer: the trace, or the final answer alone
        "corpora": {
            "rules": {
                "traced": {
                    "where": "reasoning_tokens > 30 AND answer_tokens - reasoning_tokens < 40"
                }
            }
        },
    }
    path = write_recipe(tmp_path / f"{name}.yaml", recipe)
    workspace = Workspace.resolve(tmp_path / name)
    result = CliRunner().invoke(app, ["curate", "run", str(path), "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    return workspace


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return curate(tmp_path_factory.mktemp("explode"), "verified")


def pool_of(workspace: Workspace, source: str = "r1") -> list[dict]:
    return [row for row in read_folder(workspace.pool_dir) if row["source"] == source]


def test_default_keeps_the_verified_generations_and_dedup_keeps_siblings(default_run):
    pool = pool_of(default_run)
    metas = [json.loads(row["meta"]) for row in pool]
    kept = sorted((m["id"], m["generation"]) for m in metas)
    assert kept == [(uuid, g) for uuid, *_ in PROBLEMS for g in (0, 2, 3)]
    assert all(row["verified"] for row in pool)
    removed = read_folder(default_run.removed_dir / "generations")
    assert len(removed) == 3 and {r["reason"] for r in removed} == {"unverified_generation"}
    assert not read_folder(default_run.removed_dir / "near_dedup")
    # MinHash did put the siblings in one cluster: only the sibling policy kept them all
    clusters = {}
    for row, meta in zip(pool, metas, strict=True):
        clusters.setdefault(meta["id"], set()).add(row["dup_cluster"])
    assert all(len(c) == 1 and None not in c for c in clusters.values())
    assert len(set().union(*clusters.values())) == len(PROBLEMS)


def test_source_id_kept_fields_and_reasoning_split_reach_the_pool(default_run):
    pool = pool_of(default_run)
    counter = TokenCounter(default_run.tokenizer_dir)
    for row in pool:
        meta = json.loads(row["meta"])
        assert meta["problem_type"] == "Arithmetic" and meta["id"].startswith("p-00")
        assert row["reasoning"].startswith("Let me work") and "<think>" not in row["response"]
        assert row["text"].count("<think>") == 1
        (answer,) = counter.count([row["response"]])
        assert 0 < answer < row["reasoning_tokens"]
        assert row["answer_tokens"] == row["reasoning_tokens"] + answer
    corpus = [r for r in read_folder(default_run.corpus_dir("dldq")) if r["source"] == "r1"]
    assert len(corpus) == 9 and all(row["reasoning"] and row["meta"] for row in corpus)
    assert len(read_folder(default_run.corpus_dir("traced"))) == len(pool) == 9


def test_siblings_dedup_lets_near_dedup_merge_them(tmp_path):
    workspace = curate(tmp_path, "merged", siblings="dedup")
    pool = pool_of(workspace)
    generations = sorted((json.loads(r["meta"])["id"], r["verified"]) for r in pool)
    # one verified survivor per problem, plus the wrong generation (its numbers differ)
    assert generations == [(uuid, v) for uuid, *_ in PROBLEMS for v in (False, True)]
    assert len(read_folder(workspace.removed_dir / "near_dedup")) == 2 * len(PROBLEMS)
    assert "keep_siblings" not in step_counts(workspace)


def step_counts(workspace: Workspace) -> dict[str, tuple[int, int]]:
    """(kept, removed) per counting step of the workspace's curation run (time-only rows left out)."""
    (path,) = (workspace.curate_state_dir / "stats").glob("*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row["step"]: (row["kept"], row["removed"]) for row in rows if "kept" in row}


def test_step_statistics_show_the_policy(default_run):
    counts = step_counts(default_run)
    assert counts["read"] == (15, 0)  # 3 rows -> 12 generations, and 3 plain records
    assert counts["generations"] == (12, 3)
    assert counts["near_dedup"] == (6, 6)  # what MinHash alone would have merged
    assert counts["keep_siblings"][0] == 12


def test_a_user_traces_pool_records_back_to_the_source_ids(default_run):
    sql = (
        "SELECT meta->>'id' AS id, meta->>'level' AS level FROM pool WHERE source = 'qa' ORDER BY 1"
    )
    result = CliRunner().invoke(app, ["stats", "query", sql, "-w", str(default_run.root)])
    assert result.exit_code == 0, result.output
    for row in QA_ROWS:
        assert row["id"] in result.output
    metas = [json.loads(r["meta"]) for r in pool_of(default_run, "qa")]
    assert sorted(metas, key=lambda m: m["id"]) == [
        {"id": r["id"], "level": r["level"]} for r in QA_ROWS
    ]


def test_every_preset_fixture_through_fl_curate_run(tmp_path):
    from tests.curate.test_formats import FIXTURES

    expected = {"numina_cot": 3, "openmathreasoning": 3, "s1k": 2, "limo": 2, "openr1_math": 6,
                "openthoughts": 2, "bespoke_stratos": 2, "sharegpt": 2}  # fmt: skip
    sources = [
        {"name": name, "path": str(FIXTURES / f"{name}.jsonl"), "preset": name, "domain": "math"}
        for name in expected
    ]
    recipe = write_recipe(
        tmp_path / "r.yaml",
        {"sources": sources, "executor": {"tasks": 2, "workers": 1}, "quality": {}},
    )
    workspace = Workspace.resolve(tmp_path / "ws")
    result = CliRunner().invoke(app, ["curate", "run", str(recipe), "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    pool = read_folder(workspace.pool_dir)
    counts = {name: sum(row["source"] == name for row in pool) for name in expected}
    assert counts == expected
    malformed = read_folder(workspace.removed_dir / "malformed")
    assert sorted(row["source"] for row in malformed) == sorted(expected)  # one per format
    for row in pool:
        traced = row["source"] not in ("numina_cot", "limo") and row["response"] != (
            "11 is a prime number greater than 10."
        )
        assert bool(row["reasoning"]) == traced, row
        assert (row["reasoning_tokens"] > 0) == traced
        assert "<think>" not in row["response"] and "begin_of_" not in row["response"]
    # verification reads the final answer: every kept OpenR1 generation checks out
    assert all(row["verified"] for row in pool if row["source"] == "openr1_math")
    assert all(row["verified"] for row in pool if row["source"] == "openmathreasoning")
