"""Paths inside a workspace: where every stage reads and writes its files.

Files are the source of truth; the catalog (`catalog.py`) only holds views over them. A stage
writes its files where the paths below say and calls `Catalog.refresh()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from frontload.errors import ConfigError

DEFAULT_WORKSPACE = "fl-workspace"
WORKSPACE_ENV = "FL_WORKSPACE"


@dataclass(frozen=True)
class Workspace:
    """One folder holding every stage's inputs and outputs."""

    root: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> Workspace:
        """`--workspace`, else `$FL_WORKSPACE`, else `./fl-workspace`."""
        chosen = path or os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE
        root = Path(chosen).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise ConfigError(f"workspace {root} exists and is not a folder")
        return cls(root)

    def ensure(self) -> Workspace:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    # Curation
    @property
    def pool_dir(self) -> Path:
        return self.root / "pool"

    @property
    def removed_dir(self) -> Path:
        return self.root / "removed"

    @property
    def curate_state_dir(self) -> Path:
        """Datatrove logging folders, completion markers and per-step stats."""
        return self.root / "curate"

    @property
    def corpora_dir(self) -> Path:
        return self.root / "corpora"

    def corpus_dir(self, name: str) -> Path:
        return self.corpora_dir / name.lower()

    @property
    def models_dir(self) -> Path:
        """Small auxiliary models (quality classifiers)."""
        return self.root / "models"

    # Tokens
    @property
    def tokenizer_dir(self) -> Path:
        """The workspace tokenizer (a PreTrainedTokenizerFast folder)."""
        return self.root / "tokenizer"

    @property
    def tokens_dir(self) -> Path:
        return self.root / "tokens"

    # Allocation, training, evaluation
    @property
    def plans_dir(self) -> Path:
        return self.root / "plans"

    @property
    def runs_dir(self) -> Path:
        """One folder per training run: checkpoints, metrics.jsonl, exports."""
        return self.root / "runs"

    @property
    def evals_dir(self) -> Path:
        """One folder per evaluation run: samples.parquet, summary.json."""
        return self.root / "evals"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"
