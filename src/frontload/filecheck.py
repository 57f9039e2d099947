"""File checks: whether a workspace file is whole before DuckDB (or a stage) reads it, and what to
do about one that is not."""

from __future__ import annotations

import json
from pathlib import Path

from frontload.errors import DataError

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
