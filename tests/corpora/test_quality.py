"""fastText quality classifier: training from specs, batched scoring, the pipeline step, errors."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from frontload.curate.quality import Scorer, prepare, roc_auc, train_from_config
from frontload.curate.quality_specs import read_specs
from frontload.curate.quality_step import QualityScoreStep, quality_steps
from frontload.curate.recipe import QualityConfig, QualityTrainConfig
from frontload.errors import ConfigError, InputError
from frontload.workspace import Workspace

GOOD = [
    "therefore",
    "theorem",
    "lemma",
    "proof",
    "integral",
    "derivative",
    "hence",
    "we",
    "conclude",
    "boxed",
    "equals",
]
BAD = [
    "click",
    "here",
    "subscribe",
    "buy",
    "now",
    "cheap",
    "offer",
    "free",
    "shipping",
    "deal",
    "login",
    "cookie",
]
SMALL = {"bucket": 100_000, "dim": 16, "epochs": 10}  # tiny fastText matrices can hit NaN


def texts(words: list[str], count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "\n".join(" ".join(rng.choice(words) for _ in range(8)) for _ in range(3))
        for _ in range(count)
    ]


def write_jsonl(path, items: list[str], field: str = "text") -> None:
    path.write_text("".join(json.dumps({field: t}) + "\n" for t in items))


@pytest.fixture
def model(tmp_path, workspace):
    """A small classifier trained on separable jsonl (positive) and parquet (negative) files."""
    write_jsonl(tmp_path / "good.jsonl", texts(GOOD, 300, 0))
    pq.write_table(pa.table({"text": texts(BAD, 300, 1)}), tmp_path / "bad.parquet")
    settings = QualityTrainConfig(
        positive=[str(tmp_path / "good*.jsonl")],
        negative=[str(tmp_path / "bad.parquet")],
        out=tmp_path / "q.bin",
        **SMALL,
    )
    return train_from_config(settings, workspace)


def test_training_reports_heldout_metrics_and_separates_classes(model, tmp_path):
    metrics = model["metrics"]
    assert metrics["heldout"] == 60 and metrics["train"] == 540 and metrics["lr"] > 0
    assert metrics["roc_auc"] > 0.95 and metrics["precision"] > 0.9 and metrics["recall"] > 0.9
    assert json.loads((tmp_path / "q.json").read_text())["metrics"] == metrics
    scorer = Scorer.load(tmp_path / "q.bin")
    good, bad = scorer.score(texts(GOOD, 20, 7)), scorer.score(texts(BAD, 20, 8))
    assert min(good) > 0.5 > max(bad)


def test_batched_scores_equal_one_by_one(model, tmp_path):
    scorer = Scorer.load(tmp_path / "q.bin")
    items = texts(GOOD, 5, 3) + texts(BAD, 5, 4)
    batch = scorer.score(items)
    one_by_one = [scorer.score([t])[0] for t in items]
    assert batch == pytest.approx(one_by_one)
    labels, probs = scorer.model.predict(prepare(items[0]), k=2)
    assert dict(zip(labels, probs, strict=True))["__label__hq"] == pytest.approx(batch[0])


def test_roc_auc_rank_statistic():
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc([1, 0, 1, 0], [0.1, 0.9, 0.2, 0.8]) == 0.0
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5


def test_specs_read_pool_queries_and_complain_clearly(workspace, tmp_path, pool):
    rows = read_specs(
        ["sql:SELECT text FROM pool WHERE list_contains(tags, 'curated') AND answer_tokens > 5000"],
        workspace,
        "text",
        10**6,
    )
    expected = [r for r in pool if "curated" in r["tags"] and r["answer_tokens"] > 5000]
    assert len(rows) == len(expected) > 0
    assert len(read_specs(["sql:SELECT text FROM pool"], workspace, "text", 3)) == 3
    with pytest.raises(ConfigError, match="'answer_tokens' is int32, not text"):
        read_specs(["sql:SELECT answer_tokens FROM pool"], workspace, "text", 10)
    with pytest.raises(InputError, match="no such file"):
        read_specs([str(tmp_path / "missing.jsonl")], workspace, "text", 10)
    write_jsonl(tmp_path / "other.jsonl", ["a"], field="body")
    with pytest.raises(InputError, match="other.jsonl:1: no field 'text'"):
        read_specs([str(tmp_path / "other.jsonl")], workspace, "text", 10)


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="broken.bin"):
        Scorer.load(bad)
    with pytest.raises(InputError, match="file not found"):
        Scorer.load(tmp_path / "absent.bin")
    with pytest.raises(InputError, match="broken.bin: not a fastText"):
        quality_steps(QualityConfig(model=bad), Workspace.resolve(tmp_path / "ws"))


def documents(records: list[dict]) -> list[Document]:
    return [
        Document(
            text=r["text"],
            id=r["id"],
            metadata={k: v for k, v in r.items() if k not in ("id", "text")},
        )
        for r in records
    ]


def test_step_scores_every_record_in_batches(model, tmp_path, workspace):
    config = QualityConfig(model=tmp_path / "q.bin", batch_size=7, verify=False)
    steps = quality_steps(config, workspace)
    assert [type(s).__name__ for s in steps] == ["QualityScoreStep"]
    records = [{"id": str(i), "text": t, "tags": []} for i, t in enumerate(texts(GOOD, 20, 9))]
    out = list(steps[0].run(iter(documents(records))))
    assert len(out) == 20 and all(d.metadata["quality"] > 0.5 for d in out)
    assert steps[0].stats["scored"].total == 20


def test_step_bootstraps_a_model_from_source_tags(workspace):
    records = [
        {"id": f"g{i}", "text": t, "tags": ["curated"]} for i, t in enumerate(texts(GOOD, 100, 1))
    ]
    records += [
        {"id": f"b{i}", "text": t, "tags": ["diverse"]} for i, t in enumerate(texts(BAD, 100, 2))
    ]
    random.Random(0).shuffle(records)
    config = QualityConfig(
        bootstrap=QualityTrainConfig(**SMALL), bootstrap_records=75, verify=False
    )
    step = QualityScoreStep(config, workspace, None, bootstrap=True)
    out = list(step.run(iter(documents(records))))
    assert len(out) == 200
    assert (workspace.models_dir / "quality.bin").is_file()
    good = [d.metadata["quality"] for d in out if d.id.startswith("g")]
    bad = [d.metadata["quality"] for d in out if d.id.startswith("b")]
    assert min(good) > max(bad)


def test_bootstrap_without_both_classes_leaves_quality_empty(workspace):
    records = [
        {"id": str(i), "text": t, "tags": ["diverse"]} for i, t in enumerate(texts(BAD, 10, 2))
    ]
    step = QualityScoreStep(QualityConfig(verify=False), workspace, None, bootstrap=True)
    out = list(step.run(iter(documents(records))))
    assert [d.metadata["quality"] for d in out] == [None] * 10
    assert not (workspace.models_dir / "quality.bin").exists()


def test_configured_train_spec_trains_before_the_pipeline(workspace, tmp_path):
    write_jsonl(tmp_path / "g.jsonl", texts(GOOD, 50, 0))
    write_jsonl(tmp_path / "b.jsonl", texts(BAD, 50, 1))
    train = QualityTrainConfig(
        positive=[str(tmp_path / "g.jsonl")], negative=[str(tmp_path / "b.jsonl")], **SMALL
    )
    steps = quality_steps(QualityConfig(train=train), workspace)
    assert [type(s).__name__ for s in steps] == ["VerifyStep", "QualityScoreStep"]
    assert (workspace.models_dir / "quality.bin").is_file()
    assert steps[1].model_path == workspace.models_dir / "quality.bin"


def test_no_model_trains_from_the_recipe_sources_by_tag(workspace, tmp_path):
    from frontload.curate.recipe import SourceConfig

    rows = [
        {"question": q, "answer": a}
        for q, a in zip(texts(GOOD, 80, 1), texts(GOOD, 80, 2), strict=True)
    ]
    (tmp_path / "cot.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_jsonl(tmp_path / "{workspace}.jsonl".replace("{workspace}", "web"), texts(BAD, 80, 3))
    sources = [
        SourceConfig(
            name="cot", path=str(tmp_path / "cot.jsonl"), preset="question_answer", tags=["curated"]
        ),
        SourceConfig(
            name="web", path="{workspace}/../../web.jsonl", preset="text", tags=["general"]
        ),
    ]
    (workspace.root.parent.parent / "web.jsonl").write_text((tmp_path / "web.jsonl").read_text())
    config = QualityConfig(bootstrap=QualityTrainConfig(**SMALL), verify=False)
    (step,) = quality_steps(config, workspace, sources)
    assert step.model_path == workspace.models_dir / "quality.bin" and step.model_path.is_file()
    scorer = Scorer.load(step.model_path)
    assert min(scorer.score(texts(GOOD, 10, 5))) > max(scorer.score(texts(BAD, 10, 6)))
    only_curated = [s for s in sources if s.name == "cot"]
    step.model_path.unlink()
    (step,) = quality_steps(config, workspace, only_curated)
    assert step.model_path is None and not step.bootstrap


def test_model_folder_that_cannot_exist_is_a_clear_error(tmp_path, workspace):
    write_jsonl(tmp_path / "good.jsonl", texts(GOOD, 20, 0))
    write_jsonl(tmp_path / "bad.jsonl", texts(BAD, 20, 1))
    (tmp_path / "a_file").write_text("")
    settings = QualityTrainConfig(
        positive=[str(tmp_path / "good.jsonl")],
        negative=[str(tmp_path / "bad.jsonl")],
        out=tmp_path / "a_file" / "q.bin",
        **SMALL,
    )
    with pytest.raises(InputError, match="cannot create the model folder"):
        train_from_config(settings, workspace)
