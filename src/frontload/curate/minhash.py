"""Vectorised MinHash signatures for a batch of texts, with numbers kept apart.

Hashing one shingle at a time in Python costs ~1 µs per word; here a whole batch of texts is one
byte buffer and every step is a numpy pass over it:

1. normalise: lower case, punctuation and control characters to spaces (one `bytes.translate`
   over the batch; the non-ASCII characters of a text first go through NFD with combining marks
   dropped, as datatrove's `simplify_text` does, numbers kept);
2. word ids: a polynomial hash of each run of non-space bytes from prefix sums (wrapping 64-bit
   arithmetic), finished with splitmix64; the digit runs of step 5 reuse the same prefix sums;
3. shingles: each word n-gram combines its word ids with odd position weights, never across texts;
4. MinHash: `num_hashes` multiply-add permutations on 32-bit shingles, minimum per text; a text
   with numbers also gets as many shingles derived from its number sequence as it has word
   shingles (their minimum drawn in O(1), see `_number_block`), so paraphrases that keep the
   numbers move up;
5. numbers: the text's sequence of digit runs is hashed into the first row of every LSH band, so
   two texts can share a band only when they hold the same numbers in the same order. Problems
   that differ only in their numbers therefore never merge, whatever their word overlap.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np
from datatrove.utils.text import PUNCTUATION

_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_PRIME = 0x100000001B3  # odd base of the byte polynomial
_CHUNK = 8192  # shingles per MinHash window: (160, 8192) uint32 is 5 MiB, in L3; shorter was slower
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")

# bytes -> bytes: ASCII upper case to lower, ASCII punctuation and control characters to a space
_TABLE = bytearray(range(256))
for _byte in range(256):
    if _byte < 33 or _byte == 127:
        _TABLE[_byte] = 32
    elif 65 <= _byte <= 90:
        _TABLE[_byte] = _byte + 32
for _char in PUNCTUATION:
    if ord(_char) < 128:
        _TABLE[ord(_char)] = 32
_TABLE = bytes(_TABLE)


def mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (a bijection of uint64) on an array, in place; returns it."""
    values ^= values >> np.uint64(30)
    values *= _MIX[0]
    values ^= values >> np.uint64(27)
    values *= _MIX[1]
    values ^= values >> np.uint64(31)
    return values


class _Folding(dict):
    """str.translate table for non-ASCII characters, built as they are met: Unicode punctuation and
    spaces to a space, combining marks (Mn) removed, anything else kept (scanning all of Unicode up
    front costs ~1 s)."""

    _punctuation = frozenset(PUNCTUATION)

    def __missing__(self, cp: int) -> str | None:
        char = chr(cp)
        if char in self._punctuation or char.isspace():
            value: str | None = " "
        elif unicodedata.category(char) == "Mn":
            value = None
        else:
            value = char
        self[cp] = value
        return value


_FOLDING = _Folding()


def _fold_run(match: re.Match) -> str:
    return match[0].translate(_FOLDING)


def _fold(text: str) -> bytes:
    """The text as UTF-8, its non-ASCII characters folded: lower case, NFD with combining marks
    dropped, Unicode punctuation and spaces to a space (ASCII is left to _TABLE).

    str.translate costs ~30 ns a character, so only the runs of non-ASCII characters go through
    it; ASCII text (most of a corpus) is only encoded.
    """
    if text.isascii():
        return text.encode("ascii")
    text = unicodedata.normalize("NFD", text.lower())
    return _NON_ASCII.sub(_fold_run, text).encode("utf-8")


def normalise(text: str) -> bytes:
    """Lower case, no punctuation, no diacritics, numbers kept; words split by spaces."""
    return _fold(text).translate(_TABLE)


