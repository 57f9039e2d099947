"""Where a task's benchmark file comes from: an ordered list of folders, first match wins.

Resolution order, per task (and per few-shot file), documented in docs/readme/evaluate.md:

1. `--task-file TASK=PATH` (or a hub source with `--hub`): this run names the file itself;
2. `--data-dir` (a pipeline's `evaluate.data_dir`): a folder this run names;
3. the workspace store (`<workspace>/benchmarks`, filled by `fl evaluate add-benchmark`);
4. `$FL_BENCH_DIR`;
5. the files shipped with fl (`frontload/benchdata`), so a fresh install evaluates offline.

A folder holds a task's file under the task's default name (`gsm8k_test.jsonl`), optionally
gzip-compressed (`gsm8k_test.jsonl.gz`), or names it in its `tasks.json` (the store's manifest,
which may also map fields). A folder that is named but missing is an error, never skipped: a typo
must not silently evaluate on other files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from frontload import benchdata
from frontload.errors import InputError

TASKS_MANIFEST = "tasks.json"
STORE_FOLDER = "benchmarks"


@dataclass(frozen=True)
class Folder:
    """One place benchmark files are looked up, with the name `fl evaluate benchmarks` shows."""

    label: str  # --data-dir | workspace store | $FL_BENCH_DIR | shipped
    path: Path


@dataclass(frozen=True)
class Location:
    """Where one task reads: the file (or folder, or hf: name), whose it is, and field mapping."""

    path: str
    label: str
    fields: dict[str, str] = field(default_factory=dict)


def read_tasks_manifest(folder: Path | None) -> dict[str, dict]:
    """A folder's `tasks.json` (file names and field mappings per task), if any."""
    if folder is None or not (Path(folder) / TASKS_MANIFEST).is_file():
        return {}
    path = Path(folder) / TASKS_MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(manifest, dict) or not all(isinstance(v, dict) for v in manifest.values()):
        raise InputError(f"{path}: expected {{task: {{file, fields}}}}")
    return manifest


class BenchFiles:
    """The folders a run reads benchmark files from, in order of precedence."""

    def __init__(self, folders: list[Folder]) -> None:
        self.folders = folders

    @classmethod
    def for_run(
        cls, data_dir: str | Path | None = None, store: str | Path | None = None
    ) -> BenchFiles:
        """--data-dir, the workspace store, $FL_BENCH_DIR, then the shipped files."""
        folders = []
        if data_dir is not None:
            folders.append(Folder("--data-dir", _existing(Path(data_dir), "--data-dir")))
        if store is not None and Path(store).is_dir():
            folders.append(Folder("workspace store", Path(store).resolve()))
        if os.environ.get("FL_BENCH_DIR"):
            folders.append(
                Folder(
                    "$FL_BENCH_DIR", _existing(Path(os.environ["FL_BENCH_DIR"]), "$FL_BENCH_DIR")
                )
            )
        folders.append(Folder("shipped", benchdata.FOLDER))
        return cls(folders)

    @classmethod
    def of(cls, *paths: str | Path) -> BenchFiles:
        """Just these folders (tests, scripts): no store, environment or shipped fallback."""
        return cls([Folder(str(path), Path(path)) for path in paths])

    @classmethod
    def shipped(cls) -> BenchFiles:
        return cls([Folder("shipped", benchdata.FOLDER)])

    def find(self, name: str) -> Path | None:
        """The first folder's `name` (or `name.gz`): few-shot pools and other companion files."""
        for folder in self.folders:
            found = benchdata.find_file(folder.path, name)
            if found is not None:
                return found
        return None

    def locate(self, task_name: str, filename: str) -> Location | None:
        """Where a task reads, or None when no folder holds its file."""
        for folder in self.folders:
            entry = read_tasks_manifest(folder.path).get(task_name)
            if entry and entry.get("file"):
                path = folder.path / entry["file"]
                if not path.exists():
                    raise InputError(
                        f"{folder.path / TASKS_MANIFEST}: {task_name} names {entry['file']}, "
                        "which is not there",
                        hint=f"store it again with `fl evaluate add-benchmark {task_name} PATH`",
                    )
                return Location(str(path), folder.label, dict(entry.get("fields") or {}))
            found = benchdata.find_file(folder.path, filename) if filename else None
            if found is not None:
                return Location(str(found), folder.label)
        return None

    def describe(self) -> str:
        """The folders searched, in order, as an error message names them."""
        names = [
            folder.label if folder.label == str(folder.path) else f"{folder.label} ({folder.path})"
            for folder in self.folders
        ]
        return ", ".join(names) or "no folder"


def where_tasks_read(files: BenchFiles, tasks: dict[str, str]) -> dict[str, Location | None]:
    """Task name -> where it will read ({name: default file name} in; None: no folder has it)."""
    return {name: files.locate(name, filename) for name, filename in tasks.items()}


def store_folder(workspace_root: Path) -> Path:
    """The workspace's benchmark store, where `fl evaluate add-benchmark` copies files."""
    return Path(workspace_root) / STORE_FOLDER


def _existing(path: Path, option: str) -> Path:
    path = path.expanduser()
    if not path.is_dir():
        raise InputError(
            f"{option} {path}: not a folder",
            hint="point it at a folder of benchmark files, or leave it unset to use the "
            "workspace store and the files shipped with fl",
        )
    return path.resolve()
