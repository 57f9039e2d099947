"""fastText quality classifier (DCLM recipe): train it from example specs (see `quality_specs`) and
score records in batches; `quality_step.py` holds the curation steps that use it."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from frontload.curate.fasttext_train import NAN_EXIT
from frontload.curate.quality_specs import read_specs
from frontload.curate.recipe import QualityTrainConfig
from frontload.errors import InputError, TrainingError
from frontload.workspace import Workspace

LABEL_HQ = "__label__hq"
LABEL_LQ = "__label__lq"
FASTTEXT_MAGIC = 793712314  # first int32 of every fastText .bin


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
