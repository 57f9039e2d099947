"""Benchmark decontamination: a word n-gram index over benchmark items, and a filter that flags or
drops records sharing n-grams with them.

An item's question and answer together are indexed by `n`-grams (13 by default); its question alone
by `n`-grams too when it has at least `short_below` words, else by `short_n`-grams (8), and a
question shorter than that by its whole normalised word sequence. Hashes are
stable (blake2b per word, polynomial per n-gram) so the index built once is valid in every worker.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from frontload.curate.readers import expand_path
from frontload.curate.recipe import BenchmarkFile, DecontamConfig
from frontload.errors import ConfigError, DataError, InputError

WORD = re.compile(r"[^\W_]+")
MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def words_of(text: str) -> list[str]:
    """Lower-cased alphanumeric words: case, punctuation and whitespace edits do not matter."""
    return WORD.findall(text.lower())


class WordHasher:
    """Stable 64-bit word hashes, cached per process."""

    def __init__(self) -> None:
        self.cache: dict[str, int] = {}

    def __call__(self, words: list[str]) -> np.ndarray:
        cache, out = self.cache, np.empty(len(words), dtype=np.uint64)
        for index, word in enumerate(words):
            value = cache.get(word)
            if value is None:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                value = cache[word] = int.from_bytes(digest, "little")
            out[index] = value
        return out


def ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """Hash of every window of n words, (len - n + 1,) uint64."""
    count = len(word_hashes) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        out = word_hashes[:count].copy()
        for offset in range(1, n):
            out = out * MULTIPLIER + word_hashes[offset : offset + count]
    return out


Item = tuple[str, str | None]  # (question, question + answers or None)


def load_benchmark_items(spec: BenchmarkFile, workspace_root: Path | None) -> dict[str, list[Item]]:
    """{benchmark name: [(question, question+answer), ...]} for a file or glob of jsonl/json/csv."""
    pattern = expand_path(spec.path, workspace_root)
    paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if not paths or not all(Path(p).is_file() for p in paths):
        missing = pattern if not paths else next(p for p in paths if not Path(p).is_file())
        raise InputError(f"decontam benchmark {missing}: file not found (or empty glob)")
    items: dict[str, list[Item]] = {}
    for path in map(Path, paths):
        name = spec.name or path.name.split(".")[0]
        items.setdefault(name, []).extend(_read_items(path, spec))
    return items


def _read_items(path: Path, spec: BenchmarkFile) -> list[Item]:
    name = path.name.lower()
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
            if name.endswith((".csv", ".csv.gz")):
                return [
                    (row[0], None) for row in csv.reader(handle) if row and row[0] != "question"
                ]
            if name.endswith((".json", ".json.gz")):
                rows = json.load(handle)
                rows = rows if isinstance(rows, list) else list(rows.values())
            elif name.endswith((".jsonl", ".jsonl.gz")):
                rows = [json.loads(line) for line in handle if line.strip()]
            else:
                raise ConfigError(f"decontam benchmark {path}: use .jsonl, .json or .csv (or .gz)")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"decontam benchmark {path}: cannot parse ({error})") from error
    items: list[Item] = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        question = next((str(row[k]) for k in spec.prompt_fields if row.get(k)), None)
        if question is None:
            continue
        answers = [str(row[k]) for k in spec.answer_fields if row.get(k)]
        items.append((question, "\n".join([question, *answers]) if answers else None))
    if not items:
        raise ConfigError(
            f"decontam benchmark {path}: none of the fields {spec.prompt_fields} found",
            "set prompt_fields on the benchmark entry",
        )
    return items


@dataclass
class DecontamIndex:
    """Sorted n-gram hashes per n-gram size, each mapped to the benchmark item it came from."""

    names: list[str]  # benchmark name per item
    needed: np.ndarray  # matches needed to flag each item, (items,)
    tables: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # n -> (h, item)
    whole: dict[int, int] = field(default_factory=dict)  # hash of a very short item -> item

    def save(self, path: Path) -> None:
        # Plain arrays only (names as fixed-width unicode), so loading never needs pickle.
        arrays = {"needed": self.needed, "names": np.array(self.names, dtype=np.str_)}
        for n, (hashes, items) in self.tables.items():
            arrays[f"h{n}"], arrays[f"i{n}"] = hashes, items
        arrays["whole_h"] = np.array(list(self.whole), dtype=np.uint64)
        arrays["whole_i"] = np.array(list(self.whole.values()), dtype=np.int64)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> DecontamIndex:
        """Read without pickles: an index holding objects (code) is refused, never unpickled."""
        try:
            data = np.load(path, allow_pickle=False)
            data["needed"], data["names"], data["whole_h"], data["whole_i"]
        except (ValueError, KeyError, OSError, EOFError) as error:
            raise DataError(
                f"{path}: not a plain decontamination index, refused to load it ({error})",
                "delete the file; `fl curate run` rebuilds it from the recipe's benchmarks",
            ) from None
        tables = {
            int(key[1:]): (data[key], data[f"i{key[1:]}"])
            for key in data.files
            if key.startswith("h") and key[1:].isdigit()
        }
        whole = dict(zip(data["whole_h"].tolist(), data["whole_i"].tolist(), strict=True))
        return cls(list(data["names"]), data["needed"], tables, whole)


def build_index(config: DecontamConfig, workspace_root: Path | None = None) -> DecontamIndex:
    """Index every benchmark item of the recipe (raises before work on a bad benchmark file)."""
    hasher, names, needed = WordHasher(), [], []
    per_n: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    whole: dict[int, int] = {}

    def add(item: int, hashes: np.ndarray, n: int) -> None:
        bucket = per_n.setdefault(n, ([], []))
        bucket[0].append(hashes)
        bucket[1].append(np.full(len(hashes), item, dtype=np.int64))

    for spec in config.benchmarks:
        for name, items in load_benchmark_items(spec, workspace_root).items():
            for question, full in items:
                item, words = len(names), words_of(question)
                names.append(name)
                n = config.n if len(words) >= config.short_below else config.short_n
                hashes = ngram_hashes(hasher(words), n)
                count = len(hashes)
                if count:
                    add(item, hashes, n)
                elif words:
                    whole[int(ngram_hashes(hasher(words), len(words))[0])] = item
                if full is not None:
                    full_hashes = ngram_hashes(hasher(words_of(full)), config.n)
                    count += len(full_hashes)
                    if len(full_hashes):
                        add(item, full_hashes, config.n)
                needed.append(min(config.min_matches, max(1, count)))
    tables = {}
    for n, (hash_parts, item_parts) in per_n.items():
        hashes, items = np.concatenate(hash_parts), np.concatenate(item_parts)
        order = np.argsort(hashes, kind="stable")
        tables[n] = (hashes[order], items[order])
    return DecontamIndex(names, np.array(needed, dtype=np.int64), tables, whole)


class DecontamFilter(BaseFilter):
    """Sets `contaminated` to the benchmarks a record overlaps; drops it when the recipe says so."""

    name = "decontam"

    def __init__(self, index_path: Path, action: str, exclusion_writer: DiskWriter | None = None):
        super().__init__(exclusion_writer)
        self.index_path = Path(index_path)
        self.action = action
        self._index: DecontamIndex | None = None
        self._hasher = WordHasher()

    def matches(self, text: str, prompt: str = "") -> list[str]:
        """Sorted names of the benchmarks this text (or exactly this prompt) overlaps."""
        if self._index is None:
            self._index = DecontamIndex.load(self.index_path)
        index, words = self._index, words_of(text)
        word_hashes = self._hasher(words)
        hits: Counter[int] = Counter()
        for n, (table, items) in index.tables.items():
            hashes = np.unique(ngram_hashes(word_hashes, n))
            if len(hashes) == 0 or len(table) == 0:
                continue
            position = np.searchsorted(table, hashes)
            position[position == len(table)] = 0
            for hashed in hashes[table[position] == hashes]:
                left = np.searchsorted(table, hashed)
                right = np.searchsorted(table, hashed, side="right")
                hits.update(set(items[left:right].tolist()))
        for candidate in (words, words_of(prompt)) if index.whole else ():
            # very short items match only as the whole text or the whole prompt
            if candidate:
                item = index.whole.get(
                    int(ngram_hashes(self._hasher(candidate), len(candidate))[0])
                )
                if item is not None:
                    hits[item] += int(index.needed[item])
        return sorted({index.names[item] for item, n in hits.items() if n >= index.needed[item]})

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        found = self.matches(doc.text, doc.metadata.get("prompt") or "")
        doc.metadata["contaminated"] = found
        if found:
            self.stat_update("contaminated")
            for name in found:
                self.stat_update(f"contaminated_{name}")
            if self.action == "drop":
                return False, f"contaminated:{','.join(found)}"
        return True
