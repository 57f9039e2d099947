"""Raw dumps -> records: resolve paths, read jsonl/jsonl.gz/parquet/`datasets` folders, map fields.

Config problems (missing files, empty globs, unknown formats, mapped fields absent from a file) stop
before any work; record problems (bad JSON, non-UTF-8 bytes, null fields) become `Malformed` rows.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontload.benchdata import expand_shipped
from frontload.curate.mapping import (  # noqa: F401 - re-exported: readers is the entry point
    RecordError,
    last_boxed,
    map_record,
    map_records,
    split_reasoning,
)
from frontload.curate.recipe import SourceConfig
from frontload.errors import ConfigError, InputError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class SourceFile:
    """One input file (or `datasets` folder) of one source; `url` is set for fsspec URLs
    (hf://, s3://, ...), whose `path` is only their name."""

    source: SourceConfig
    path: Path
    format: str
    url: str | None = None

    @property
    def location(self) -> str:
        """How messages name the file: the URL, else the local path."""
        return self.url or str(self.path)

    def fingerprint(self) -> str:
        """Name, size and modification time (local) or size and etag (URL), to key a run."""
        if self.url is None:
            stat = self.path.stat()
            return f"{self.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        info = _remote_info(self.url)
        return f"{self.url}|{info.get('size')}|{info.get('etag') or info.get('last_commit')}"


@dataclass
class Malformed:
    """A raw record that could not be turned into a record, with where and why."""

    file: str
    line: int
    reason: str
    raw: str


def expand_path(pattern: str, workspace_root: Path | None) -> str:
    """Expand `shipped:NAME` (a benchmark file shipped with fl, see `frontload.benchdata`),
    `{workspace}`, environment variables and `~` in a recipe path."""
    pattern = expand_shipped(pattern)
    if workspace_root is not None:
        pattern = pattern.replace("{workspace}", str(workspace_root))
    return os.path.expanduser(os.path.expandvars(pattern))


def detect_format(path: Path, declared: str, remote: bool = False) -> str:
    """The declared format, or one guessed from the name; unknown formats are config errors."""
    if declared != "auto":
        return declared
    if not remote and path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return "hf_disk"
        raise ConfigError(f"{path}: a folder but not a `datasets` save_to_disk folder")
    name = path.name.lower()
    for suffix, fmt in ((".jsonl.gz", "jsonl.gz"), (".json.gz", "jsonl.gz"), (".jsonl", "jsonl")):
        if name.endswith(suffix):
            return fmt
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise ConfigError(
        f"{path}: unknown format (suffix {''.join(path.suffixes) or 'none'})",
        "use .jsonl, .jsonl.gz, .parquet or a `datasets` folder, or set `format:` on the source",
    )


def resolve_sources(sources: list[SourceConfig], workspace_root: Path | None) -> list[SourceFile]:
    """Every (source, file) pair in a fixed order; raises before work on any path problem."""
    files: list[SourceFile] = []
    for source in sources:
        patterns = [source.path] if isinstance(source.path, str) else source.path
        for pattern in patterns:
            expanded = expand_path(pattern, workspace_root)
            if is_url(expanded):
                files += _resolve_urls(source, expanded)
                continue
            if glob.has_magic(expanded):
                matches = sorted(glob.glob(expanded, recursive=True))
                if not matches:
                    raise InputError(
                        f"source {source.name!r}: {pattern!r} matches no files",
                        "check the glob (paths are relative to the current directory)",
                    )
            else:
                if not Path(expanded).exists():
                    raise InputError(
                        f"source {source.name!r}: {expanded}: file not found",
                        "check the path (relative to the current directory)",
                    )
                matches = [expanded]
            for match in matches:
                path = Path(match)
                files.append(SourceFile(source, path, detect_format(path, source.format)))
    return files


def is_url(path: str) -> bool:
    """An fsspec URL (hf://datasets/..., s3://...) rather than a local path."""
    return "://" in path and not path.startswith("file://")


def _unreachable(url: str, error: Exception) -> InputError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    where = "the Hugging Face hub" if url.startswith("hf://") else "it"
    return InputError(
        f"{url}: cannot reach {where} ({type(error).__name__}: {reason[:160]})",
        "download a local copy (e.g. `hf download --repo-type dataset ORG/NAME --local-dir D`) "
        "and point the source's `path` at it; the same recipe reads it",
    )


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _remote_info(url: str) -> dict[str, Any]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        return fs.info(path)
    except Exception as error:  # network, auth and missing-repo errors come in many types
        raise _unreachable(url, error) from error


DATA_SUFFIXES = (".parquet", ".pq", ".jsonl", ".jsonl.gz", ".json.gz")


def _resolve_urls(source: SourceConfig, url: str) -> list[SourceFile]:
    """The files behind a URL, a URL glob or a URL folder (its data files, recursively), listed
    with fsspec (as datatrove's readers do)."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        if glob.has_magic(path):
            matches = sorted(fs.glob(path))
        elif fs.isdir(path):
            matches = sorted(f for f in fs.find(path) if f.lower().endswith(DATA_SUFFIXES))
        else:
            matches = [path] if fs.exists(path) else []
    except Exception as error:  # network, auth and missing-repo errors come in many types
        raise _unreachable(url, error) from error
    if not matches:
        if url.startswith("hf://") and _hub_offline():  # offline, the hub fs lists nothing
            raise _unreachable(url, ConnectionError("HF_HUB_OFFLINE is set"))
        raise InputError(
            f"source {source.name!r}: {url} matches no files", "check the URL and its glob"
        )
    files = []
    for match in matches:
        name = Path(match.rstrip("/").rsplit("/", 1)[-1])
        fmt = detect_format(name, source.format, remote=True)
        if fmt == "hf_disk":
            raise ConfigError(f"{url}: `hf_disk` folders are read from local disk only")
        files.append(SourceFile(source, name, fmt, url=fs.unstrip_protocol(match)))
    return files


def _open_binary(file: SourceFile):
    """A binary handle on a local file or an fsspec URL."""
    if file.url is None:
        return open(file.path, "rb")  # noqa: SIM115
    import fsspec

    try:
        return fsspec.open(file.url, "rb").open()
    except Exception as error:  # network errors come in many types
        raise _unreachable(file.url, error) from error


def iter_raw(
    file: SourceFile, rank: int = 0, world_size: int = 1
) -> Iterator[tuple[int, dict[str, Any] | Malformed]]:
    """(line or row number, raw dict or Malformed) for the records of one file whose line/row
    index modulo `world_size` is `rank`: every task sees every source, in equal shares."""
    share = (rank, world_size)
    if file.format in ("jsonl", "jsonl.gz"):
        yield from _iter_jsonl(file, file.format == "jsonl.gz", share)
    elif file.format == "parquet":
        yield from _iter_parquet(file, share)
    elif file.format == "hf_disk":
        yield from _iter_hf_disk(file.path, share)
    else:  # pragma: no cover - the recipe's Literal rules this out
        raise ConfigError(f"{file.path}: unknown format {file.format!r}")


def _iter_jsonl(
    file: SourceFile, gz: bool, share: tuple[int, int]
) -> Iterator[tuple[int, dict[str, Any] | Malformed]]:
    rank, world_size = share
    path = file.location
    try:
        binary = _open_binary(file)
        handle = gzip.open(binary, "rb") if gz else binary  # noqa: SIM115
        with binary, handle:
            for number, raw in enumerate(handle, start=1):
                if (number - 1) % world_size != rank or not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    text = raw.decode("utf-8", "replace")
                    yield number, Malformed(str(path), number, f"not UTF-8 ({error.reason})", text)
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    yield number, Malformed(str(path), number, f"invalid JSON: {error.msg}", line)
                    continue
                if not isinstance(value, dict):
                    kind = type(value).__name__
                    yield number, Malformed(str(path), number, f"not a JSON object ({kind})", line)
                    continue
                yield number, value
    except (OSError, EOFError) as error:
        raise InputError(f"{path}: cannot read ({error})") from error


def _rows(batches, share: tuple[int, int]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based row number, row) of this task's share of a stream of record batches."""
    rank, world_size = share
    start = 0
    for batch in batches:
        first = (rank - start) % world_size
        picked = list(range(first, batch.num_rows, world_size))
        for offset, value in zip(picked, batch.take(picked).to_pylist(), strict=True):
            yield start + offset + 1, value
        start += batch.num_rows


def _iter_parquet(
    file: SourceFile, share: tuple[int, int]
) -> Iterator[tuple[int, dict[str, Any] | Malformed]]:
    import pyarrow.parquet as pq

    path = file.location
    try:
        parquet = pq.ParquetFile(file.path if file.url is None else _open_binary(file))
    except Exception as error:  # pyarrow raises several types for a corrupt file
        raise InputError(f"{path}: not a readable parquet file ({error})") from error
    yield from _rows(parquet.iter_batches(batch_size=2048), share)


def _iter_hf_disk(
    path: Path, share: tuple[int, int]
) -> Iterator[tuple[int, dict[str, Any] | Malformed]]:
    """A `datasets.save_to_disk` folder (a Dataset, or every split of a DatasetDict)."""
    import pyarrow as pa

    if (path / "dataset_dict.json").exists():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        folders = [path / split for split in splits]
    else:
        folders = [path]

    def batches():
        for folder in folders:
            state = json.loads((folder / "state.json").read_text())
            for entry in state["_data_files"]:
                with pa.memory_map(str(folder / entry["filename"])) as source:
                    yield from pa.ipc.open_stream(source)

    yield from _rows(batches(), share)


def first_record(file: SourceFile, limit: int = 50) -> tuple[int, dict[str, Any]] | None:
    """(line, record) of the first well-formed raw record of a file, to check the mapping."""
    for index, (line, value) in enumerate(iter_raw(file)):
        if isinstance(value, dict):
            return line, value
        if index >= limit:
            break
    return None


def check_mapping(file: SourceFile) -> None:
    """A mapping that names fields absent from the file is a config error, raised before work:
    it names the fields expected and the fields found in the first record, with file and line."""
    if file.format == "jsonl" and file.url is None and file.path.is_file():
        with open(file.path, "rb") as handle:
            if handle.read(2) == GZIP_MAGIC:
                raise ConfigError(
                    f"source {file.source.name!r}: {file.path}: gzip-compressed, read as jsonl",
                    "set `format: jsonl.gz` (or `auto`) on the source",
                )
    first = first_record(file)
    if first is None:
        return
    line, record = first
    expected = [*file.source.mapping().raw_fields(), *file.source.keep]
    missing = [name for name in expected if name not in record]
    if missing:
        what = f"preset {file.source.preset!r}" if file.source.preset else "the mapping"
        raise ConfigError(
            f"source {file.source.name!r}: {file.location} line {line}: {what} expects fields "
            f"{', '.join(expected)}; missing {', '.join(missing)}; found "
            f"{', '.join(sorted(record)) or '(none)'}",
            "pick the preset of this file's format or map its fields with `fields:`",
        )
