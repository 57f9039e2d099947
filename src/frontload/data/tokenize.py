"""Corpus parquet -> packed token shards under `tokens/<corpus>/`, resumable, one shard per work unit.

A work unit is a run of small row groups of one `part-*.parquet` file, or a slice of batches of a
big one, so shard names follow the corpus layout and a rerun skips every shard whose `.json` says it
was made from the same rows of the same file (size and mtime), tokenizer and field. Units run in a
process pool; each streams its rows in batches so memory stays bounded whatever the corpus size.
The manifest is written last.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from frontload.data.corpus import TEXT_COLUMNS
from frontload.data.encode import Encoder
from frontload.data.shards import (
    FORMAT_VERSION,
    MANIFEST,
    ShardWriter,
    atomic_write_json,
    read_shard_meta,
    shard_name,
    token_dtype,
)
from frontload.data.tokenizer import load_tokenizer, require_eos, tokenizer_hash
from frontload.errors import DataError, StageNotReady
from frontload.filecheck import check_files
from frontload.progress import make_progress
from frontload.workspace import Workspace

DEFAULT_ROWS_PER_SHARD = 100_000
BATCH_ROWS = 1024
COLUMNS = {"text": list(TEXT_COLUMNS), "messages": ["messages", "prompt", "response", "reasoning"]}


@dataclass(frozen=True)
class Unit:
    """Rows of one parquet file that become one shard: whole row groups, or batches of one."""

    index: int
    file: str
    row_groups: tuple[int, ...]
    batches: tuple[int, int] | None  # [start, stop) batches of BATCH_ROWS within one big group
    source: dict  # identity of the input: file name, size, mtime, row groups, batches

    @property
    def name(self) -> str:
        return shard_name(self.index)


def plan_units(corpus_dir: Path, rows_per_shard: int) -> list[Unit]:
    """Split the corpus files into units of about rows_per_shard rows (several small row groups,
    or a slice of a big one), so work spreads over the workers whatever the file layout."""
    import pyarrow.parquet as pq

    files = sorted(corpus_dir.glob("part-*.parquet"))
    if not files:
        raise StageNotReady(
            f"corpus {corpus_dir.name!r} has no part-*.parquet files in {corpus_dir}",
            hint="build the corpora first: `fl curate corpora`",
        )
    check_files(files)
    per_unit = max(1, rows_per_shard // BATCH_ROWS)  # batches per slice of a big row group
    specs: list[tuple[Path, os.stat_result, list[int], tuple[int, int] | None]] = []
    for path in files:
        stat = path.stat()
        metadata = pq.ParquetFile(path).metadata
        current: list[int] = []
        rows = 0
        for group in range(metadata.num_row_groups):
            group_rows = metadata.row_group(group).num_rows
            if group_rows > rows_per_shard:
                if current:
                    specs.append((path, stat, current, None))
                    current, rows = [], 0
                batches = -(-group_rows // BATCH_ROWS)
                for first in range(0, batches, per_unit):
                    specs.append((path, stat, [group], (first, min(first + per_unit, batches))))
                continue
            current.append(group)
            rows += group_rows
            if rows >= rows_per_shard:
                specs.append((path, stat, current, None))
                current, rows = [], 0
        if current:
            specs.append((path, stat, current, None))
    return [_unit(index, *spec) for index, spec in enumerate(specs)]


def _unit(
    index: int, path: Path, stat: os.stat_result, groups: list[int], batches: tuple[int, int] | None
) -> Unit:
    source = {
        "file": path.name,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "row_groups": list(groups),
        "batches": None if batches is None else list(batches),
    }
    return Unit(index, str(path), tuple(groups), batches, source)


class EmptyCorpus(DataError):
    """The corpus has no record with something to encode."""


_WORKER: dict = {}


def _init_worker(tokenizer_path: str, field: str, threads: int | None) -> None:
    """Pin the tokenizer's thread pool (several processes share the CPUs); a forked worker keeps
    the parent's encoder, any other loads the tokenizer once."""

    if threads is not None:
        os.environ["RAYON_NUM_THREADS"] = str(threads)
    if getattr(_WORKER.get("encoder"), "field", None) != field:
        _WORKER["encoder"] = Encoder(load_tokenizer(tokenizer_path), field)


def _use_encoder(encoder) -> None:
    """The in-process path reuses the tokenizer already loaded by the caller."""
    _WORKER["encoder"] = encoder


