"""`hf:DATASET[:SPLIT]` sources, read with `datasets.load_dataset` like any harness does.

DATASET is a hub name (`openai/gsm8k`, loaded with the task's config) or a local data file or
folder, as a path or a `file://` URL (`hf:file:///data/gsm8k-test.parquet:test`): the same loader
reads a copy downloaded elsewhere, which is also how this is tested offline. SPLIT defaults to the
task's own (`test` for most). Without a reachable hub a hub name fails with one line.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from frontload.errors import InputError

PREFIX = "hf:"
SPLIT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


@dataclass(frozen=True)
class HubSource:
    """What an `hf:` source names: a dataset (hub name, local path or file:// URL) and a split."""

    dataset: str
    split: str | None  # None: the task's default split

    @classmethod
    def parse(cls, text: str) -> HubSource:
        """`hf:NAME` or `hf:NAME:SPLIT`; the split is what follows the last colon when it is a
        plain name (so `file:///a/b.parquet` keeps its own colon)."""
        body = text.removeprefix(PREFIX).strip()
        name, sep, split = body.rpartition(":")
        if sep and name and SPLIT_NAME.match(split):
            return cls(name, split)
        if not body:
            raise InputError(f"{text!r}: no dataset named", hint="e.g. hf:openai/gsm8k:test")
        return cls(body, None)

    def local_path(self) -> Path | None:
        """The local file or folder this names, or None for a hub name."""
        if self.dataset.startswith("file://"):
            return Path(unquote(urlparse(self.dataset).path))
        path = Path(self.dataset).expanduser()
        return path if path.exists() else None


def load_hub(text: str, config: str | None, default_split: str) -> list[dict]:
    """Records of an `hf:` source through `datasets` (hub name: the task's `config`)."""
    source = HubSource.parse(text)
    split = source.split or default_split
    local = source.local_path()
    try:
        import datasets

        if local is None:
            data = datasets.load_dataset(source.dataset, config, split=split)
        else:
            data = _load_local(datasets, local, split)
        return [dict(row) for row in data]
    except InputError:
        raise
    except Exception as error:  # the hub is optional; say what failed, in one line
        message = str(error).splitlines()[0][:200] if str(error) else ""
        raise InputError(
            f"cannot load {PREFIX}{source.dataset} split {split} ({type(error).__name__}: "
            f"{message})",
            hint="without a hub, pass local files (--data-dir, --task-file, or "
            "`fl evaluate add-benchmark NAME FILE`)",
        ) from None


def _load_local(datasets, path: Path, split: str):
    """A local file through its packaged builder, or a folder in a hub layout; the cache is a
    temporary folder, so reading a local copy leaves nothing behind."""
    if not path.exists():
        raise InputError(f"{path}: not found", hint="check the path after hf:")
    with tempfile.TemporaryDirectory(prefix="fl-hf-") as cache:
        if path.is_dir():
            return list(datasets.load_dataset(str(path), split=split, cache_dir=cache))
        builder = BUILDERS.get(Path(path.name.removesuffix(".gz")).suffix)
        if builder is None:
            raise InputError(
                f"{path}: cannot read {''.join(path.suffixes) or 'a file without suffix'}",
                hint="use .parquet, .jsonl, .json or .csv (optionally .gz)",
            )
        files = {split: str(path)}
        return list(datasets.load_dataset(builder, data_files=files, split=split, cache_dir=cache))
