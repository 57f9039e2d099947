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
    """Expand `{workspace}`, environment variables and `~` in a recipe path."""
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


def _remote_info(url: str) -> dict[str, Any]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        return fs.info(path)
    except Exception as error:  # network, auth and missing-repo errors come in many types
        raise _unreachable(url, error) from error


def _resolve_urls(source: SourceConfig, url: str) -> list[SourceFile]:
    """The files behind a URL or URL glob, listed with fsspec (as datatrove's readers do)."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        matches = sorted(fs.glob(path)) if glob.has_magic(path) else [path]
        if matches and not glob.has_magic(path) and not fs.exists(path):
            matches = []
    except Exception as error:  # network, auth and missing-repo errors come in many types
        raise _unreachable(url, error) from error
    if not matches:
        raise InputError(
            f"source {source.name!r}: {url} matches no files", "check the URL and its glob"
        )
    protocol = url.split("://", 1)[0]
    files = []
    for match in matches:
        full = fs.unstrip_protocol(match) if hasattr(fs, "unstrip_protocol") else match
        if not full.startswith(protocol):
            full = f"{protocol}://{match}"
        name = Path(match.rstrip("/").rsplit("/", 1)[-1])
        fmt = detect_format(name, source.format, remote=True)
        if fmt == "hf_disk":
            raise ConfigError(f"{full}: `hf_disk` folders are read from local disk only")
        files.append(SourceFile(source, name, fmt, url=full))
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


def _trace(raw: dict[str, Any], field: str) -> str:
    """A reasoning field: text, or a list of texts (s1K's `thinking_trajectories`) joined."""
    value = raw.get(field)
    if value is None:
        raise RecordError(f"field {field!r} missing or null")
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "\n\n".join(value)
    if isinstance(value, (dict, list)):
        raise RecordError(f"field {field!r} is a {type(value).__name__}, not text")
    return str(value)


def _messages(raw: dict[str, Any], mapping: FieldMap) -> list[dict[str, str]]:
    """Chat turns under any key names (ShareGPT `from`/`value` too), roles mapped by `roles`."""
    field, role_key, content_key = mapping.messages or "", mapping.role_key, mapping.content_key
    if raw.get(field) is None:
        raise RecordError(f"field {field!r} missing or null")
    turns = raw[field]
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"field {field!r} is not a non-empty list of turns")
    messages = []
    if mapping.system and raw.get(mapping.system):
        messages.append({"role": "system", "content": str(raw[mapping.system])})
    for index, turn in enumerate(turns):
        if (
            not isinstance(turn, dict)
            or turn.get(role_key) is None
            or turn.get(content_key) is None
        ):
            raise RecordError(f"field {field!r}[{index}] needs {role_key} and {content_key}")
        role = str(turn[role_key])
        messages.append({"role": mapping.roles.get(role, role), "content": str(turn[content_key])})
    return messages


def split_reasoning(
    text: str, tags: tuple[str, str], answer_tags: tuple[str, str] | None = None
) -> tuple[str | None, str]:
    """(trace, final answer) of a response holding `<think>trace</think>answer` (tags as given);
    (None, text) when it holds no trace. A closing tag alone (the opening one was in the prompt)
    ends a trace too; an unclosed trace leaves an empty answer."""
    start, end = tags
    close = text.find(end)
    open_ = text.find(start)
    if close < 0 and open_ < 0:
        return None, _unwrap(text, answer_tags)
    if close < 0:
        return text[open_ + len(start) :].strip(), ""
    begin = open_ + len(start) if 0 <= open_ < close else 0
    before = text[:open_] if 0 <= open_ < close else ""
    answer = (before + text[close + len(end) :]).strip()
    return text[begin:close].strip(), _unwrap(answer, answer_tags)


def _unwrap(text: str, tags: tuple[str, str] | None) -> str:
    """The text between the answer tags, when the answer is wrapped in them."""
    if tags is None or tags[0] not in text:
        return text
    inner = text.split(tags[0], 1)[1]
    return inner.split(tags[1], 1)[0].strip()


