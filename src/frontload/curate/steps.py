"""Datatrove building blocks shared by the curation steps: the record <-> Document mapping, the
source reader, normalisation, and the parquet writers for the pool, staging and removed records.

Inside datatrove a record is `Document(text=record text, id=record id, metadata=every other field)`.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.parquet import ParquetWriter

from frontload.curate.mapping import RecordError, map_records
from frontload.curate.readers import Malformed, SourceFile, iter_raw
from frontload.curate.recipe import NormaliseConfig
from frontload.curate.schema import COLUMNS, RECORD_SCHEMA

METADATA_COLUMNS = tuple(name for name in COLUMNS if name not in ("id", "text"))
REMOVED_SCHEMA = RECORD_SCHEMA.append(pa.field("step", pa.string())).append(
    pa.field("reason", pa.string())
)
MALFORMED_SCHEMA = pa.schema(
    [
        ("step", pa.string()),
        ("reason", pa.string()),
        ("source", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("raw", pa.string()),
    ]
)
MAX_RAW_CHARS = 4000
DROP_KEY = "_drop_reason"  # set by the reader on a generation its source's policy drops


def record_id(source: str, prompt: str, response: str, text: str) -> str:
    """Stable id: a hash of the source name and the normalised content."""
    digest = hashlib.blake2b(digest_size=12)
    for part in (source, prompt, response, text):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def record_from_doc(doc: Document) -> dict[str, Any]:
    """A Document as a row of RECORD_SCHEMA."""
    row = {name: doc.metadata.get(name) for name in METADATA_COLUMNS}
    row["id"], row["text"] = doc.id, doc.text
    if row["dup_cluster"] is not None:
        row["dup_cluster"] = str(row["dup_cluster"])
    return row


def doc_from_record(row: dict[str, Any]) -> Document:
    """A RECORD_SCHEMA row as a Document."""
    metadata = {name: row.get(name) for name in METADATA_COLUMNS}
    return Document(text=row["text"] or "", id=row["id"], metadata=metadata)


class RecordWriter(ParquetWriter):
    """Parquet with the record schema (pool, staging) or plus `step` and `reason` (removed)."""

    name = "💾 records"

    def __init__(self, folder: str | Path, step: str | None = None, default_reason: str = ""):
        super().__init__(
            str(folder),
            output_filename="${rank}.parquet",
            schema=REMOVED_SCHEMA if step else RECORD_SCHEMA,
            max_file_size=-1,
            use_content_defined_chunking=False,
            write_page_index=False,
        )
        self.step = step
        self.default_reason = default_reason
        self.adapter = self._to_row

    def _to_row(self, doc: Document) -> dict[str, Any]:
        row = record_from_doc(doc)
        if self.step:
            row["step"] = self.step
            row["reason"] = doc.metadata.get("filter_reason") or self.default_reason
        return row


class StagedReader(PipelineStep):
    """Reads back the parquet a previous stage wrote for the same rank (same order, same split)."""

    type = "📖 - READER"
    name = "staged records"

    def __init__(self, folder: str | Path):
        super().__init__()
        self.folder = Path(folder)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        import pyarrow.parquet as pq

        path = self.folder / f"{rank:05d}.parquet"
        if not path.exists():  # the rank had no records left
            return
        for batch in pq.ParquetFile(path).iter_batches(batch_size=2048):
            for row in batch.to_pylist():
                self.stat_update("documents")
                yield doc_from_record(row)


def write_parquet_atomic(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> None:
    """Write a small parquet file via a temporary name so a killed task never leaves half a file."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    tmp.replace(path)


class SourceReader(PipelineStep):
    """Reads this rank's share of every input file (every world_size-th record, so each task sees
    every source); malformed records go to removed/malformed/."""

    type = "📖 - READER"
    name = "read"

    def __init__(self, files: list[SourceFile], malformed_dir: str | Path):
        super().__init__()
        self.files = files
        self.malformed_dir = Path(malformed_dir)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        malformed: list[dict[str, Any]] = []
        for file in self.files:
            source, mapping = file.source, file.source.mapping()
            for line, raw in iter_raw(file, rank, world_size):
                self.stat_update("total")
                if isinstance(raw, dict):
                    group = f"{file.location}:{line}" if mapping.explode else ""
                    try:
                        records = map_records(raw, source, group, mapping)
                    except RecordError as error:
                        raw = Malformed(file.location, line, str(error), repr(raw))
                if isinstance(raw, Malformed):
                    self.stat_update("dropped", f"dropped_{_reason_key(raw.reason)}")
                    malformed.append(_malformed_row(raw, source.name))
                    continue
                self.stat_update("forwarded", value=len(records))
                for fields, keep in records:
                    metadata = {name: None for name in METADATA_COLUMNS}
                    metadata.update(fields, source=source.name, domain=source.domain)
                    metadata.update(tags=list(source.tags), contaminated=[])
                    if not keep:
                        metadata[DROP_KEY] = "unverified_generation"
                    yield Document(text=fields["text"], id="", metadata=metadata)
        if malformed:
            write_parquet_atomic(
                malformed, MALFORMED_SCHEMA, self.malformed_dir / f"{rank:05d}.parquet"
            )


def _malformed_row(item: Malformed, source: str) -> dict[str, Any]:
    return {
        "step": "malformed",
        "reason": item.reason,
        "source": source,
        "file": item.file,
        "line": item.line,
        "raw": item.raw[:MAX_RAW_CHARS],
    }


def _reason_key(reason: str) -> str:
    """A short counter name for a malformed-record reason."""
    for key in ("not UTF-8", "invalid JSON", "not a JSON object", "missing", "null"):
        if key in reason:
            return key.lower().replace(" ", "_").replace("-", "")
    return "bad_field"


BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")
TRAILING_SPACE = re.compile(r"[ \t]+\n")
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\x00"))


def normalise_text(text: str, config: NormaliseConfig) -> str:
    """Unicode normal form, no invisible characters, unix newlines, no trailing spaces."""
    if config.unicode_form != "none":
        text = unicodedata.normalize(config.unicode_form, text)
    text = text.translate(INVISIBLE).replace("\r\n", "\n").replace("\r", "\n")
    text = TRAILING_SPACE.sub("\n", text)
    if config.collapse_blank_lines:
        text = BLANK_LINES.sub("\n\n", text)
    return text.strip()


class Normalise(PipelineStep):
    """Normalises prompt, response, text and chat turns, then sets the stable id."""

    type = "🔨 - FORMAT"
    name = "normalise"

    def __init__(self, config: NormaliseConfig):
        super().__init__()
        self.config = config

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        for doc in data:
            meta = doc.metadata
            with self.track_time():
                for key in ("prompt", "response"):
                    meta[key] = normalise_text(meta[key] or "", self.config)
                if meta.get("reasoning"):
                    meta["reasoning"] = normalise_text(meta["reasoning"], self.config)
                if meta.get("messages"):
                    for turn in meta["messages"]:
                        turn["content"] = normalise_text(turn["content"], self.config)
                doc.text = normalise_text(doc.text, self.config)
                doc.id = record_id(meta["source"], meta["prompt"], meta["response"], doc.text)
            self.stat_update("total", "forwarded")
            yield doc
