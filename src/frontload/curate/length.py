"""Exact token counts (`answer_tokens`, `total_tokens`) with the workspace tokenizer, in batches.

The tokenizer is the recipe's, else the workspace's, else a byte-level BPE trained on a sample of
the records first; `ensure_tokenizer` says which one it used.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from loguru import logger

from frontload.curate.recipe import LengthConfig
from frontload.data.tokenizer import train_tokenizer
from frontload.errors import InputError
from frontload.workspace import Workspace

TOKENIZER_FILE = "tokenizer.json"


def tokenizer_file(path: Path) -> Path:
    """`path` itself if it is a tokenizer.json, else `path/tokenizer.json`; clear error if neither."""
    path = Path(path)
    candidate = path / TOKENIZER_FILE if path.is_dir() else path
    if not candidate.is_file():
        raise InputError(
            f"tokenizer {path}: no {TOKENIZER_FILE} found",
            "point length.tokenizer at a tokenizer.json or a folder holding one",
        )
    return candidate


def ensure_tokenizer(
    config: LengthConfig | None, workspace: Workspace, sample_texts: Iterable[str]
) -> Path:
    """The tokenizer to count with: recipe's, else workspace's, else train one on the sample."""
    config = config or LengthConfig()
    if config.tokenizer is not None:
        path = tokenizer_file(config.tokenizer)
        logger.info(f"counting tokens with the recipe's tokenizer {path}")
        return path
    existing = workspace.tokenizer_dir / TOKENIZER_FILE
    if existing.is_file():
        logger.info(f"counting tokens with the workspace tokenizer {existing}")
        return existing

    texts = [t for t in islice(sample_texts, config.sample_records) if t]
    if not texts:
        raise InputError("no records to train a tokenizer on", "check the recipe's sources")
    folder = train_tokenizer(texts, config.vocab_size, workspace.tokenizer_dir)
    path = tokenizer_file(folder)
    from tokenizers import Tokenizer

    got = Tokenizer.from_file(str(path)).get_vocab_size()  # may fall short of the asked size
    logger.info(f"trained a byte-level BPE tokenizer (vocab {got}) on {len(texts)} records: {path}")
    return path


class TokenCounter:
    """Exact counts for lists of texts: one `encode_batch_fast` call, no special tokens."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        file = tokenizer_file(path)
        try:
            self.tokenizer = Tokenizer.from_file(str(file))
        except Exception as error:
            raise InputError(f"tokenizer {file}: cannot load ({error})") from error

    def count(self, texts: list[str]) -> list[int]:
        encodings = self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]
