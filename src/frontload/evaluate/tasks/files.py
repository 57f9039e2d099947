"""Pointing a task at any file: `--task-file TASK=PATH`, field mappings and the workspace store.

A field mapping names, for each field the task reads, the field of the file that holds it
(`{"question": "prompt", "answer": "solution"}`, dotted paths reach nested fields), like the
curation recipes' `fields`. A data folder may carry `tasks.json` with the same per-task settings
(`{"gsm8k": {"file": "my_gsm8k.jsonl", "fields": {...}}}`); `fl evaluate add-benchmark` writes it.
Which folder a task reads from is decided in `sources` (first match wins).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from frontload.errors import ConfigError, InputError
from frontload.evaluate.tasks.base import Task
from frontload.evaluate.tasks.hub import PREFIX
from frontload.evaluate.tasks.sources import (
    TASKS_MANIFEST,
    BenchFiles,
    Location,
    read_tasks_manifest,
)


def parse_pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """`["gsm8k=a.jsonl", ...]` -> {"gsm8k": "a.jsonl"}; a malformed item is a ConfigError."""
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise ConfigError(
                f"{option} {value!r}: expected KEY=VALUE", hint=f"e.g. {option} gsm8k=my.jsonl"
            )
        pairs[key.strip()] = rest.strip()
    return pairs


def parse_fields(values: list[str] | None) -> dict[str, dict[str, str]]:
    """`--field gsm8k.question=prompt` items -> {"gsm8k": {"question": "prompt"}}."""
    fields: dict[str, dict[str, str]] = {}
    for key, source in parse_pairs(values, "--field").items():
        task, dot, target = key.partition(".")
        if not dot or not target:
            raise ConfigError(
                f"--field {key}={source}: expected TASK.FIELD=SOURCE",
                hint="e.g. --field gsm8k.question=prompt",
            )
        fields.setdefault(task.strip().lower().replace("-", "_"), {})[target] = source
    return fields


def _lookup(record: dict, dotted: str) -> tuple[bool, object]:
    value: object = record
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def apply_fields(records: list[dict], fields: dict[str, str], where: str) -> list[dict]:
    """Copy each mapped source field to the name the task reads; a missing field names the file."""
    if not fields:
        return records
    mapped = []
    for number, record in enumerate(records, 1):
        row = dict(record)
        for target, source in fields.items():
            found, value = _lookup(record, source)
            if not found:
                raise InputError(
                    f"{where}: record {number} has no field {source!r} (mapped to {target!r})",
                    hint=f"fields found: {', '.join(sorted(record)) or '(none)'}",
                )
            row[target] = value
        mapped.append(row)
    return mapped


def task_location(
    task: Task, files: BenchFiles, source: str | None, task_files: dict[str, str]
) -> Location:
    """Where the task reads: --task-file, else an explicit (hub) source, else the first folder of
    `files` that holds it (see `sources` for the order)."""
    if task.name in task_files:
        path = Path(task_files[task.name]).expanduser()
        if not path.exists():
            raise InputError(f"--task-file {task.name}={path}: not found")
        return Location(str(path.resolve()), "--task-file")
    if source:
        return Location(source, "hub" if source.startswith("hf:") else "source")
    found = files.locate(task.name, task.filename)
    if found is None:
        raise InputError(
            f"task {task.name}: no {task.filename or 'file'} in {files.describe()}",
            hint=f"pass --task-file {task.name}=PATH or --data-dir, or store the file once with "
            f"`fl evaluate add-benchmark {task.name} PATH`",
        )
    return found


def load_task_records(
    task: Task,
    files: BenchFiles,
    source: str | None = None,
    task_files: dict[str, str] | None = None,
    fields: dict[str, dict[str, str]] | None = None,
) -> tuple[Location, list[dict]]:
    """(location, records with the field mapping applied) for one task."""
    location = task_location(task, files, source, task_files or {})
    records = task.load(location.path)
    mapping = {**location.fields, **(fields or {}).get(task.name, {})}
    return location, apply_fields(records, mapping, location.path)


def add_benchmark(
    store: Path, task: Task, path: Path | str, fields: dict[str, str] | None = None
) -> Path:
    """Copy a benchmark file (or folder) into the workspace store under the task's file name and
    record its mapping and hash in the store's tasks.json; returns the stored path.
    `hf:DATASET[:SPLIT]` reads through `datasets` (the hub when online, or a local data file or
    folder) and stores the records as JSON lines, checked like a local file."""
    if str(path).startswith(PREFIX):
        records = task.load(str(path))
        store.mkdir(parents=True, exist_ok=True)
        pulled = store / f".{task.name}-hub.jsonl"
        with pulled.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, default=str) + "\n")
        try:
            stored = add_benchmark(store, task, pulled, fields)
        finally:
            pulled.unlink(missing_ok=True)
        manifest = read_tasks_manifest(store)
        manifest[task.name]["source"] = str(path)
        (store / TASKS_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return stored
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} not found", hint="pass the benchmark file or folder to store")
    if path.is_file():
        # Readable, with the mapped fields present and every record a sample the task can build,
        # now rather than at evaluation time, and before anything already stored is replaced.
        task.build(apply_fields(task.load(path), fields or {}, str(path)), "chat", 0, None)
    store.mkdir(parents=True, exist_ok=True)
    name = task.filename or path.name
    if path.is_file() and Path(name).suffix != path.suffix and not name.endswith(path.suffix):
        name = f"{task.name}{''.join(path.suffixes)}"  # keep the reader's format (.csv, .json)
    target = store / name
    if path.is_dir():
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.copytree(path, target)
    else:
        staged = store / f".{name}.adding"
        shutil.copy2(path, staged)
        os.replace(staged, target)
    manifest = read_tasks_manifest(store)
    entry: dict = {"file": name, "source": str(path.resolve())}
    if path.is_file():
        entry["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    if fields:
        entry["fields"] = fields
    manifest[task.name] = entry
    (store / TASKS_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return target


LIMIT_ATTRIBUTES = ("limits", "candidate_limits", "reference_limits")


def parse_limits(values: list[str] | None) -> dict[str, dict[str, float]]:
    """`--sandbox-limit mbpp.timeout_s=30` items -> {"mbpp": {"timeout_s": 30.0}}."""
    from frontload.grading.sandbox import Limits

    known = {f.name for f in dataclasses.fields(Limits)}
    limits: dict[str, dict[str, float]] = {}
    for key, value in parse_pairs(values, "--sandbox-limit").items():
        task, dot, name = key.partition(".")
        if not dot or name not in known:
            raise ConfigError(
                f"--sandbox-limit {key}={value}: expected TASK.LIMIT=VALUE",
                hint=f"limits: {', '.join(sorted(known))}",
            )
        try:
            limits.setdefault(task.strip().lower().replace("-", "_"), {})[name] = float(value)
        except ValueError:
            raise ConfigError(f"--sandbox-limit {key}={value}: not a number") from None
    return limits


def check_task_names(tasks: list[str], **options: dict) -> None:
    """A --task-file, --field or --sandbox-limit naming a task outside this run is a mistake
    (a typo, or the wrong task), not something to ignore silently."""
    for option, values in options.items():
        for name in values or {}:
            if name not in tasks:
                flag = "--" + option.replace("_", "-")
                raise ConfigError(
                    f"{flag} names task {name!r}, which this run does not evaluate",
                    hint=f"tasks of this run: {', '.join(tasks)}",
                )


def apply_limits(task: Task, overrides: dict[str, float]) -> None:
    """Set a code task's sandbox limits (time, memory, processes, ...) for this run."""
    if not overrides:
        return
    present = [name for name in LIMIT_ATTRIBUTES if hasattr(task, name)]
    if not present:
        raise ConfigError(f"task {task.name} runs no code: it has no sandbox limits to set")
    for name in present:
        current = getattr(task, name)
        values = {
            key: (int(value) if isinstance(getattr(current, key), int) else value)
            for key, value in overrides.items()
        }
        setattr(task, name, dataclasses.replace(current, **values))
