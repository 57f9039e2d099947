"""`fl run` never replaces what another pipeline (or a hand-run stage) left in a workspace unasked.

A pipeline owns a workspace once its `pipeline/<name>/state.json` exists. Before that, any
curated pool, corpora, token datasets, training runs or other pipelines' folders are someone
else's results; the run refuses and lists them unless given `--force`.
"""

from __future__ import annotations

from pathlib import Path

from frontload.errors import ConfigError
from frontload.workspace import Workspace


def foreign_results(workspace: Workspace, pipeline: str) -> list[str]:
    """What `fl run` of `pipeline` would replace or mix with in `workspace` (empty when none)."""
    root = workspace.root
    if (root / "pipeline" / pipeline / "state.json").is_file():
        return []  # this pipeline's own workspace: resume
    found: list[str] = []
    others = root / "pipeline"
    if others.is_dir():
        found += [f"pipeline {p.name!r}" for p in sorted(others.iterdir()) if p.name != pipeline]

    def count(folder: Path, pattern: str) -> int:
        return len(list(folder.glob(pattern))) if folder.is_dir() else 0

    if samples := count(root / "sample", "**/*.*"):
        found.append(f"a raw sample ({samples} files in sample/)")
    if pool := count(workspace.pool_dir, "*.parquet"):
        found.append(f"the curated pool ({pool} files in pool/)")
    if corpora := count(workspace.corpora_dir, "*/manifest.json"):
        found.append(f"{corpora} corpora")
    if tokens := count(workspace.tokens_dir, "*/manifest.json"):
        found.append(f"{tokens} token datasets")
    if (workspace.tokenizer_dir / "tokenizer.json").is_file():
        found.append("the workspace tokenizer")
    if runs := count(workspace.runs_dir, "*"):
        found.append(f"{runs} training runs")
    return found


def check_workspace(workspace: Workspace, pipeline: str, force: bool) -> None:
    """Raise ConfigError naming what would be replaced, unless `force`."""
    found = foreign_results(workspace, pipeline)
    if found and not force:
        raise ConfigError(
            f"workspace {workspace.root} holds results that pipeline {pipeline!r} would replace: "
            + ", ".join(found),
            "use another -w/--workspace, or pass --force to replace them",
        )
