"""The DuckDB catalog: views over the files every stage writes (`fl stats`).

Files are the source of truth; the catalog only holds views over them, so `refresh()` can always
rebuild it. A view is created only when its glob matches a file; an unreadable file is named
(`filecheck.py`) instead of failing whichever query touches it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from frontload.errors import DataError
from frontload.filecheck import check_files, unreadable
from frontload.workspace import Workspace


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
