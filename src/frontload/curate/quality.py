"""fastText quality classifier (DCLM recipe): train it from example specs (see `quality_specs`),
score records in batches, and build the curation steps that use it."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from loguru import logger
from pydantic import Field

from frontload.config import StrictModel
from frontload.curate.quality_specs import TAG_PREFIX, read_specs
from frontload.errors import InputError, TrainingError
from frontload.workspace import Workspace

LABEL_HQ = "__label__hq"
LABEL_LQ = "__label__lq"
FASTTEXT_MAGIC = 793712314  # first int32 of every fastText .bin


class QualityTrainConfig(StrictModel):
    """How to train the classifier: positive (high-quality) and negative (ordinary) examples."""

    positive: list[str] = Field(
        default_factory=list, description="specs of high-quality examples: paths, globs or sql:"
    )
    negative: list[str] = Field(
        default_factory=list, description="specs of ordinary examples: paths, globs or sql:"
    )
    out: Path | None = Field(
        None, description="where to write the model (default: <workspace>/models/quality.bin)"
    )
    text_field: str = Field("text", description="field holding the text in jsonl/parquet files")
    max_per_class: int = Field(200_000, gt=0, description="cap on examples per class")
    holdout: float = Field(0.1, gt=0, lt=1, description="fraction held out for the metrics")
    bucket: int = Field(200_000, gt=0, description="hash buckets for word n-grams (x dim floats)")
    dim: int = Field(64, gt=0, description="embedding size")
    epochs: int = Field(5, gt=0, description="training epochs")
    lr: float = Field(0.1, gt=0, description="learning rate")
    word_ngrams: int = Field(2, ge=1, description="word n-grams (2 = bigrams, as in DCLM)")
    min_count: int = Field(1, ge=1, description="minimum word count to enter the vocabulary")
    threads: int = Field(
        1,
        ge=1,
        description="fastText training threads (more than 1 is faster but not reproducible)",
    )
    seed: int = Field(0, description="seed for balancing and the held-out split")


class QualityConfig(StrictModel):
    """Quality scoring in the curation pipeline (and answer verification against references)."""

    model: Path | None = Field(
        None,
        description="fastText .bin to score with (default: <workspace>/models/quality.bin, "
        "trained first from `train` or, without it, from the source tags)",
    )
    train: QualityTrainConfig | None = Field(
        None, description="train the model first from these examples (skipped if already trained)"
    )
    positive_tags: list[str] = Field(
        default_factory=lambda: ["curated"],
        description="without a model or train spec: tags whose records are positive examples",
    )
    negative_tags: list[str] = Field(
        default_factory=lambda: ["diverse", "general"],
        description="without a model or train spec: tags whose records are negative examples",
    )
    bootstrap_records: int = Field(
        5_000, gt=0, description="examples per class for the tag-labelled model"
    )
    bootstrap: QualityTrainConfig = Field(
        # Tag-labelled sets are small: fewer epochs at lr 0.1 leave every score near 0.5.
        default_factory=lambda: QualityTrainConfig(bucket=100_000, dim=32, epochs=25, lr=0.5),
        description="training settings of the tag-labelled model (positive/negative ignored)",
    )
    batch_size: int = Field(1024, gt=0, description="records per fastText predict call")
    text_field: str = Field("text", description="record field to score (text, response, prompt)")
    verify: bool = Field(True, description="check responses against reference answers")
    verify_workers: int = Field(1, ge=1, description="processes grading answers (Math-Verify)")
    verify_timeout: float = Field(5.0, gt=0, description="seconds per answer check")


def prepare(text: str) -> str:
    """DCLM preprocessing: newlines flattened (fastText reads one line and already splits words on
    any other whitespace, so nothing else needs collapsing)."""
    return (text or "").replace("\n", " ")


def default_model_path(workspace: Workspace) -> Path:
    return workspace.models_dir / "quality.bin"


# ---------------------------------------------------------------------------------------------
# Training


def roc_auc(labels: list[int], scores: list[float]) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney) statistic, ties averaged."""
    from scipy.stats import rankdata

    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return float("nan")
    ranks = rankdata(scores)
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def train_classifier(
    positives: list[str], negatives: list[str], out: Path, settings: QualityTrainConfig
) -> dict[str, float]:
    """Balance the classes, hold out a split, train, save `out`; returns held-out metrics."""
    if not positives or not negatives:
        raise InputError(
            f"quality training needs both classes: {len(positives)} positive and "
            f"{len(negatives)} negative examples",
            "check the --positive/--negative specs (or the source tags)",
        )
    rng = random.Random(settings.seed)
    size = min(len(positives), len(negatives), settings.max_per_class)
    examples = [(1, t) for t in rng.sample(positives, size)]
    examples += [(0, t) for t in rng.sample(negatives, size)]
    rng.shuffle(examples)
    held = max(2, int(len(examples) * settings.holdout)) if len(examples) >= 10 else 0
    test, train = examples[:held], examples[held:]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            f"cannot create the model folder {out.parent}: {error.strerror}", "pick another --out"
        ) from error
    train_file = out.with_suffix(".train.txt")
    with open(train_file, "w", encoding="utf-8") as handle:
        for label, text in train:
            handle.write(f"{LABEL_HQ if label else LABEL_LQ} {prepare(text)}\n")
    tmp = out.with_suffix(".tmp.bin")
    lr = _train_in_subprocess(train_file, tmp, settings)
    train_file.unlink()
    tmp.replace(out)
    model = _load_quiet(out)
    metrics: dict[str, float] = {"train": len(train), "heldout": len(test), "lr": lr}
    if test:
        scores = Scorer(model).score([t for _, t in test])
        labels = [y for y, _ in test]
        predicted = [s >= 0.5 for s in scores]
        tp = sum(p and y for p, y in zip(predicted, labels, strict=True))
        metrics["precision"] = tp / max(1, sum(predicted))
        metrics["recall"] = tp / max(1, sum(labels))
        metrics["roc_auc"] = roc_auc(labels, scores)
    return metrics


