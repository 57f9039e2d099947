"""A record's reasoning trace in chat form: the SFT conversations and the chat token shards render
it the way the tokenizer's template expects, inside the assistant turn the loss is taken on."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from frontload.data.encode import Encoder, chat_messages
from frontload.data.tokenizer import fit_reasoning, train_tokenizer
from frontload.train.posttrain.data import record_messages

RECORD = {
    "prompt": "What is 7 * 8?",
    "response": "7 * 8 = 56.",
    "reasoning": "7 * 4 = 28, doubled is 56.",
    "messages": None,
}
# A reasoning model's template (Qwen3 style): it draws the <think> block from reasoning_content.
READS_REASONING = (
    "{%- for m in messages -%}<|im_start|>{{ m['role'] }}\n"
    "{%- if m['role'] == 'assistant' -%}{% generation %}"
    "{%- if m.get('reasoning_content') -%}<think>\n{{ m['reasoning_content'] }}\n</think>\n\n"
    "{% endif %}{{ m['content'] }}<|eos|>{% endgeneration %}"
    "{%- else -%}{{ m['content'] }}<|eos|>{%- endif -%}{%- endfor -%}"
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from frontload.data.tokenizer import load_tokenizer

    texts = [f"{RECORD['prompt']} {RECORD['reasoning']} {RECORD['response']} <think> </think>"] * 50
    return load_tokenizer(train_tokenizer(texts, 300, tmp_path_factory.mktemp("tok")))


def test_our_template_gets_a_think_block_in_the_assistant_turn(tokenizer):
    turns = fit_reasoning(record_messages(RECORD), tokenizer.chat_template)
    assert turns[-1] == {
        "role": "assistant",
        "content": "<think>\n7 * 4 = 28, doubled is 56.\n</think>\n\n7 * 8 = 56.",
    }
    assert turns == chat_messages(RECORD)  # SFT and the chat token shards agree
    out = tokenizer.apply_chat_template(
        turns, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = np.asarray(out["input_ids"]), np.asarray(out["assistant_masks"])
    trained = tokenizer.decode(ids[mask == 1])
    assert trained.startswith("<think>\n7 * 4") and trained.endswith("56.<|eos|>")


def test_a_template_reading_reasoning_content_gets_the_key(tokenizer):
    turns = fit_reasoning(record_messages(RECORD), READS_REASONING)
    assert turns[-1]["content"] == "7 * 8 = 56."
    assert turns[-1]["reasoning_content"] == RECORD["reasoning"]
    tokenizer.chat_template = READS_REASONING
    encoder = Encoder(tokenizer, "messages")
    batch = pa.RecordBatch.from_pylist([RECORD])
    encoded = encoder.encode(batch)
    trained = tokenizer.decode(encoded.tokens[encoded.mask == 1])
    assert trained == "<think>\n7 * 4 = 28, doubled is 56.\n</think>\n\n7 * 8 = 56.<|eos|>"


def test_records_without_a_trace_are_unchanged():
    plain = {**RECORD, "reasoning": None}
    assert record_messages(plain)[-1] == {"role": "assistant", "content": "7 * 8 = 56."}
    assert fit_reasoning(record_messages(plain), None) == chat_messages(plain)
