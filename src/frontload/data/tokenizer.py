"""The workspace tokenizer: byte-level BPE trained on a streamed sample, saved for transformers/TRL.

One token, `<|eos|>`, ends both a pretraining document and a chat turn, so generation stops on its
own after an assistant answer and pretraining shards use the same separator. The chat template
wraps each assistant answer (and its `<|eos|>`) in `{% generation %}` so TRL's `assistant_only_loss`
trains exactly the assistant tokens, including the stop token.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from frontload.errors import ConfigError, InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BOS = "<|bos|>"
EOS = "<|eos|>"
PAD = "<|pad|>"
TURN_START = "<|im_start|>"
SPECIAL_TOKENS: tuple[str, ...] = (BOS, EOS, PAD, TURN_START)
BYTE_ALPHABET = 256
MIN_MERGES = 1
DEFAULT_MAX_TRAIN_BYTES = 256 * 2**20  # sample cap: keeps the BPE word counts bounded

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|eos|>' }}{% endgeneration %}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|eos|>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def with_reasoning(messages: list[dict], reasoning: str | None, template: str | None) -> list[dict]:
    """A record's reasoning trace put into its last assistant turn as `template` expects (see
    `fit_reasoning`); `template=None` leaves it as the turn's `reasoning_content` key."""
    if not reasoning:
        return messages
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    if last < 0:
        return messages
    turn = {**messages[last], "reasoning_content": reasoning}
    turns = [*messages[:last], turn, *messages[last + 1 :]]
    return turns if template is None else fit_reasoning(turns, template)


def fit_reasoning(messages: list[dict], template: str | None) -> list[dict]:
    """Turns whose trace is in `reasoning_content`, rendered the way `template` expects: the key
    stays when the template reads it (Qwen3 and other reasoning models' templates draw their own
    `<think>` block from it); otherwise the trace becomes a `<think>` block opening the turn's
    content (our CHAT_TEMPLATE: the trace is trained as part of the answer)."""
    if template and "reasoning_content" in template:
        return messages
    out = []
    for message in messages:
        trace = message.get("reasoning_content")
        if trace:
            body = message["content"]
            message = {
                "role": message["role"],
                "content": f"{THINK_OPEN}\n{trace}\n{THINK_CLOSE}\n\n{body}",
            }
        elif "reasoning_content" in message:
            message = {"role": message["role"], "content": message["content"]}
        out.append(message)
    return out


# Names other tokenizers commonly give their specials, for a bare tokenizer.json made elsewhere.
_KNOWN_EOS = (EOS, "<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<|im_end|>")
_KNOWN_BOS = (BOS, "<s>", "<|begin_of_text|>", "<bos>")
_KNOWN_PAD = (PAD, "<pad>", "<|padding|>")


def min_vocab_size() -> int:
    """Bytes, special tokens and at least one merge."""
    return BYTE_ALPHABET + len(SPECIAL_TOKENS) + MIN_MERGES