def _run_unit(unit: Unit, out_dir: str, dtype: str, identity: dict) -> dict:
    """Tokenize one unit into its shard (atomic); returns the shard's metadata."""
    import pyarrow.parquet as pq

    encoder = _WORKER["encoder"]
    chat = encoder.field == "messages"
    handle = pq.ParquetFile(unit.file)
    columns = [c for c in COLUMNS[encoder.field] if c in handle.schema_arrow.names]
    if not columns:
        raise DataError(
            f"{unit.file} has none of the columns {COLUMNS[encoder.field]} for --field "
            f"{encoder.field}",
            hint="corpus files must follow RECORD_SCHEMA (frontload.curate.schema)",
        )
    writer = ShardWriter(Path(out_dir), unit.name, dtype, with_mask=chat)
    skipped = 0
    first, stop = unit.batches or (0, None)
    batches = handle.iter_batches(
        batch_size=BATCH_ROWS, row_groups=list(unit.row_groups), columns=columns
    )
    for batch in islice(batches, first, stop):
        encoded = encoder.encode(batch)
        skipped += encoded.skipped
        if len(encoded.lengths):
            writer.append(encoded.tokens, encoded.lengths, encoded.mask)
    return writer.close({**identity, "source": unit.source, "skipped": skipped})


def tokenize_corpus(
    workspace: Workspace,
    corpus: str,
    tokenizer_path: Path,
    field: str = "text",
    workers: int = 1,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    progress: bool = True,
    name: str | None = None,
) -> dict:
    """Tokenize `corpora/<corpus>` into `tokens/<name or corpus>`; resumes; returns the manifest."""

    tokenizer = load_tokenizer(tokenizer_path)
    require_eos(tokenizer, tokenizer_path)
    encoder = Encoder(tokenizer, field)  # validates the field and chat template before any work
    digest = tokenizer_hash(tokenizer)
    dtype = token_dtype(len(tokenizer)).name
    units = plan_units(workspace.corpus_dir(corpus), rows_per_shard)
    name = (name or corpus).lower()
    out_dir = workspace.tokens_dir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)  # readers refuse the folder until it is complete
    identity = {"tokenizer_hash": digest, "field": field, "format": FORMAT_VERSION}

    done: dict[int, dict] = {}
    todo: list[Unit] = []
    for unit in units:
        meta = read_shard_meta(out_dir, unit.name)
        same = meta is not None and meta.get("source") == unit.source and meta.get("dtype") == dtype
        if same and all(meta.get(k) == v for k, v in identity.items()):
            done[unit.index] = meta
        else:
            todo.append(unit)
    _remove_orphans(out_dir, {u.name for u in units})

    args = (str(tokenizer_path), field)
    _use_encoder(encoder)
    for meta in _execute(todo, args, workers, str(out_dir), dtype, identity, progress, corpus):
        done[int(meta["name"].split("-")[1])] = meta
    shards = [done[u.index] for u in units]
    manifest = {
        "name": name,
        "corpus": corpus.lower(),
        "tokens": sum(s["tokens"] for s in shards),
        "documents": sum(s["documents"] for s in shards),
        "skipped": sum(s["skipped"] for s in shards),
        "dtype": dtype,
        "vocab_size": len(tokenizer),
        "eos_id": int(tokenizer.eos_token_id),
        "tokenizer": str(Path(tokenizer_path).resolve()),
        "has_loss_mask": field == "messages",
        "shards": shards,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **identity,
    }
    if manifest["documents"] == 0:
        raise EmptyCorpus(
            f"corpus {corpus!r} has no {field} to tokenize ({manifest['skipped']} empty records)",
            hint="check the corpus rule, or use --field "
            + ("text for pretraining" if field == "messages" else "messages for chat")
            + " corpora",
        )
    atomic_write_json(out_dir / MANIFEST, manifest)
    return manifest


def workspace_corpora(workspace: Workspace) -> list[str]:
    """Names of the corpora built in the workspace (folders with part files)."""
    folder = workspace.corpora_dir
    if not folder.is_dir():
        return []
    names = (p.name for p in folder.iterdir() if not p.name.startswith("."))  # skip staging dirs
    return sorted(n for n in names if any((folder / n).glob("part-*.parquet")))


def _execute(todo, args, workers, out_dir, dtype, identity, progress, corpus):
    """Run units in-process (one worker) or in a process pool; yield shard metadata as they finish."""

    with make_progress(transient=not progress) as bar:
        task = bar.add_task(f"tokenize {corpus}", total=len(todo), status="")
        tokens = 0
        if workers <= 1 or len(todo) <= 1:
            results = (_run_unit(u, out_dir, dtype, identity) for u in todo)
            for meta in results:
                tokens += meta["tokens"]
                bar.update(task, advance=1, status=f"{tokens:,} tokens")
                yield meta
            return

        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(*args, 1)
        ) as pool:
            futures = [pool.submit(_run_unit, u, out_dir, dtype, identity) for u in todo]
            for future in as_completed(futures):
                meta = future.result()
                tokens += meta["tokens"]
                bar.update(task, advance=1, status=f"{tokens:,} tokens")
                yield meta


def _remove_orphans(out_dir: Path, names: set[str]) -> None:
    """Shards of units that no longer exist (the corpus shrank), and leftovers of killed writers."""
    for path in out_dir.glob("shard-*"):
        if path.name.endswith(".tmp") or path.name.split(".")[0] not in names:
            path.unlink(missing_ok=True)
