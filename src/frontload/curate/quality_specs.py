"""Example specs for the quality classifier: files/globs, `sql:` pool queries, recipe sources.

A spec is a file path or glob (jsonl, jsonl.gz or parquet with a text field), a pool query
(`sql:SELECT text FROM pool WHERE verified AND answer_tokens > 1000`), a recipe source
(`source:NAME`) or the recipe sources with a tag (`tag:curated`), read as the pipeline reads them.
"""

from __future__ import annotations

import glob
import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from frontload.benchdata import expand_shipped
from frontload.curate.readers import Malformed, RecordError, iter_raw, map_records, resolve_sources
from frontload.errors import ConfigError, InputError, StageNotReady
from frontload.workspace import Workspace

SQL_PREFIX = "sql:"
SOURCE_PREFIX = "source:"
TAG_PREFIX = "tag:"


def _record_text(record: dict[str, Any], field: str, source: str) -> str | None:
    value = record.get(field)
    if value is None and field == "text" and ("prompt" in record or "response" in record):
        value = "\n\n".join(str(record.get(k) or "") for k in ("prompt", "response"))
    if value is None:
        raise InputError(
            f"{source}: no field {field!r} (fields: {', '.join(sorted(record))})",
            "pass --text-field with the field holding the text",
        )
    return str(value)


def _read_file(path: Path, field: str, limit: int) -> Iterator[str]:
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            file = pq.ParquetFile(path)
        except Exception as error:
            raise InputError(f"{path}: not a readable parquet file ({error})") from error
        columns = file.schema_arrow.names
        if field not in columns:
            raise InputError(f"{path}: no column {field!r} (columns: {', '.join(columns)})")
        count = 0
        for batch in file.iter_batches(columns=[field], batch_size=4096):
            for value in batch.column(0).to_pylist():
                if count >= limit:
                    return
                count += 1
                yield value or ""
        return
    if not (name.endswith(".jsonl") or name.endswith(".jsonl.gz") or name.endswith(".json")):
        raise InputError(f"{path}: unsupported format", "use .jsonl, .jsonl.gz or .parquet")
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if number > limit:
                return
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path}:{number}: invalid JSON ({error.msg})") from error
            yield _record_text(record, field, f"{path}:{number}")


def _read_pool_query(sql: str, workspace: Workspace, limit: int) -> Iterator[str]:
    import duckdb
    import pyarrow as pa

    pool = sorted(workspace.pool_dir.glob("*.parquet"))
    if not pool:
        raise StageNotReady(
            f"spec {SQL_PREFIX}{sql}: the workspace has no pool yet",
            "run `fl curate run` first, or use file specs",
        )
    connection = duckdb.connect()
    pattern = str(workspace.pool_dir / "*.parquet").replace("'", "''")
    connection.execute(f"CREATE VIEW pool AS SELECT * FROM read_parquet('{pattern}')")
    try:
        table = connection.sql(sql).limit(limit).to_arrow_table()
    except duckdb.Error as error:
        raise ConfigError(f"spec {SQL_PREFIX}{sql}: query failed: {error}") from error
    finally:
        connection.close()
    column = "text" if "text" in table.column_names else table.column_names[0]
    values = table.column(column)
    kind = values.type
    if not (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    ):
        raise ConfigError(
            f"spec {SQL_PREFIX}{sql}: column {column!r} is {kind}, not text",
            "select the text, e.g. SELECT text FROM pool WHERE ...",
        )
    yield from (value or "" for value in values.to_pylist())


def _read_sources(spec: str, sources: list | None, workspace: Workspace, limit: int):
    """Texts of recipe sources (`source:NAME` or `tag:TAG`), read and mapped as the pipeline does,
    an equal share of `limit` from each chosen source."""

    kind, _, name = spec.partition(":")
    chosen = [s for s in sources or [] if (s.name == name if kind == "source" else name in s.tags)]
    if not chosen and (kind == "source" or not sources):
        known = ", ".join(s.name for s in sources or []) or "none (pass --recipe)"
        raise ConfigError(f"spec {spec}: matches no source of the recipe", f"sources: {known}")
    share = -(-limit // max(1, len(chosen)))
    for source in chosen:
        count = 0
        for file in resolve_sources([source], workspace.root):
            mapping = file.source.mapping()
            for _, raw in iter_raw(file):
                if count >= share:
                    break
                if isinstance(raw, Malformed):
                    continue
                try:
                    records = map_records(raw, source, "", mapping)
                except RecordError:
                    continue
                for record, keep in records:  # one per generation of an exploded row
                    if keep and count < share:
                        yield record["text"]
                        count += 1


def read_spec(
    spec: str,
    workspace: Workspace,
    field: str = "text",
    limit: int = 10**9,
    sources: list | None = None,
) -> Iterator[str]:
    """Texts of one spec (file, glob, `shipped:NAME`, `sql:` pool query, `source:` recipe source),
    at most `limit`."""
    if spec.startswith(SQL_PREFIX):
        yield from _read_pool_query(spec[len(SQL_PREFIX) :], workspace, limit)
        return
    if spec.startswith((SOURCE_PREFIX, TAG_PREFIX)):
        yield from _read_sources(spec, sources, workspace, limit)
        return
    spec = expand_shipped(spec)
    paths = sorted(Path(p) for p in glob.glob(spec, recursive=True)) or [Path(spec)]
    for path in paths:
        if not path.is_file():
            raise InputError(f"{spec}: no such file", "check the path or glob")
        yield from _read_file(path, field, limit)


def read_specs(
    specs: Iterable[str], workspace: Workspace, field: str, limit: int, sources: list | None = None
) -> list[str]:
    """All non-empty texts of several specs, up to `limit` in total."""
    texts: list[str] = []
    for spec in specs:
        for text in read_spec(spec, workspace, field, limit - len(texts), sources):
            if text.strip():
                texts.append(text)
            if len(texts) >= limit:
                return texts
    return texts