def _train_in_subprocess(train_file: Path, out: Path, settings: QualityTrainConfig) -> float:
    """Train in a fresh process (see `fasttext_train`), halving lr on divergence; returns the lr."""
    import subprocess
    import sys

    from frontload.curate.fasttext_train import NAN_EXIT

    lr = settings.lr
    for _ in range(4):  # fastText can diverge on small, very separable data: retry at half the lr
        spec = {
            "input": str(train_file),
            "out": str(out),
            "epoch": settings.epochs,
            "lr": lr,
            "wordNgrams": settings.word_ngrams,
            "bucket": settings.bucket,
            "dim": settings.dim,
            "minCount": settings.min_count,
            "thread": settings.threads,
            "seed": settings.seed,
            "verbose": 0,
        }
        command = [sys.executable, "-m", "frontload.curate.fasttext_train", json.dumps(spec)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return lr
        if done.returncode != NAN_EXIT:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise TrainingError(f"fastText training failed: {last}", "check the training examples")
        lr /= 2
    raise TrainingError(
        f"fastText training diverged (NaN) down to lr {lr * 2:g}", "lower --lr or --epochs"
    )


def _load_quiet(path: Path):
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None
    return fasttext.load_model(str(path))


def model_sha256(path: Path) -> str:
    """The model file's hash, recorded beside it and in corpus manifests (reproducibility)."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_from_config(
    settings: QualityTrainConfig, workspace: Workspace, sources: list | None = None
) -> dict[str, Any]:
    """Train from the positive/negative specs of `settings`; writes `<model>.json` beside it."""
    out = settings.out or default_model_path(workspace)
    limit = settings.max_per_class
    field = settings.text_field
    positives = read_specs(settings.positive, workspace, field, limit, sources)
    negatives = read_specs(settings.negative, workspace, field, limit, sources)
    metrics = train_classifier(positives, negatives, out, settings)
    record = {
        "model": str(out),
        "sha256": model_sha256(out),
        "settings": settings.model_dump(mode="json"),
        "metrics": metrics,
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


# ---------------------------------------------------------------------------------------------
# Scoring


class Scorer:
    """P(high quality) for lists of texts with one fastText predict call per batch."""

    def __init__(self, model: Any) -> None:
        self.model = model
        labels = list(model.get_labels())
        if LABEL_HQ not in labels:
            raise InputError(
                f"quality model has labels {labels}, expected {LABEL_HQ}",
                "train it with `fl curate quality train`",
            )
        self.k = len(labels)

    @staticmethod
    def check(path: Path) -> None:
        """Fail early, without loading it, when `path` is missing or not a fastText model."""
        if not Path(path).is_file():
            raise InputError(f"quality model {path}: file not found", "check quality.model")
        with open(path, "rb") as handle:
            magic = int.from_bytes(handle.read(4), "little")
        if magic != FASTTEXT_MAGIC:
            raise InputError(
                f"quality model {path}: not a fastText .bin model",
                "train one with `fl curate quality train`",
            )

    @classmethod
    def load(cls, path: Path) -> Scorer:
        import fasttext

        cls.check(path)
        try:
            fasttext.FastText.eprint = lambda *args, **kwargs: None
            model = fasttext.load_model(str(path))
        except (ValueError, RuntimeError, MemoryError) as error:
            raise InputError(
                f"quality model {path}: not a fastText model ({error})",
                "train one with `fl curate quality train`",
            ) from error
        return cls(model)

    def score(self, texts: list[str]) -> list[float]:
        labels, probs = self.model.predict([prepare(t) for t in texts], k=self.k)
        return [
            float(dict(zip(names, values, strict=True)).get(LABEL_HQ, 0.0))
            for names, values in zip(labels, probs, strict=True)
        ]


def quality_steps(
    config: QualityConfig | None, workspace: Workspace, sources: list | None = None
) -> list:
    """Verification, then scoring. Without a model one is trained first: from `train`, else from
    the recipe's `sources` by tag, else (no sources given) from the first records of the stream."""
    from frontload.curate.quality_step import QualityScoreStep
    from frontload.curate.verify import VerifyStep

    config = config or QualityConfig()
    steps: list = []
    if config.verify:
        steps.append(VerifyStep(workers=config.verify_workers, timeout=config.verify_timeout))
    if config.model is not None:
        Scorer.check(config.model)
        steps.append(QualityScoreStep(config, workspace, config.model, bootstrap=False))
        return steps
    train = config.train
    if train is None and sources is not None:
        train = config.bootstrap.model_copy(
            update={
                "positive": [f"{TAG_PREFIX}{tag}" for tag in config.positive_tags],
                "negative": [f"{TAG_PREFIX}{tag}" for tag in config.negative_tags],
                "max_per_class": config.bootstrap_records,
            }
        )
    if train is None:
        steps.append(QualityScoreStep(config, workspace, None, bootstrap=True))
        return steps
    model = train.out or default_model_path(workspace)
    if Path(model).is_file():
        logger.info(f"quality model {model} exists: scoring with it (delete it to retrain)")
    else:
        try:
            record = train_from_config(train, workspace, sources)
        except InputError as error:
            if config.train is not None:
                raise
            logger.warning(f"no quality model: {error.message}; quality left empty")
            steps.append(QualityScoreStep(config, workspace, None, bootstrap=False))
            return steps
        logger.info(f"trained quality model {model}: held-out {record['metrics']}")
    steps.append(QualityScoreStep(config, workspace, model, bootstrap=False))
    return steps
