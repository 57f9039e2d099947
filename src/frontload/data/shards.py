"""The packed token format on disk, and a validating memory-mapped reader.

A token dataset is a folder `tokens/<corpus>/` with, per shard `shard-NNNNN`:
`.tokens.bin` (flat uint16 or uint32 ids; each document ends with EOS), `.docs.bin` (int64 document
offsets, documents + 1 entries, first 0, last = tokens), optional `.mask.bin` (uint8 per token, 1 =
trained: assistant tokens of chat data), and `.json` (the shard's counts, written last). The folder's
`manifest.json` lists the shards. Every file is written under a temporary name and renamed, and the
reader checks sizes and offsets, so a killed writer never leaves a shard that a reader accepts.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frontload.errors import DataError, StageNotReady
from frontload.workspace import Workspace

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
OFFSET_DTYPE = np.dtype("<i8")
MASK_DTYPE = np.dtype("u1")


def token_dir(workspace: Workspace, corpus: str, must_exist: bool = True) -> Path:
    """Where the token dataset `corpus` lives, the one way every stage resolves it: a path
    (absolute, or with a `/`) as given, else `tokens/<name>` in lower case (the names `fl data
    tokenize` writes; plans and recipes may spell a corpus `DSHQ` or `dshq`). Missing is an error
    naming the command that makes it (unless `must_exist` is False: a path to name elsewhere)."""
    candidate = Path(corpus).expanduser()
    named = not candidate.is_absolute() and "/" not in corpus
    path = workspace.tokens_dir / corpus.lower() if named else candidate
    if must_exist and not (path / MANIFEST).is_file():
        raise StageNotReady(
            f"token dataset {corpus!r} not found at {path}",
            f"run `fl data tokenize --corpus {candidate.name}` first, or fix the corpus name",
        )
    return path


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits, else uint32."""
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def shard_files(folder: Path, name: str) -> dict[str, Path]:
    """The files of one shard, by role."""
    return {
        "tokens": folder / f"{name}.tokens.bin",
        "docs": folder / f"{name}.docs.bin",
        "mask": folder / f"{name}.mask.bin",
        "meta": folder / f"{name}.json",
    }


def atomic_write_bytes(path: Path, data: bytes | np.ndarray) -> None:
    """Write to a temporary name, fsync, then rename: readers see the whole file or none."""
    tmp = _tmp(path)
    with open(tmp, "wb") as handle:
        handle.write(data.tobytes() if isinstance(data, np.ndarray) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, payload: dict) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


class ShardWriter:
    """Append documents to a shard under temporary names; `close()` renames and writes `.json` last."""

    def __init__(self, folder: Path, name: str, dtype: np.dtype, with_mask: bool) -> None:
        self.folder, self.name, self.dtype = folder, name, np.dtype(dtype)
        self.files = shard_files(folder, name)
        roles = ("tokens", "docs", "mask") if with_mask else ("tokens", "docs")
        for role, path in self.files.items():  # a stale shard must not survive a rewrite
            if role not in roles:
                path.unlink(missing_ok=True)
        self.files["meta"].unlink(missing_ok=True)
        # Kept open across append() calls; close() flushes, fsyncs and renames them.
        self.handles = {role: open(_tmp(self.files[role]), "wb") for role in roles}  # noqa: SIM115
        self.handles["docs"].write(np.zeros(1, dtype=OFFSET_DTYPE).tobytes())
        self.tokens = 0
        self.documents = 0

    def append(self, tokens: np.ndarray, lengths: np.ndarray, mask: np.ndarray | None) -> None:
        """Documents laid end to end: `tokens` (N,), their `lengths` (D,), `mask` (N,) for chat."""
        if len(tokens) and int(tokens.max()) > np.iinfo(self.dtype).max:
            raise DataError(
                f"token id {int(tokens.max())} does not fit the shard dtype {self.dtype.name}",
                hint="the tokenizer's ids exceed its reported vocab size; re-save the tokenizer",
            )
        self.handles["tokens"].write(tokens.astype(self.dtype, copy=False).tobytes())
        ends = self.tokens + np.cumsum(lengths, dtype=OFFSET_DTYPE)
        self.handles["docs"].write(ends.astype(OFFSET_DTYPE, copy=False).tobytes())
        if "mask" in self.handles:
            self.handles["mask"].write(np.asarray(mask, dtype=MASK_DTYPE).tobytes())
        self.tokens += int(len(tokens))
        self.documents += int(len(lengths))

    def close(self, meta: dict) -> dict:
        for role, handle in self.handles.items():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(_tmp(self.files[role]), self.files[role])
        meta = {
            **meta,
            "name": self.name,
            "tokens": self.tokens,
            "documents": self.documents,
            "dtype": self.dtype.name,
            "has_mask": "mask" in self.handles,
        }
        atomic_write_json(self.files["meta"], meta)
        return meta


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def read_shard_meta(folder: Path, name: str) -> dict | None:
    """A shard's `.json` when the shard looks complete (sizes agree), else None."""
    files = shard_files(folder, name)
    try:
        meta = json.loads(files["meta"].read_text())
        validate_sizes(folder, meta)
    except (OSError, ValueError, KeyError, DataError):
        return None
    return meta