def _capped(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    """Stream texts until `max_bytes` of UTF-8 have gone by; skips empty ones."""
    seen = 0
    for text in texts:
        if not text:
            continue
        yield text
        seen += len(text.encode("utf-8", errors="surrogatepass"))
        if seen >= max_bytes:
            return


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: Path,
    max_bytes: int = DEFAULT_MAX_TRAIN_BYTES,
    progress: bool = False,
) -> Path:
    """Train byte-level BPE on streamed texts (at most `max_bytes`) and save a tokenizer folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < min_vocab_size():
        raise ConfigError(
            f"vocab size {vocab_size} is too small: byte-level BPE needs {BYTE_ALPHABET} byte "
            f"tokens + {len(SPECIAL_TOKENS)} special tokens + at least one merge",
            hint=f"use --vocab-size {min_vocab_size()} or more (typical: 32000-131072)",
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=progress,
    )
    counted = {"texts": 0}

    def stream() -> Iterator[str]:
        for text in _capped(texts, max_bytes):
            counted["texts"] += 1
            yield text

    tokenizer.train_from_iterator(stream(), trainer=trainer)
    if counted["texts"] == 0:
        raise InputError(
            "no text to train the tokenizer on (every record was empty)",
            hint="check the corpus names and that the corpora have a non-empty text field",
        )
    folder = save_tokenizer(tokenizer, out_dir)
    record_training(folder, vocab_size, tokenizer.get_vocab_size(), counted["texts"])
    return folder


TRAINING_FILE = "fl_training.json"


def record_training(folder: Path, asked: int, got: int, texts: int) -> None:
    """Write what was asked and what BPE reached; warn when the text could not fill the vocab
    (BPE stops when no pair occurs twice), so a smaller tokenizer never goes unnoticed."""
    from loguru import logger

    record = {"vocab_size_asked": asked, "vocab_size": got, "texts": texts}
    (Path(folder) / TRAINING_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    if got < asked:
        logger.warning(short_of_vocab(asked, got))


def short_of_vocab(asked: int, got: int) -> str:
    return (
        f"tokenizer has {got} tokens, not the {asked} asked: the training text has no more pairs "
        "seen twice (train on more text, or ask for fewer)"
    )


def training_record(folder: Path) -> dict | None:
    """What `train_tokenizer` recorded for this folder (None for tokenizers made elsewhere)."""
    path = Path(folder) / TRAINING_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def save_tokenizer(tokenizer, out_dir: Path) -> Path:
    """Wrap a `tokenizers.Tokenizer` as a PreTrainedTokenizerFast folder with specials and template."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[TURN_START],
        clean_up_tokenization_spaces=False,
        model_max_length=1_000_000_000,
    )
    fast.chat_template = CHAT_TEMPLATE
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return out_dir


def load_tokenizer(path: Path | str) -> PreTrainedTokenizerFast:
    """A tokenizer folder (ours or any PreTrainedTokenizerFast) or a bare tokenizer.json."""
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    if path.is_dir():
        if not (path / "tokenizer.json").is_file():
            raise InputError(
                f"{path} has no tokenizer.json",
                hint="train one with `fl tokenizer train` or point at a folder with tokenizer.json",
            )
        try:
            fast = PreTrainedTokenizerFast.from_pretrained(str(path))
        except Exception as exc:  # noqa: BLE001 - any parse failure is a malformed input file
            raise InputError(f"cannot load the tokenizer in {path}: {exc}") from exc
    elif path.is_file():
        try:
            fast = PreTrainedTokenizerFast(
                tokenizer_file=str(path), clean_up_tokenization_spaces=False
            )
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"cannot load tokenizer file {path}: {exc}") from exc
        _fill_specials(fast)
    else:
        raise InputError(
            f"tokenizer {path} not found",
            hint="run `fl tokenizer train --corpus NAME --vocab-size N --out DIR` first",
        )
    if fast.eos_token is None:
        _fill_specials(fast)
    return fast


def _fill_specials(fast: PreTrainedTokenizerFast) -> None:
    """Pick bos/eos/pad of a bare tokenizer.json from its special tokens' usual names."""
    vocab = fast.get_vocab()
    for attr, names in (
        ("eos_token", _KNOWN_EOS),
        ("bos_token", _KNOWN_BOS),
        ("pad_token", _KNOWN_PAD),
    ):
        if getattr(fast, attr) is None:
            found = next((name for name in names if name in vocab), None)
            if found is not None:
                setattr(fast, attr, found)
    if fast.pad_token is None and fast.eos_token is not None:
        fast.pad_token = fast.eos_token


def require_eos(fast: PreTrainedTokenizerFast, source: Path | str) -> int:
    """The EOS id that separates documents; a tokenizer without one cannot pack documents."""
    if fast.eos_token_id is None:
        raise InputError(
            f"tokenizer {source} has no end-of-sequence token",
            hint="use a tokenizer whose special tokens include one of " + ", ".join(_KNOWN_EOS),
        )
    return int(fast.eos_token_id)


def tokenizer_hash(tokenizer: PreTrainedTokenizerFast) -> str:
    """Content hash of what decides token ids: vocab, merges, normalisation, specials, EOS.

    A folder and its bare tokenizer.json hash the same; the chat template is recorded apart.
    """
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    for runtime_setting in ("truncation", "padding"):  # transformers toggles these per call
        state.pop(runtime_setting, None)
    payload = {"tokenizer": state, "eos": tokenizer.eos_token}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]
