"""Paths inside a workspace and the DuckDB catalog: views over the files every stage writes.

Files are the source of truth; the catalog only holds views over them, so `refresh()` can always
rebuild it. A stage writes its files where the paths below say and calls `Catalog.refresh()`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from frontload.errors import ConfigError, DataError

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


PARQUET_MAGIC = b"PAR1"


def unreadable(path: Path) -> str | None:
    """Why a catalog file cannot be read (None when it looks whole): a cheap check of parquet
    magic bytes at both ends, or a JSON parse, so one bad file is named instead of a DuckDB
    traceback from whichever query touches it first."""
    try:
        if path.suffix == ".parquet":
            size = path.stat().st_size
            with open(path, "rb") as handle:
                head = handle.read(4)
                handle.seek(max(0, size - 4))
                tail = handle.read(4)
            if size < 12 or head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
                return "not a whole parquet file (truncated, or not parquet)"
            if _holds_records(path):
                return _foreign_records(path)
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".jsonl":  # metrics logs grow long: a cut shows in the last line
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            for line in lines[:1] + lines[-1:]:
                json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "not valid JSON"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    return None


def _holds_records(path: Path) -> bool:
    """pool/*.parquet, removed/<step>/*.parquet and corpora/<name>/*.parquet hold curated records."""
    parent = path.parent
    return parent.name == "pool" or parent.parent.name in ("removed", "corpora")


def _foreign_records(path: Path) -> str | None:
    """A whole parquet file among curated records that is not one (e.g. a raw dump copied in):
    DuckDB's union_by_name would otherwise fold its rows into the view with empty columns."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception:  # pyarrow raises ArrowInvalid/OSError for a damaged footer
        return "not a whole parquet file (truncated, or not parquet)"
    column = "reason" if path.parent.parent.name == "removed" else "id"
    if column not in names:
        return f"not curated records (no `{column}` column; has {', '.join(names[:6])})"
    return None


def unreadable_advice(path: Path) -> str:
    """What to do about a bad file, by the workspace folder it sits in."""
    reruns = {
        "pool": "rerun `fl curate run RECIPE.yaml`",
        "removed": "rerun `fl curate run RECIPE.yaml`",
        "curate": "rerun `fl curate run RECIPE.yaml`",
        "corpora": "rerun `fl curate corpora`",
        "tokens": "rerun `fl data tokenize`",
    }
    folder = next((part for part in reversed(path.parts[:-1]) if part in reruns), None)
    rerun = reruns.get(folder, "rerun the stage that wrote it")
    return (
        f"move or delete the file, then {rerun}; `fl stats rebuild` skips it with a warning "
        "meanwhile"
    )


def check_files(paths: list[Path]) -> None:
    """Raise DataError naming the first unreadable file (for stages that read files directly)."""
    for path in paths:
        why = unreadable(path)
        if why:
            raise DataError(f"{path}: {why}", unreadable_advice(path))


ROOT_TABLE = "fl_catalog"  # one row: the workspace folder the views were built for


class Catalog:
    """Owns the DuckDB connection to `catalog.duckdb` and keeps its views in step with the files.

    Views name their files by absolute path, so the catalog opens from any working folder, in
    any DuckDB client (`duckdb.connect("ws/catalog.duckdb")`, the `duckdb` shell): DuckDB resolves
    a view's relative paths against the process's working folder, which is why they are not
    used. The table `fl_catalog` records the folder the views were built for; opening a catalog
    whose workspace has since moved or been copied rebuilds the views for the files beside it, so
    a copy never reads the original's files once fl has opened it. `refresh()` (run by every
    command that reads the catalog) recreates the views; fl's own connections also set
    `file_search_path` to the workspace, so ad-hoc relative paths in `fl stats` resolve there.
    """

    def __init__(
        self,
        workspace: Workspace,
        read_only: bool = False,
        threads: int | None = None,
        strict: bool = True,
    ):
        import duckdb

        self.workspace = workspace.ensure()
        self.strict = strict
        self.skipped: list[tuple[Path, str]] = []  # files left out of views (strict=False)
        self.connection = duckdb.connect(str(workspace.catalog_path), read_only=read_only)
        root = str(workspace.root).replace("'", "''")
        self.connection.execute(f"SET file_search_path = '{root}'")
        if threads:
            self.connection.execute(f"SET threads = {int(threads)}")
        self.connection.execute(f"SET temp_directory = '{workspace.root / '.duckdb_tmp'}'")
        built_for = self.built_for()
        if built_for != str(self.workspace.root):
            if not read_only:
                self.refresh()  # new, moved or copied: point the views at the files beside it
            elif built_for is not None:
                self.close()
                raise DataError(
                    f"{workspace.catalog_path}: its views point into {built_for}, not this "
                    "workspace (moved or copied)",
                    f"open it once without read-only, e.g. `fl stats views -w {workspace.root}`",
                )

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def built_for(self) -> str | None:
        """The workspace folder the stored views point into (None before the first refresh)."""
        found = self.connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'",
            [ROOT_TABLE],
        ).fetchall()  # fetchall: DuckDB refuses further work on a half-read result
        if not found[0][0]:
            return None
        rows = self.connection.execute(f"SELECT root FROM {ROOT_TABLE}").fetchall()
        return rows[0][0] if rows else None

    def refresh(self) -> list[str]:
        """(Re)create every view whose files exist, one view per corpus too; returns view names.

        A corrupt or foreign file raises DataError naming it; with `strict=False` it is left out
        of its view and listed in `self.skipped` instead.
        """
        self.skipped = []
        created = []
        for spec in VIEWS:
            if self._create_view(spec.name, spec.glob, spec.reader):
                created.append(spec.name)
        corpora = self.workspace.corpora_dir
        if corpora.is_dir():
            for folder in sorted(p for p in corpora.iterdir() if p.is_dir()):
                if folder.name.startswith("."):  # a corpus build in progress
                    continue
                glob = f"corpora/{folder.name}/*.parquet"
                if self._create_view(f"corpus_{folder.name}", glob, "read_parquet"):
                    created.append(f"corpus_{folder.name}")
        self.connection.execute(
            f"CREATE OR REPLACE TABLE {ROOT_TABLE} AS SELECT ?::VARCHAR AS root, "
            "current_timestamp AS refreshed",
            [str(self.workspace.root)],
        )
        return created

    def _create_view(self, name: str, glob: str, reader: str) -> bool:
        root = self.workspace.root
        files = sorted(root.glob(glob))
        bad = [(path, why) for path in files if (why := unreadable(path))]
        if self.strict:
            check_files([path for path, _ in bad[:1]])
        self.skipped += bad
        good = [path for path in files if path not in {p for p, _ in bad}]
        if not good:
            self.connection.execute(f'DROP VIEW IF EXISTS "{name}"')
            return False

        def quoted(text: str) -> str:
            return "'" + text.replace("'", "''") + "'"

        if bad or any(char in str(root) for char in "*?[{"):  # a glob must not see the root
            source = "[" + ", ".join(quoted(str(p)) for p in good) + "]"
        else:
            source = quoted(str(root / glob))
        options = ", union_by_name = true, filename = true"
        self.connection.execute(
            f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM {reader}({source}{options})'
        )
        return True

    def query(self, sql: str, params: list | None = None):
        """Run SQL and return a pyarrow Table (an empty table for statements without rows)."""
        import pyarrow as pa

        relation = self.connection.sql(sql, params=params or None)
        return relation.to_arrow_table() if relation is not None else pa.table({})
