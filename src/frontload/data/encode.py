"""Turn a batch of corpus records into token ids (and a loss mask for chat), ready to pack.

Text documents (`corpus.record_text`) get EOS appended. Chat documents are rendered with the tokenizer's chat template; the
mask marks the tokens inside its `{% generation %}` spans (assistant content and end-of-turn). For our
own template the rendering is done here in Python (same string, much faster than Jinja per record)
and tokens are attributed to the assistant by their character offsets, as transformers does.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np

from frontload.data.corpus import batch_texts
from frontload.data.tokenizer import CHAT_TEMPLATE, EOS, TURN_START, with_reasoning
from frontload.errors import DataError

FIELDS = ("text", "messages")


@dataclass
class EncodedBatch:
    """Documents laid end to end."""

    tokens: np.ndarray  # (N,) int64
    lengths: np.ndarray  # (D,) int64
    mask: np.ndarray | None  # (N,) uint8, chat only
    skipped: int  # records with nothing to encode


def chat_messages(record: dict, template: str | None = CHAT_TEMPLATE) -> list[dict] | None:
    """The record's messages, else user prompt + assistant response, else None; a reasoning
    trace goes into the last assistant turn as `template` expects (`with_reasoning`)."""
    messages = record.get("messages")
    prompt, response = record.get("prompt"), record.get("response")
    if messages:
        turns = [{"role": m["role"], "content": m["content"] or ""} for m in messages]
    elif prompt and response:
        turns = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    else:
        return None
    return with_reasoning(turns, record.get("reasoning"), template)


def render_chat(messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """CHAT_TEMPLATE rendered in Python: the text and the assistant (start, end) character spans."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    size = 0
    for message in messages:
        head = f"{TURN_START}{message['role']}\n"
        body = message["content"] + EOS
        parts += [head, body]
        size += len(head)
        if message["role"] == "assistant":
            spans.append((size, size + len(body)))
        size += len(body)
    return "".join(parts), spans


class Encoder:
    """Encodes record batches for one tokenizer and one field."""

    def __init__(self, tokenizer, field: str) -> None:
        if field not in FIELDS:
            raise DataError(f"unknown field {field!r}", hint="use --field text or --field messages")
        self.tokenizer = tokenizer
        self.backend = tokenizer.backend_tokenizer
        self.field = field
        self.eos_id = int(tokenizer.eos_token_id)
        self.fast_chat = tokenizer.chat_template == CHAT_TEMPLATE
        if field == "messages" and not tokenizer.chat_template:
            raise DataError(
                "the tokenizer has no chat template, needed for --field messages",
                hint="use a tokenizer trained by `fl tokenizer train` (it ships one)",
            )

    def encode(self, batch) -> EncodedBatch:
        """Encode a pyarrow RecordBatch of corpus rows."""
        if self.field == "text":
            return self._encode_text(batch_texts(batch))
        records = batch.to_pylist()
        if self.fast_chat:
            return self._encode_chat_fast(records)
        return self._encode_chat_template(records)

    def _encode_text(self, texts: list[str | None]) -> EncodedBatch:
        kept = [t for t in texts if t]
        encodings = self.backend.encode_batch_fast(kept, add_special_tokens=False)
        ids = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)) + 1
        ends = np.cumsum(lengths) - 1  # EOS positions
        tokens = np.full(int(lengths.sum()), self.eos_id, dtype=np.int64)
        body = np.ones(len(tokens), dtype=bool)
        body[ends] = False
        tokens[body] = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(body.sum()))
        return EncodedBatch(
            tokens=tokens, lengths=lengths, mask=None, skipped=len(texts) - len(kept)
        )

    def _encode_chat_fast(self, records: list[dict]) -> EncodedBatch:
        rendered = [render_chat(m) for m in map(chat_messages, records) if m]
        encodings = self.backend.encode_batch(
            [text for text, _ in rendered], add_special_tokens=False
        )
        ids, masks = [], []
        for encoding, (_, spans) in zip(encodings, rendered, strict=True):
            starts = np.fromiter((o[0] for o in encoding.offsets), dtype=np.int64)
            ends = np.fromiter((o[1] for o in encoding.offsets), dtype=np.int64)
            mask = np.zeros(len(starts), dtype=np.uint8)
            for lo, hi in spans:
                mask[(starts >= lo) & (starts < hi) & (ends > starts)] = 1
            ids.append(encoding.ids)
            masks.append(mask)
        return _pack(ids, masks, len(records) - len(rendered))

    def _encode_chat_template(self, records: list[dict]) -> EncodedBatch:
        ids, masks, skipped = [], [], 0
        for record in records:
            messages = chat_messages(record, self.tokenizer.chat_template)
            if not messages:
                skipped += 1
                continue
            out = self.tokenizer.apply_chat_template(
                messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
            )
            doc, mask = list(out["input_ids"]), list(out["assistant_masks"])
            if not doc or doc[-1] != self.eos_id:
                doc.append(self.eos_id)
                mask.append(0)
            ids.append(doc)
            masks.append(np.asarray(mask, dtype=np.uint8))
        return _pack(ids, masks, skipped)


def _pack(ids: list[list[int]], masks: list[np.ndarray] | None, skipped: int) -> EncodedBatch:
    lengths = np.fromiter((len(d) for d in ids), dtype=np.int64, count=len(ids))
    total = int(lengths.sum())
    tokens = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=total)
    mask = (
        np.concatenate(masks) if masks else (np.zeros(0, np.uint8) if masks is not None else None)
    )
    return EncodedBatch(tokens=tokens, lengths=lengths, mask=mask, skipped=skipped)
