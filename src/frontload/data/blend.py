"""A weighted blend of token datasets served as packed, rank-sharded, resumable batches.

Each global sequence (seq_len tokens) comes from one source. Which source is decided by
earliest-deadline apportionment over the weights, so after any number of sequences every source is
less than one sequence away from its share. A source is an endless stream of its documents (each
ending with EOS), reshuffled every epoch by a generator keyed on (seed, source, epoch); the j-th
sequence of a source is tokens [j*L, (j+1)*L) of that stream. Everything is a function of
(seed, global sequence index), so ranks take disjoint slices of each global batch and a resumed
blend needs only the counters in `state_dict()`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frontload.data.shards import TokenDataset
from frontload.errors import ConfigError, DataError

IGNORE_INDEX = -100
STATE_VERSION = 1


@dataclass
class BlendSource:
    """One token dataset and what the blend should take from it: a weight or a token count."""

    path: Path
    weight: float | None = None
    tokens: int | None = None
    max_epochs: float | None = None
    holdout_tokens: int = 0  # the last documents holding this many tokens are never served

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        for key in ("weight", "tokens", "max_epochs", "holdout_tokens"):
            value = getattr(self, key)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ConfigError(
                    f"blend source {self.path.name}: {key} must be a finite number >= 0, got {value}"
                )
        if self.max_epochs == 0:
            raise ConfigError(f"blend source {self.path.name}: max_epochs must be > 0")


def resolve_weights(sources: list[BlendSource], total_tokens: int | None) -> np.ndarray:
    """Normalised weights from each source's weight, or its tokens (over the total when mixed)."""
    if not sources:
        raise ConfigError("a blend needs at least one source")
    with_tokens = [s.tokens is not None for s in sources]
    with_weight = [s.weight is not None for s in sources]
    if not any(with_tokens) and not all(with_weight):
        missing = [s.path.name for s in sources if s.weight is None]
        raise ConfigError(f"blend sources {missing} have neither a weight nor a token count")
    if any(with_tokens) and not all(with_tokens):
        if total_tokens is None:
            raise ConfigError(
                "blend mixes sources given by tokens and by weight without a total",
                hint="give every source tokens, every source a weight, or set total_tokens",
            )
        raw = [s.tokens / total_tokens if s.tokens is not None else s.weight for s in sources]
    elif all(with_tokens):
        raw = [float(s.tokens) for s in sources]
    else:
        raw = [float(s.weight) for s in sources]
    weights = np.asarray(raw, dtype=np.float64)
    if weights.sum() <= 0:
        raise ConfigError(
            "blend weights sum to zero",
            hint="give at least one source a positive weight or token count",
        )
    return weights / weights.sum()


def holdout_start(dataset: TokenDataset, tokens: int) -> int:
    """Index of the first held-out document: the fewest last documents holding >= `tokens` tokens.

    The trainer validates on exactly these documents, so the blend must never serve them."""
    if tokens <= 0:
        return dataset.num_documents
    tail = np.cumsum(dataset.doc_len[::-1])
    start = dataset.num_documents - min(int(np.searchsorted(tail, tokens)) + 1, len(tail))
    if start == 0:
        raise DataError(
            f"{dataset.name}: holding out {tokens:,} tokens for validation leaves no documents "
            f"to train on (it has {dataset.num_tokens:,})",
            hint="lower data.validation_tokens, or add data to the corpus",
        )
    return start


