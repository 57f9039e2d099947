"""Streaming text out of workspace corpora, for tokenizer training and compression measurements."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from frontload.errors import StageNotReady
from frontload.workspace import Workspace

BATCH_ROWS = 1024


def corpus_files(workspace: Workspace, name: str) -> list[Path]:
    """The corpus's part files; a corpus with none is not built yet."""
    folder = workspace.corpus_dir(name)
    files = sorted(folder.glob("part-*.parquet"))
    if not files:
        raise StageNotReady(
            f"corpus {name!r} has no part-*.parquet files in {folder}",
            hint="build the corpora first: `fl curate corpora`",
        )
    return files


TEXT_COLUMNS = ("text", "prompt", "response", "messages")


def record_text(record: dict) -> str:
    """`text`, else prompt and response, else the messages' contents (what pretraining sees)."""
    if record.get("text"):
        return record["text"]
    parts = [record.get("prompt") or "", record.get("response") or ""]
    if not any(parts):
        parts = [m.get("content") or "" for m in record.get("messages") or []]
    return "\n".join(p for p in parts if p)


def batch_texts(batch) -> list[str]:
    """`record_text` of every row of a pyarrow RecordBatch; other columns read only when needed."""
    names = batch.schema.names
    texts = batch.column("text").to_pylist() if "text" in names else [None] * batch.num_rows
    if all(texts):
        return texts
    others = [n for n in TEXT_COLUMNS[1:] if n in names]
    columns = {n: batch.column(n).to_pylist() for n in others}
    return [text or record_text({n: columns[n][i] for n in others}) for i, text in enumerate(texts)]


def _file_texts(path: Path) -> Iterator[str]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    columns = [c for c in TEXT_COLUMNS if c in handle.schema_arrow.names]
    for batch in handle.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        for text in batch_texts(batch):
            if text:
                yield text


def corpus_texts(workspace: Workspace, names: list[str]) -> Iterator[str]:
    """Texts of several corpora interleaved record by record, so a size cap samples all of them."""
    streams = [
        (text for path in corpus_files(workspace, name) for text in _file_texts(path))
        for name in names
    ]
    while streams:
        alive = []
        for stream in streams:
            text = next(stream, None)
            if text is not None:
                yield text
                alive.append(stream)
        streams = alive


def bytes_per_token(tokenizer, texts: Iterator[str], max_texts: int = 2000) -> dict:
    """Compression on a sample: UTF-8 bytes per token (higher is better)."""
    sample = [t for _, t in zip(range(max_texts), texts, strict=False)]
    encodings = tokenizer.backend_tokenizer.encode_batch_fast(sample, add_special_tokens=False)
    tokens = sum(len(e.ids) for e in encodings)
    size = sum(len(t.encode("utf-8", errors="surrogatepass")) for t in sample)
    return {
        "texts": len(sample),
        "bytes": size,
        "tokens": tokens,
        "bytes_per_token": size / tokens if tokens else None,
    }