def with_trace(reasoning: str | None, answer: str) -> str:
    """An answer with its trace as pretraining sees it: one `<think>` block, whatever the source's
    tags were."""
    if not reasoning:
        return answer
    return f"<think>\n{reasoning}\n</think>\n\n{answer}"


def render(prompt: str, response: str, reasoning: str | None = None) -> str:
    """The text pretraining sees for a QA record."""
    return f"{prompt}\n\n{with_trace(reasoning, response)}"


def map_record(raw: dict[str, Any], mapping: FieldMap) -> dict[str, Any]:
    """Raw dict -> prompt/response/reasoning/text/messages/reference; raises RecordError naming
    the field. A `<think>` trace in the response (or a mapped reasoning field) goes to
    `reasoning`, the final answer stays in `response`."""
    messages, reasoning = None, None
    if mapping.messages:
        messages = _messages(raw, mapping)
    if mapping.prompt and mapping.response:
        prompt = _string(raw, mapping.prompt)
        response = _string(raw, mapping.response)
    elif messages is not None:
        users = [m["content"] for m in messages if m["role"] == "user"]
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        prompt = users[0] if users else ""
        response = answers[-1] if answers else ""
    else:
        prompt, response = "", ""
    if mapping.reasoning:
        reasoning = _trace(raw, mapping.reasoning)
    elif response:
        reasoning, response = split_reasoning(response, mapping.think_tags, mapping.answer_tags)
    if messages is not None and reasoning is not None:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        if last >= 0:
            messages[last] = {"role": "assistant", "content": response}
    if mapping.text:
        text = _string(raw, mapping.text)
    elif mapping.prompt or messages is None:
        text = render(prompt, response, reasoning)
    else:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        text = "\n\n".join(
            with_trace(reasoning, m["content"]) if i == last else m["content"]
            for i, m in enumerate(messages)
            if m["role"] != "system"
        )
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
        "reasoning": reasoning,
        "text": text,
        "messages": messages,
        "reference": reference,
    }


def _label(value: Any) -> bool | None:
    """A per-generation label: true/false (also 1/0, "true"/"false"); null stays unknown."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    return {"true": True, "false": False, "1": True, "0": False}.get(text)


def map_records(
    raw: dict[str, Any], source: SourceConfig, group: str, mapping: FieldMap | None = None
) -> list[tuple[dict[str, Any], bool]]:
    """(record, keep) pairs for one raw row: one record, or one per element of the exploded list.
    `group` names the row, so exploded siblings share it in `meta`; `keep` is False for a
    generation the source's `siblings: verified` policy drops (labelled false). Pass `mapping`
    (`source.mapping()`) when reading many rows: building it is the costly part."""
    mapping = mapping or source.mapping()
    meta: dict[str, Any] = {}
    if mapping.id:
        meta["id"] = raw.get(mapping.id)
    for name in source.keep:
        meta[name] = raw.get(name)
    if not mapping.explode:
        return [(_with_meta(map_record(raw, mapping), meta), True)]
    items = raw.get(mapping.explode)
    if not isinstance(items, list) or not items:
        raise RecordError(f"field {mapping.explode!r} is not a non-empty list (explode)")
    labels: list[Any] = [None] * len(items)
    if mapping.labels and raw.get(mapping.labels) is not None:  # null: every label unknown
        labels = raw[mapping.labels]
        if not isinstance(labels, list) or len(labels) != len(items):
            raise RecordError(
                f"field {mapping.labels!r} does not hold one label per {mapping.explode!r} item"
            )
    out = []
    for index, (item, value) in enumerate(zip(items, labels, strict=True)):
        label = _label(value)
        record = map_record({**raw, mapping.explode: item}, mapping)
        if label is not None:
            record["verified"] = label
        sibling = {"generation": index}
        if source.siblings != "dedup":
            sibling["group"] = group
        keep = source.siblings != "verified" or not mapping.labels or label is True
        out.append((_with_meta(record, {**meta, **sibling}), keep))
    return out


def _with_meta(record: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    record["meta"] = json.dumps(meta, default=str, ensure_ascii=False) if meta else None
    return record
