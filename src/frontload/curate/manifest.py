"""A corpus's manifest: counts, tokens, domain mix, quantiles, diversity, pool version (DuckDB)."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from frontload.errors import StageNotReady
from frontload.filecheck import check_files
from frontload.workspace import Workspace

VOCAB_SAMPLE = 2000  # records whose words measure vocabulary entropy (fixed, so corpora compare)


def pool_version(workspace: Workspace) -> str:
    """Short hash of the pool's part names, sizes and row counts: changes whenever the pool does."""
    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    for path in sorted(workspace.pool_dir.glob("*.parquet")):
        rows = pq.ParquetFile(path).metadata.num_rows
        digest.update(f"{path.name}:{path.stat().st_size}:{rows}\n".encode())
    return digest.hexdigest()[:16]


def quality_model(workspace: Workspace) -> dict[str, str] | None:
    """The workspace quality model's path and sha256: seeded single-threaded training makes it the
    same for the same input, so two manifests show whether their pools were scored alike."""
    path = workspace.models_dir / "quality.bin"
    if not path.is_file():
        return None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"path": str(path.relative_to(workspace.root)), "sha256": digest}


def _entropy(counts: list[int]) -> float:
    total = sum(counts)
    if not total:
        return 0.0
    return float(-sum(c / total * math.log2(c / total) for c in counts if c)) + 0.0


def _quantiles(values: list | None) -> dict[str, float | None]:
    values = values or [None, None, None]
    return {
        key: (None if value is None else round(float(value), 6))
        for key, value in zip(("p10", "p50", "p90"), values, strict=True)
    }


def corpus_stats(connection, records: str, texts: str) -> dict[str, Any]:
    """Every number of the manifest, in DuckDB: `records` is a relation with the metadata
    columns, `texts` one with the `text` of a fixed sample (VOCAB_SAMPLE records by id hash)."""
    (records_n, tokens, answer_tokens, clusters, quality, lengths) = connection.execute(
        "SELECT count(*), coalesce(sum(total_tokens), 0), coalesce(sum(answer_tokens), 0), "
        "count(DISTINCT coalesce(dup_cluster, id)), quantile_cont(quality, [0.1, 0.5, 0.9]), "
        f"quantile_cont(answer_tokens, [0.1, 0.5, 0.9]) FROM {records}"
    ).fetchall()[0]
    by_domain = connection.execute(
        f"SELECT domain, count(*), coalesce(sum(total_tokens), 0) FROM {records} "
        "GROUP BY domain ORDER BY domain"
    ).fetchall()
    words = connection.execute(
        "SELECT count(*) FROM (SELECT unnest(regexp_split_to_array(lower(text), '\\s+')) AS w "
        f"FROM {texts}) WHERE w <> '' GROUP BY w"
    ).fetchall()
    return {
        "records": int(records_n),
        "tokens": int(tokens),
        "answer_tokens": int(answer_tokens),
        "domain_mix": {d: round(n / records_n, 6) for d, n, _ in by_domain} if records_n else {},
        "domain_tokens": {d: int(t) for d, _, t in by_domain},
        "quality_quantiles": _quantiles(quality),
        "answer_tokens_quantiles": _quantiles(lengths),
        "diversity": {
            "clusters_per_1k": round(1000 * clusters / records_n, 3) if records_n else 0.0,
            "domain_entropy": round(_entropy([n for _, n, _ in by_domain]), 6),
            "vocab_entropy": round(_entropy([n for (n,) in words]), 6),
        },
    }


def make_manifest(
    name: str, rule: dict[str, Any], stats: dict[str, Any], version: str, **extra: Any
) -> dict[str, Any]:
    """The manifest in the key order of docs/interfaces.md, then extras (thresholds, counts)."""
    return {
        "name": name,
        "rule": rule,
        **stats,
        "pool_version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Atomic write (tmp then rename), one JSON object so DuckDB reads it as one row."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


def read_manifest(workspace: Workspace, name: str) -> dict[str, Any]:
    """A corpus manifest; a clear error when the corpus has not been built."""

    path = workspace.corpus_dir(name) / "manifest.json"
    if not path.is_file():
        built = sorted(p.parent.name for p in workspace.corpora_dir.glob("*/manifest.json"))
        raise StageNotReady(
            f"corpus {name!r} has no manifest at {path}",
            f"built corpora: {', '.join(built) or 'none'}; run `fl curate corpora`",
        )

    check_files([path])  # a truncated or foreign manifest: one line naming it
    return json.loads(path.read_text(encoding="utf-8"))
