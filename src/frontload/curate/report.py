"""Corpus reports: manifests side by side, and answer-length / quality histograms as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frontload.curate.manifest import read_manifest
from frontload.errors import ConfigError, StageNotReady
from frontload.workspace import Workspace

ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("records", ("records",)),
    ("tokens", ("tokens",)),
    ("answer_tokens", ("answer_tokens",)),
    ("quality p10", ("quality_quantiles", "p10")),
    ("quality p50", ("quality_quantiles", "p50")),
    ("quality p90", ("quality_quantiles", "p90")),
    ("answer_tokens p10", ("answer_tokens_quantiles", "p10")),
    ("answer_tokens p50", ("answer_tokens_quantiles", "p50")),
    ("answer_tokens p90", ("answer_tokens_quantiles", "p90")),
    ("clusters per 1k", ("diversity", "clusters_per_1k")),
    ("domain entropy (bits)", ("diversity", "domain_entropy")),
    ("vocab entropy (bits)", ("diversity", "vocab_entropy")),
    ("pool version", ("pool_version",)),
    ("created", ("created",)),
)


def built_corpora(workspace: Workspace) -> list[str]:
    """Names of the corpora that have a manifest, sorted."""
    return sorted(p.parent.name for p in workspace.corpora_dir.glob("*/manifest.json"))


def _get(manifest: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = manifest
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def compare_table(manifests: dict[str, dict[str, Any]]):
    """A pyarrow table: one row per figure, one column per corpus (domain shares included)."""
    import pyarrow as pa

    domains = sorted({d for m in manifests.values() for d in m.get("domain_mix", {})})
    rows = list(ROWS[:3])
    rows += [(f"share {d}", ("domain_mix", d)) for d in domains]
    rows += list(ROWS[3:])
    columns: dict[str, list[str]] = {"figure": [label for label, _ in rows]}
    for name, manifest in manifests.items():
        columns[name] = [_cell(_get(manifest, path)) for _, path in rows]
    return pa.table(columns)


def load_manifests(workspace: Workspace, names: list[str] | None) -> dict[str, dict[str, Any]]:
    """Manifests of `names` (default: every built corpus); clear error when none are built."""
    names = names or built_corpora(workspace)
    if not names:
        raise StageNotReady(
            f"no corpora in {workspace.corpora_dir}",
            "run `fl curate corpora` (after `fl curate run`)",
        )
    return {name: read_manifest(workspace, name) for name in names}


def draw_histograms(
    workspace: Workspace, names: list[str] | None, out_dir: Path | None = None, bins: int = 40
) -> list[Path]:
    """One PNG per corpus: answer_tokens (log scale) and quality histograms; returns the paths."""
    import duckdb
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    manifests = load_manifests(workspace, names)
    out_dir = out_dir or workspace.reports_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot create the report folder {out_dir}: {error.strerror}", "pick another --out"
        ) from error
    connection = duckdb.connect()
    written = []
    try:
        for name, manifest in manifests.items():
            pattern = str(workspace.corpus_dir(name) / "*.parquet").replace("'", "''")
            table = connection.execute(
                f"SELECT answer_tokens, quality FROM read_parquet('{pattern}')"
            ).fetchnumpy()
            figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
            lengths = np.asarray(table["answer_tokens"], dtype=float)
            lengths = lengths[~np.isnan(lengths)]
            if lengths.size:
                edges = np.logspace(0, np.log10(max(lengths.max(), 10) + 1), bins)
                left.hist(np.maximum(lengths, 1), bins=edges, color="tab:blue")
                left.set_xscale("log")
            left.set_xlabel("answer_tokens")
            left.set_ylabel("records")
            quality = np.asarray(table["quality"], dtype=float)
            quality = quality[~np.isnan(quality)]
            if quality.size:
                right.hist(quality, bins=np.linspace(0, 1, bins), color="tab:green")
            right.set_xlabel("quality (P(high quality))")
            figure.suptitle(
                f"{name}: {manifest['records']:,} records, {manifest['tokens']:,} tokens"
            )
            figure.tight_layout()
            path = out_dir / f"corpora_{name}.png"
            figure.savefig(path, dpi=110)
            plt.close(figure)
            written.append(path)
    finally:
        connection.close()
    (out_dir / "corpora.md").write_text(markdown(compare_table(manifests)), encoding="utf-8")
    return written


def markdown(table) -> str:
    """A pyarrow table as a GitHub markdown table."""
    lines = ["| " + " | ".join(table.column_names) + " |"]
    lines.append("|" + "---|" * table.num_columns)
    for row in table.to_pylist():
        lines.append("| " + " | ".join(str(v) for v in row.values()) + " |")
    return "\n".join(lines) + "\n"
