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

from frontload.curate.recipe import FieldMap, SourceConfig
from frontload.errors import ConfigError, InputError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class SourceFile:
    """One input file (or `datasets` folder) of one source."""

    source: SourceConfig
    path: Path
    format: str


@dataclass
class Malformed:
    """A raw record that could not be turned into a record, with where and why."""

    file: str
    line: int
    reason: str
    raw: str


def expand_path(pattern: str, workspace_root: Path | None) -> str:
    """Expand `{workspace}`, environment variables and `~` in a recipe path."""
    if workspace_root is not None:
        pattern = pattern.replace("{workspace}", str(workspace_root))
    return os.path.expanduser(os.path.expandvars(pattern))


def detect_format(path: Path, declared: str) -> str:
    """The declared format, or one guessed from the name; unknown formats are config errors."""
    if declared != "auto":
        return declared
    if path.is_dir():
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


def iter_raw(
    file: SourceFile, rank: int = 0, world_size: int = 1
) -> Iterator[tuple[int, dict[str, Any] | Malformed]]:
    """(line or row number, raw dict or Malformed) for the records of one file whose line/row
    index modulo `world_size` is `rank`: every task sees every source, in equal shares."""
    share = (rank, world_size)
    if file.format in ("jsonl", "jsonl.gz"):
        yield from _iter_jsonl(file.path, file.format == "jsonl.gz", share)
    elif file.format == "parquet":
        yield from _iter_parquet(file.path, share)
    elif file.format == "hf_disk":
        yield from _iter_hf_disk(file.path, share)
    else:  # pragma: no cover - the recipe's Literal rules this out
        raise ConfigError(f"{file.path}: unknown format {file.format!r}")


def _iter_jsonl(
    path: Path, gz: bool, share: tuple[int, int]
) -> Iterator[tuple[int, dict[str, Any] | Malformed]]:
    rank, world_size = share
    try:
        handle = gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115
        with handle:
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
    path: Path, share: tuple[int, int]
) -> Iterator[tuple[int, dict[str, Any] | Malformed]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
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


def first_record(file: SourceFile, limit: int = 50) -> dict[str, Any] | None:
    """The first well-formed raw record of a file (to check the mapping before work)."""
    for index, (_, value) in enumerate(iter_raw(file)):
        if isinstance(value, dict):
            return value
        if index >= limit:
            break
    return None


def check_mapping(file: SourceFile) -> None:
    """A mapping that names fields absent from the file is a config error, raised before work."""
    if file.format == "jsonl" and file.path.is_file():
        with open(file.path, "rb") as handle:
            if handle.read(2) == GZIP_MAGIC:
                raise ConfigError(
                    f"source {file.source.name!r}: {file.path}: gzip-compressed, read as jsonl",
                    "set `format: jsonl.gz` (or `auto`) on the source",
                )
    record = first_record(file)
    if record is None:
        return
    mapping = file.source.mapping()
    wanted = [
        (key, getattr(mapping, key))
        for key in ("prompt", "response", "text", "messages", "reference")
        if getattr(mapping, key)
    ]
    missing = [(key, name) for key, name in wanted if name not in record]
    if missing:
        names = ", ".join(f"{key} -> {name!r}" for key, name in missing)
        raise ConfigError(
            f"source {file.source.name!r}: {file.path}: mapped field(s) not in the data: {names}",
            f"fields found: {', '.join(sorted(record)) or '(none)'}; fix `fields:` or `preset:`",
        )


def gsm8k_reference(answer: str) -> str | None:
    """GSM8K: the final answer is the text after the last `####`."""
    if "####" not in answer:
        return None
    return answer.rsplit("####", 1)[1].strip().replace(",", "") or None


def last_boxed(text: str) -> str | None:
    """MATH: the content of the last \\boxed{...} (or \\fbox{...}), braces matched."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    index = text.index("{", start) + 1
    depth, begin = 1, index
    while index < len(text):
        char = text[index]
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            return text[begin:index].strip()
        index += 1
    return None


class RecordError(ValueError):
    """A raw record lacks a mapped field or holds a value of the wrong kind."""


def _string(raw: dict[str, Any], field: str) -> str:
    if field not in raw:
        raise RecordError(f"field {field!r} missing")
    value = raw[field]
    if value is None:
        raise RecordError(f"field {field!r} is null")
    if isinstance(value, (dict, list)):
        raise RecordError(f"field {field!r} is a {type(value).__name__}, not text")
    return str(value)


def _messages(raw: dict[str, Any], field: str) -> list[dict[str, str]]:
    if raw.get(field) is None:
        raise RecordError(f"field {field!r} missing or null")
    turns = raw[field]
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"field {field!r} is not a non-empty list of turns")
    messages = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("role") is None or turn.get("content") is None:
            raise RecordError(f"field {field!r}[{index}] needs role and content")
        messages.append({"role": str(turn["role"]), "content": str(turn["content"])})
    return messages


def render(prompt: str, response: str) -> str:
    """The text pretraining sees for a QA record."""
    return f"{prompt}\n\n{response}"


def map_record(raw: dict[str, Any], mapping: FieldMap) -> dict[str, Any]:
    """Raw dict -> prompt/response/text/messages/reference; raises RecordError naming the field."""
    messages = None
    if mapping.messages:
        messages = _messages(raw, mapping.messages)
        users = [m["content"] for m in messages if m["role"] == "user"]
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        prompt = users[0] if users else ""
        response = answers[-1] if answers else ""
        text = "\n\n".join(m["content"] for m in messages if m["role"] != "system")
    elif mapping.text:
        prompt, response = "", ""
        text = _string(raw, mapping.text)
    else:
        prompt = _string(raw, mapping.prompt or "")
        response = _string(raw, mapping.response or "")
        text = render(prompt, response)
    reference = None
    if mapping.reference_rule == "field" and mapping.reference:
        value = raw.get(mapping.reference)
        reference = None if value is None else str(value)
    elif mapping.reference_rule == "gsm8k":
        reference = gsm8k_reference(response)
    elif mapping.reference_rule == "boxed":
        reference = last_boxed(response)
    return {
        "prompt": prompt,
        "response": response,
        "text": text,
        "messages": messages,
        "reference": reference,
    }
