"""The datatrove step that writes `quality` on every record, one fastText predict per batch.

Given no model and no recipe sources to train one from, it trains one from the records streaming
through (labels from the source tags: `curated` positive, `diverse`/`general` negative), under a
file lock so parallel tasks share one model; the buffered records are then scored like the rest.
"""

from __future__ import annotations

import fcntl
import json
from itertools import chain, islice
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched
from loguru import logger

from frontload.curate.quality import (
    Scorer,
    default_model_path,
    model_sha256,
    train_classifier,
    train_from_config,
)
from frontload.curate.quality_specs import TAG_PREFIX
from frontload.curate.recipe import QualityConfig
from frontload.curate.verify import VerifyStep
from frontload.errors import InputError
from frontload.workspace import Workspace


def _tags(doc: Document) -> set[str]:
    return set(doc.metadata.get("tags") or [])


class QualityScoreStep(PipelineStep):
    """Sets doc.metadata["quality"] = P(high quality) (None when no model could be made)."""

    name = "quality (fastText)"
    type = "🏷 - ANNOTATE"

    def __init__(
        self, config: QualityConfig, workspace: Workspace, model: Path | None, bootstrap: bool
    ) -> None:
        super().__init__()
        self.config = config
        self.workspace = workspace
        self.model_path = Path(model) if model else None
        self.bootstrap = bootstrap

    def _bootstrap(self, buffer: list[Document]) -> bool:
        """Train the tag-labelled model from `buffer` unless another task already did."""
        path = default_model_path(self.workspace)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.is_file():
                return True
            field = self.config.text_field
            positive_tags = set(self.config.positive_tags)
            negative_tags = set(self.config.negative_tags)
            positives, negatives = [], []
            for doc in buffer:
                tags = _tags(doc)
                text = doc.text if field == "text" else doc.metadata.get(field) or ""
                if tags & positive_tags:
                    positives.append(text)
                elif tags & negative_tags:
                    negatives.append(text)
            if not positives or not negatives:
                logger.warning(
                    f"no quality model and cannot train one from tags: {len(positives)} records "
                    f"tagged {sorted(positive_tags)}, {len(negatives)} tagged "
                    f"{sorted(negative_tags)} in the first {len(buffer)}; quality left empty "
                    "(set quality.model or quality.train in the recipe)"
                )
                return False
            metrics = train_classifier(positives, negatives, path, self.config.bootstrap)
            record = {
                "model": str(path),
                "sha256": model_sha256(path),
                "trained_from": f"source tags {sorted(positive_tags)} vs {sorted(negative_tags)}",
                "settings": self.config.bootstrap.model_dump(mode="json"),
                "metrics": metrics,
            }
            path.with_suffix(".json").write_text(json.dumps(record, indent=2), encoding="utf-8")
            logger.info(f"trained quality model {path} from source tags: {metrics}")
            return True

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data is None:
            return
        data = iter(data)
        path = self.model_path
        if path is None and self.bootstrap:
            buffer = list(islice(data, 2 * self.config.bootstrap_records))
            if self._bootstrap(buffer):
                path = default_model_path(self.workspace)
            data = chain(buffer, data)
        scorer = Scorer.load(path) if path is not None else None
        if scorer is not None:
            logger.info(f"scoring quality with {path}")
        field = self.config.text_field
        for batch in batched(data, self.config.batch_size):
            with self.track_time("batch"):
                if scorer is None:
                    scores = [None] * len(batch)
                else:
                    texts = [
                        doc.text if field == "text" else doc.metadata.get(field) or ""
                        for doc in batch
                    ]
                    scores = scorer.score(texts)
            for doc, score in zip(batch, scores, strict=True):
                doc.metadata["quality"] = score
                self.stat_update("scored" if score is not None else "unscored")
                yield doc


def quality_steps(
    config: QualityConfig | None, workspace: Workspace, sources: list | None = None
) -> list:
    """Verification, then scoring. Without a model one is trained first: from `train`, else from
    the recipe's `sources` by tag, else (no sources given) from the first records of the stream."""
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