class SourceStream:
    """A dataset's first `documents` documents read as an endless stream, reshuffled every epoch."""

    def __init__(self, dataset: TokenDataset, seed: int, index: int, documents: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.index = index
        self.documents = documents
        self.tokens = int(dataset.doc_len[:documents].sum())  # tokens of one epoch
        self._epochs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Document order of an epoch and the cumulative token counts along it."""
        if epoch not in self._epochs:
            rng = np.random.Generator(np.random.PCG64([self.seed, self.index, epoch]))
            order = rng.permutation(self.documents)
            ends = np.cumsum(self.dataset.doc_len[order])
            if len(self._epochs) >= 2:  # rows move forward: older epochs are never read again
                self._epochs.pop(min(self._epochs))
            self._epochs[epoch] = (order, ends)
        return self._epochs[epoch]

    def documents_started(self, tokens: int) -> int:
        """Documents whose first token lies within the first `tokens` tokens of the stream."""
        if tokens <= 0:
            return 0
        epoch, offset = divmod(int(tokens), self.tokens)
        count = epoch * self.documents
        if offset:
            order, ends = self._epoch(epoch)
            starts = ends - self.dataset.doc_len[order]
            count += int(np.searchsorted(starts, offset, side="left"))
        return count

    def read(self, start: int, length: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Tokens [start, start+length) of the stream: ids, loss mask (or None), document index."""
        ids = np.empty(length, dtype=np.int64)
        mask = np.ones(length, dtype=np.uint8) if self.dataset.has_mask else None
        seq_idx = np.empty(length, dtype=np.int32)
        total = self.tokens
        filled, doc_in_row = 0, 0
        while filled < length:
            epoch, offset = divmod(start + filled, total)
            order, ends = self._epoch(epoch)
            position = int(np.searchsorted(ends, offset, side="right"))
            doc = int(order[position])
            within = offset - (int(ends[position]) - int(self.dataset.doc_len[doc]))
            tokens, doc_mask = self.dataset.document(doc)
            take = min(len(tokens) - within, length - filled)
            ids[filled : filled + take] = tokens[within : within + take]
            if mask is not None and doc_mask is not None:
                mask[filled : filled + take] = doc_mask[within : within + take]
            seq_idx[filled : filled + take] = doc_in_row
            doc_in_row += 1
            filled += take
        return ids, mask, seq_idx


class Blend:
    """Weighted, deterministic, rank-sharded batches of packed sequences; resumable from its state."""

    def __init__(
        self,
        sources: list[BlendSource],
        seq_len: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        expected_tokenizer_hash: str | None = None,
        total_tokens: int | None = None,
    ) -> None:
        if seq_len < 1:
            raise ConfigError(f"seq_len must be >= 1, got {seq_len}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in a world of size {world_size}")
        if total_tokens is not None and total_tokens <= 0:
            raise ConfigError(f"total_tokens must be > 0, got {total_tokens}")
        self.sources = list(sources)
        self.weights = resolve_weights(self.sources, total_tokens)
        self.seq_len, self.seed = int(seq_len), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.total_tokens = total_tokens
        self.datasets = [TokenDataset.open(s.path, expected_tokenizer_hash) for s in self.sources]
        self._check_same_tokenizer()
        self.streams = [
            SourceStream(d, self.seed, i, holdout_start(d, s.holdout_tokens))
            for i, (d, s) in enumerate(zip(self.datasets, self.sources, strict=True))
        ]
        self._check_epoch_caps()
        self.step = 0  # global sequences handed out (all ranks)
        self.served = np.zeros(len(self.sources), dtype=np.int64)  # sequences per source

    def _check_same_tokenizer(self) -> None:
        hashes = {d.tokenizer_hash for d in self.datasets}
        if len(hashes) > 1:
            found = ", ".join(f"{d.path.name}: {d.tokenizer_hash}" for d in self.datasets)
            raise DataError(
                f"blend sources were tokenized by different tokenizers ({found})",
                hint="re-tokenize every corpus with one tokenizer (`fl data tokenize`)",
            )

    def _check_epoch_caps(self) -> None:
        if self.total_tokens is None:
            return
        for source, weight, stream in zip(self.sources, self.weights, self.streams, strict=True):
            needed = weight * self.total_tokens / stream.tokens
            if source.max_epochs is not None and needed > source.max_epochs + 1e-9:
                raise ConfigError(
                    f"blend source {stream.dataset.name} needs {needed:.2f} epochs of its "
                    f"{stream.tokens:,} tokens, over its max_epochs {source.max_epochs}",
                    hint="lower its tokens/weight, raise max_epochs, or add data to the corpus",
                )

    @property
    def tokenizer_hash(self) -> str:
        return self.datasets[0].tokenizer_hash

    def _choose(self, k: int) -> int:
        """Source of global sequence k (0-based): earliest deadline among sources behind target."""
        behind = self.weights * (k + 1) - self.served > 1e-9
        deadline = np.full(len(self.weights), np.inf)
        np.divide(self.served + 1, self.weights, out=deadline, where=behind)
        return int(np.argmin(deadline))

    def next_batch(self, batch_size: int) -> dict[str, np.ndarray]:
        """This rank's `batch_size` rows of the next global batch (batch_size x world_size rows)."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        mine = range(self.rank * batch_size, (self.rank + 1) * batch_size)
        return self.advance(batch_size * self.world_size, mine)

    def advance(self, count: int, mine: range) -> dict[str, np.ndarray]:
        """Hand out the next `count` global sequences; return the rows whose place among them
        (0..count-1) is in `mine` (this rank's share; a staged run may split a global batch
        between two phases' blends)."""
        length = self.seq_len
        input_ids = np.empty((len(mine), length), dtype=np.int64)
        labels = np.empty((len(mine), length), dtype=np.int64)
        seq_idx = np.empty((len(mine), length), dtype=np.int32)
        for row in range(count):
            source = self._choose(self.step)
            index = int(self.served[source])
            self._check_cap(source, index + 1)
            self.served[source] += 1
            self.step += 1
            if row in mine:
                ids, mask, docs = self.streams[source].read(index * length, length)
                at = row - mine.start
                input_ids[at], seq_idx[at] = ids, docs
                labels[at] = ids if mask is None else np.where(mask == 1, ids, IGNORE_INDEX)
        return {"input_ids": input_ids, "labels": labels, "seq_idx": seq_idx}

    def _check_cap(self, source: int, sequences: int) -> None:
        cap = self.sources[source].max_epochs
        stream = self.streams[source]
        if cap is not None and sequences * self.seq_len > cap * stream.tokens:
            raise DataError(
                f"blend source {stream.dataset.name} reached its max_epochs {cap} "
                f"({stream.tokens:,} tokens per epoch)",
                hint="set total_tokens so the blend can check epochs up front, or raise max_epochs",
            )

    def state_dict(self) -> dict:
        """JSON-serialisable position: global sequence count and per-source counts and epochs."""
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "step": int(self.step),
            "tokens_served": int(self.step * self.seq_len),
            "sources": [
                {
                    "name": st.dataset.name,
                    "tokens": st.tokens,
                    "weight": float(w),
                    "sequences": int(n),
                    "epoch": int(n * self.seq_len // st.tokens),
                }
                for st, w, n in zip(self.streams, self.weights, self.served, strict=True)
            ],
            "rng": "PCG64 keyed by (seed, source index, epoch)",
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where `state` was taken; refuses a state from a different blend."""
        expected = self.state_dict()
        for key in ("version", "seed", "seq_len"):
            if state.get(key) != expected[key]:
                raise ConfigError(
                    f"blend state has {key}={state.get(key)!r}, this blend has {expected[key]!r}",
                    hint="resume with the same seed, sequence length and sources",
                )
        mine = [(s["name"], s["tokens"], round(s["weight"], 12)) for s in expected["sources"]]
        theirs = [(s["name"], s["tokens"], round(s["weight"], 12)) for s in state["sources"]]
        if mine != theirs:
            raise ConfigError(
                f"blend state was saved for sources {theirs}, this blend has {mine}",
                hint="resume with the same token datasets and weights",
            )
        self.step = int(state["step"])
        self.served = np.asarray([s["sequences"] for s in state["sources"]], dtype=np.int64)

    def report(self) -> dict:
        """Tokens served and epochs used per source, against the target shares."""
        served_tokens = self.served * self.seq_len
        total = int(served_tokens.sum())
        rows = []
        for source, stream, weight, tokens in zip(
            self.sources, self.streams, self.weights, served_tokens, strict=True
        ):
            rows.append(
                {
                    "name": stream.dataset.name,
                    "path": str(source.path),
                    "weight": float(weight),
                    "target_tokens": None
                    if self.total_tokens is None
                    else weight * self.total_tokens,
                    "tokens_served": int(tokens),
                    "documents_served": stream.documents_started(int(tokens)),
                    "share": float(tokens / total) if total else 0.0,
                    "dataset_tokens": stream.tokens,
                    "held_out_documents": stream.dataset.num_documents - stream.documents,
                    "epochs_used": float(tokens / stream.tokens),
                    "max_epochs": source.max_epochs,
                }
            )
        return {"tokens_served": total, "seq_len": self.seq_len, "sources": rows}