def validate_sizes(folder: Path, meta: dict) -> None:
    """File sizes must match the shard's counts exactly (a cut or foreign file fails here)."""
    files = shard_files(folder, meta["name"])
    itemsize = np.dtype(meta["dtype"]).itemsize
    expected = {
        "tokens": meta["tokens"] * itemsize,
        "docs": (meta["documents"] + 1) * OFFSET_DTYPE.itemsize,
    }
    if meta["has_mask"]:
        expected["mask"] = meta["tokens"] * MASK_DTYPE.itemsize
    for role, size in expected.items():
        path = files[role]
        if not path.is_file():
            raise DataError(
                f"shard file {path} is missing",
                hint="re-run `fl data tokenize` for this corpus; it rebuilds missing shards",
            )
        actual = path.stat().st_size
        unit = itemsize if role == "tokens" else OFFSET_DTYPE.itemsize if role == "docs" else 1
        if actual % unit:
            raise DataError(
                f"corrupted shard {path}: {actual} bytes is not a multiple of the {unit}-byte "
                f"{'token dtype ' + meta['dtype'] if role == 'tokens' else role + ' entries'}",
                hint="delete the shard's files and re-run `fl data tokenize`",
            )
        if actual != size:
            raise DataError(
                f"corrupted shard {path}: {actual} bytes, expected {size} from {meta['name']}.json",
                hint="delete the shard's files and re-run `fl data tokenize`",
            )


@dataclass
class TokenDataset:
    """A validated token dataset: memory-mapped shards plus a global document index."""

    path: Path
    manifest: dict
    tokens: list[np.ndarray]  # one memmap per shard
    masks: list[np.ndarray | None]
    doc_shard: np.ndarray  # (D,) int32: shard of each document
    doc_start: np.ndarray  # (D,) int64: first token within its shard
    doc_len: np.ndarray  # (D,) int64

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.path.name)

    @property
    def num_tokens(self) -> int:
        return int(self.manifest["tokens"])

    @property
    def num_documents(self) -> int:
        return int(self.manifest["documents"])

    @property
    def tokenizer_hash(self) -> str:
        return self.manifest["tokenizer_hash"]

    @property
    def has_mask(self) -> bool:
        return any(mask is not None for mask in self.masks)

    @classmethod
    def open(cls, path: Path | str, expected_tokenizer_hash: str | None = None) -> TokenDataset:
        """Open and check a token dataset; raise DataError naming the bad file."""
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise StageNotReady(
                f"no token dataset at {path} ({MANIFEST} missing)",
                hint=f"run `fl data tokenize --corpus {path.name}` first",
            )
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError as exc:
            raise DataError(f"{manifest_path} is not valid JSON: {exc}") from exc
        found = manifest.get("tokenizer_hash")
        if expected_tokenizer_hash is not None and found != expected_tokenizer_hash:
            raise DataError(
                f"token dataset {path} was written by tokenizer {found}, but the trainer's "
                f"tokenizer is {expected_tokenizer_hash}",
                hint=f"re-tokenize with the trainer's tokenizer: `fl data tokenize --corpus "
                f"{path.name} --tokenizer DIR` (it rewrites shards of another tokenizer)",
            )
        if not isinstance(manifest.get("shards"), list) or "tokens" not in manifest:
            raise DataError(
                f"{manifest_path} is not a token dataset manifest (no shards/tokens)",
                hint=f"re-run `fl data tokenize --corpus {path.name}`",
            )
        tokens, masks, shard_ids, starts, lengths = [], [], [], [], []
        for index, meta in enumerate(manifest["shards"]):
            validate_sizes(path, meta)
            files = shard_files(path, meta["name"])
            dtype = np.dtype(meta["dtype"])
            count = meta["tokens"]
            tokens.append(_memmap(files["tokens"], dtype, count))
            masks.append(_memmap(files["mask"], MASK_DTYPE, count) if meta["has_mask"] else None)
            offsets = np.fromfile(files["docs"], dtype=OFFSET_DTYPE)
            _check_offsets(files["docs"], offsets, count)
            shard_ids.append(np.full(len(offsets) - 1, index, dtype=np.int32))
            starts.append(offsets[:-1])
            lengths.append(np.diff(offsets))
        if not shard_ids or sum(len(s) for s in shard_ids) == 0:
            raise DataError(
                f"token dataset {path} has no documents",
                hint="the corpus was empty when tokenized; rebuild the corpus and re-tokenize",
            )
        return cls(
            path=path,
            manifest=manifest,
            tokens=tokens,
            masks=masks,
            doc_shard=np.concatenate(shard_ids),
            doc_start=np.concatenate(starts),
            doc_len=np.concatenate(lengths),
        )

    def document(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Tokens (and loss mask, if any) of one document, as memory-mapped views."""
        shard = int(self.doc_shard[index])
        start = int(self.doc_start[index])
        stop = start + int(self.doc_len[index])
        mask = self.masks[shard]
        return self.tokens[shard][start:stop], None if mask is None else mask[start:stop]


def _memmap(path: Path, dtype: np.dtype, count: int) -> np.ndarray:
    """Read-only map; random-access advice, since the blend reads shuffled documents, so the
    kernel does not read ahead whole neighbouring blocks into the process's resident set."""
    if count == 0:
        return np.zeros(0, dtype=dtype)
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mapped, dtype=dtype, count=count)


def _check_offsets(path: Path, offsets: np.ndarray, num_tokens: int) -> None:
    """Offsets start at 0, never decrease, and end at the shard's token count."""
    bad = (
        len(offsets) == 0
        or offsets[0] != 0
        or offsets[-1] != num_tokens
        or bool(np.any(np.diff(offsets) < 0))
    )
    if bad:
        raise DataError(
            f"corrupted shard {path}: document offsets out of range (they must start at 0, not "
            f"decrease, and end at the shard's {num_tokens} tokens)",
            hint="delete the shard's files and re-run `fl data tokenize`",
        )
