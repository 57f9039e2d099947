"""Paths inside a workspace and the DuckDB catalog: views over the files every stage writes.

Files are the source of truth; the catalog only holds views over them, so `refresh()` can always
rebuild it. A stage writes its files where the paths below say and calls `Catalog.refresh()`.
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


@dataclass(frozen=True)
class ViewSpec:
    """A catalog view: a glob under the workspace and the DuckDB reader for it."""

    name: str
    glob: str
    reader: str  # read_parquet | read_json_auto
    description: str


# Every stage's files, by convention. A view is created only when its glob matches a file.
VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec("pool", "pool/*.parquet", "read_parquet", "the curated pool, one row per record"),
    ViewSpec(
        "removed",
        "removed/*/*.parquet",
        "read_parquet",
        "records removed by a curation step, with step and reason",
    ),
    ViewSpec(
        "curate_steps",
        "curate/stats/*.jsonl",
        "read_json_auto",
        "per-step kept/removed counts of curation runs",
    ),
    ViewSpec(
        "corpora_manifest",
        "corpora/*/manifest.json",
        "read_json_auto",
        "one row per corpus manifest",
    ),
    ViewSpec("tokens_manifest", "tokens/*/manifest.json", "read_json_auto", "token datasets"),
    ViewSpec(
        "plans", "plans/*.json", "read_json_auto", "allocation plans (JSON twin of plan.yaml)"
    ),
    ViewSpec(
        "train_metrics",
        "runs/*/metrics.jsonl",
        "read_json_auto",
        "training metrics, one row per logged step (column `run` names the run)",
    ),
    ViewSpec(
        "train_blend",
        "runs/*/served.jsonl",
        "read_json_auto",
        "tokens each training run really served, per phase and corpus (with its plan and hash)",
    ),
    ViewSpec(
        "eval_samples",
        "evals/*/samples*.parquet",
        "read_parquet",
        "evaluation samples: prompt, completion, answer, verdict",
    ),
    ViewSpec(
        "eval_summary",
        "evals/*/summary.json",
        "read_json_auto",
        "one row per evaluation run and task",
    ),
)


class Catalog:
    """Owns the DuckDB connection to `catalog.duckdb` and keeps its views in step with the files."""

    def __init__(self, workspace: Workspace, read_only: bool = False, threads: int | None = None):
        import duckdb

        self.workspace = workspace.ensure()
        self.connection = duckdb.connect(str(workspace.catalog_path), read_only=read_only)
        if threads:
            self.connection.execute(f"SET threads = {int(threads)}")
        self.connection.execute(f"SET temp_directory = '{workspace.root / '.duckdb_tmp'}'")

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def refresh(self) -> list[str]:
        """(Re)create every view whose files exist, one view per corpus too; returns view names."""
        created = []
        for spec in VIEWS:
            if self._create_view(spec.name, spec.glob, spec.reader):
                created.append(spec.name)
        corpora = self.workspace.corpora_dir
        if corpora.is_dir():
            for folder in sorted(p for p in corpora.iterdir() if p.is_dir()):
                glob = f"corpora/{folder.name}/*.parquet"
                if self._create_view(f"corpus_{folder.name}", glob, "read_parquet"):
                    created.append(f"corpus_{folder.name}")
        return created

    def _create_view(self, name: str, glob: str, reader: str) -> bool:
        if not any(self.workspace.root.glob(glob)):
            self.connection.execute(f'DROP VIEW IF EXISTS "{name}"')
            return False
        pattern = str(self.workspace.root / glob).replace("'", "''")
        options = ", union_by_name = true, filename = true"
        self.connection.execute(
            f"CREATE OR REPLACE VIEW \"{name}\" AS SELECT * FROM {reader}('{pattern}'{options})"
        )
        return True

    def query(self, sql: str, params: list | None = None):
        """Run SQL and return a pyarrow Table (an empty table for statements without rows)."""
        import pyarrow as pa

        relation = self.connection.sql(sql, params=params or None)
        return relation.to_arrow_table() if relation is not None else pa.table({})