def normalise_batch(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(data, ends): the normalised texts joined by a space as uint8, and one past each one's end.

    One translate over the whole batch; the separator is a space like any other, so no word or
    digit run crosses from one text into the next.
    """
    folded = [_fold(text) for text in texts]
    data = np.frombuffer(b" ".join(folded).translate(_TABLE), dtype=np.uint8)
    lengths = np.fromiter(map(len, folded), dtype=np.int64, count=len(folded))
    return data, np.cumsum(lengths + 1) - 1


@functools.cache
def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """P**i and P**-i modulo 2**64 for i < length (P odd, so invertible)."""
    inverse = pow(_PRIME, -1, 1 << 64)
    power = np.full(length, _PRIME, dtype=np.uint64)
    power[0] = 1
    back = np.full(length, inverse, dtype=np.uint64)
    back[0] = 1
    return np.cumprod(power), np.cumprod(back)


def _powers_for(length: int) -> tuple[np.ndarray, np.ndarray]:
    size = 1 << max(16, (length - 1).bit_length())  # few distinct sizes, so the cache stays small
    return _powers(size)


def prefix_sums(data: np.ndarray) -> np.ndarray:
    """Wrapping prefix sums of (byte + 1) * P**i, from which any run's hash is O(1)."""
    power = _powers_for(len(data) + 1)[0]
    terms = data.astype(np.uint64)
    terms += np.uint64(1)
    terms *= power[: len(data)]
    prefix = np.zeros(len(data) + 1, dtype=np.uint64)
    np.cumsum(terms, out=prefix[1:])
    return prefix


def run_hashes(prefix: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hash of every byte run data[start:end] (`prefix` = prefix_sums(data)), then mixed."""
    back = _powers_for(len(prefix))[1]
    hashes = (prefix[ends] - prefix[starts]) * back[starts]
    hashes ^= (ends - starts).astype(np.uint64) << np.uint64(56)
    return mix64(hashes)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end positions of the runs of True in a boolean array."""
    edges = np.flatnonzero(np.diff(mask, prepend=False, append=False))  # where the value flips
    return edges[0::2], edges[1::2]


def _per_text(starts: np.ndarray, text_ends: np.ndarray) -> np.ndarray:
    """How many of the runs (by start position, sorted) fall in each text."""
    return np.diff(np.searchsorted(starts, text_ends), prepend=0)


class BatchMinHash:
    """MinHash signatures of texts, `num_buckets` bands of `hashes_per_bucket` rows (uint32 < 2**31).

    The same seed gives the same signatures in every process, so tasks on different machines agree.
    """

    def __init__(self, n_grams: int, num_buckets: int, hashes_per_bucket: int, seed: int):
        self.n_grams, self.num_buckets, self.per_bucket = n_grams, num_buckets, hashes_per_bucket
        rng = np.random.default_rng(seed)
        self.seed = np.uint64(rng.integers(0, 2**63, dtype=np.uint64))
        self.weights = rng.integers(1, 2**63, size=n_grams, dtype=np.uint64) | np.uint64(1)
        hashes = num_buckets * hashes_per_bucket
        self.perm_a = rng.integers(1, 2**32, size=hashes, dtype=np.uint64).astype(np.uint32)
        self.perm_a |= np.uint32(1)
        self.perm_b = rng.integers(0, 2**32, size=hashes, dtype=np.uint64).astype(np.uint32)

    def signatures(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(positions, signatures): the indices of the texts long enough for one n-gram, and their
        signatures as uint32 of shape (len(positions), num_buckets * hashes_per_bucket)."""
        data, text_ends = normalise_batch(texts)
        prefix = prefix_sums(data)
        starts, ends = _runs(data != 32)
        word_ids = run_hashes(prefix, starts, ends) ^ self.seed
        words = _per_text(starts, text_ends)

        n = self.n_grams
        count = len(word_ids) - n + 1
        if count <= 0:
            return np.empty(0, dtype=np.int64), np.empty((0, len(self.perm_a)), dtype=np.uint32)
        grams = word_ids[:count] * self.weights[0]
        for k in range(1, n):
            grams += word_ids[k : k + count] * self.weights[k]
        word_text = np.repeat(np.arange(len(texts)), words)
        keep = word_text[:count] == word_text[n - 1 :]  # n-grams that stay inside one text
        shingles = (mix64(grams[keep]) >> np.uint64(32)).astype(np.uint32)

        counts = np.maximum(words - (n - 1), 0)  # shingles per text, grouped in text order
        positions = np.flatnonzero(counts)
        counts = counts[positions]
        signature = self._minhash(shingles, np.cumsum(counts) - counts)
        numbers, has_numbers = self._number_hashes(data, prefix, text_ends)
        np.minimum(
            signature,
            self._number_block(numbers[positions], counts),
            out=signature,
            where=has_numbers[positions, None],
        )
        signature >>= np.uint32(1)
        self._fold_numbers(signature, numbers[positions])
        return positions, signature

    def _number_block(self, numbers: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """MinHash of a block of `count` shingles derived from the number hash, in O(1) each.

        A text with numbers gets as many number shingles as word shingles, so texts with the same
        numbers (a paraphrase) share half their shingles and move well over the LSH threshold.
        The minimum of c uniform values is drawn directly, 1 - (1 - u) ** (1 / c) with u from the
        number hash and the permutation; c is rounded to a 10% grid so that paraphrases of nearly
        the same length share the block exactly.
        """
        grid = np.round(np.log(np.maximum(counts, 1)) / np.log(1.1))
        hashes = np.arange(1, len(self.perm_a) + 1, dtype=np.uint64) * _MIX[1]
        draws = (numbers ^ (grid.astype(np.uint64) * _MIX[0]))[:, None] ^ hashes[None, :]
        # 1 - u, exactly, from 53 bits of u: np.log of it runs ~3x faster than np.log1p(-u)
        complement = (np.uint64(1 << 53) - (mix64(draws) >> np.uint64(11))).astype(np.float64)
        complement *= 2.0**-53
        minimum = -np.expm1(np.log(complement) / (1.1**grid)[:, None])
        return np.minimum(minimum * 2.0**32, 2.0**32 - 1).astype(np.uint32)

    def _minhash(self, shingles: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Per text (shingles grouped by text, `first` their start offsets): min of a * x + b.

        The shingles go through in windows of _CHUNK, whatever the text boundaries, each computed
        into the same work buffer: a fresh (hashes, shingles) array per window often comes back as
        fresh pages from the OS (measured 1.5x slower on a shared VM), and a long text never
        needs more than one window's memory.
        """
        hashes = len(self.perm_a)
        out = np.full((len(first), hashes), np.iinfo(np.uint32).max, dtype=np.uint32)
        work = np.empty((hashes, _CHUNK), dtype=np.uint32)
        for lo in range(0, len(shingles), _CHUNK):
            hi = min(lo + _CHUNK, len(shingles))
            # the texts with shingles in [lo, hi), and where each one starts in the window
            texts = slice(np.searchsorted(first, lo, side="right") - 1, np.searchsorted(first, hi))
            starts = np.maximum(first[texts], lo) - lo
            values = np.multiply.outer(self.perm_a, shingles[lo:hi], out=work[:, : hi - lo])
            values += self.perm_b[:, None]
            minima = np.minimum.reduceat(values, starts, axis=1)  # (hashes, texts)
            np.minimum(out[texts], minima.T, out=out[texts])
        return out

    def _number_hashes(
        self, data: np.ndarray, prefix: np.ndarray, text_ends: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One 64-bit hash per text of its digit runs, in order, and whether it has any."""
        starts, ends = _runs((data >= 48) & (data <= 57))
        run_ids = run_hashes(prefix, starts, ends)
        runs = _per_text(starts, text_ends)
        first = np.cumsum(runs) - runs  # index of each text's first run
        order = (np.arange(1, len(starts) + 1) - np.repeat(first, runs)).astype(np.uint64)
        run_ids ^= mix64(order * _MIX[0])  # the same numbers in another order hash differently
        mix64(run_ids)
        has_numbers = runs > 0
        totals = np.zeros(len(text_ends), dtype=np.uint64)
        totals[has_numbers] = np.add.reduceat(run_ids, first[has_numbers])  # wraps like 2**64
        return mix64(totals ^ self.seed), has_numbers

    def _fold_numbers(self, signature: np.ndarray, numbers: np.ndarray) -> None:
        """Fold each text's number hash into the first row of every band (in place)."""
        rows = signature[:, :: self.per_bucket].astype(np.uint64)
        rows ^= numbers[:, None]
        signature[:, :: self.per_bucket] = (mix64(rows) >> np.uint64(33)).astype(np.uint32)
