"""The workspace tokenizer: lossless round trip, specials, TRL-ready chat template, stable hash."""

from __future__ import annotations

import random

import pytest

from frontload.errors import ConfigError, InputError

TRICKY = [
    "",
    "plain ascii",
    "  leading and trailing spaces  ",
    "tabs\tand\r\nwindows\rnewlines\n\n\n",
    "combining: e\u0301 a\u0308 \u0915\u094d\u0937",
    "emoji: 👩\u200d👩\u200d👧 🏳️\u200d🌈 👍🏽",
    "rtl: \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u202e reversed",
    "cjk: 数学证明 日本語のテキスト 한국어",
    "controls: \x00\x01\x7f \u200b\ufeff zero width",
    "math: ∫₀^∞ e^{-x²} dx = √π/2 ≠ ∑ ∀x∈ℝ",
    "literal specials: <|eos|> <|im_start|>user <|pad|> <|bos|>",
    "private use \ue000 and astral \U0001f600 \U00010348 \U0010fffd",
]


def test_round_trip_tricky_unicode(tokenizer_dir):
    from frontload.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    for text in TRICKY:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text


def test_round_trip_random_codepoints(tokenizer_dir):
    from frontload.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    rng = random.Random(7)
    for _ in range(200):
        chars = []
        while len(chars) < rng.randint(1, 30):
            code = rng.randint(0, 0x10FFFF)
            if not 0xD800 <= code <= 0xDFFF:  # surrogates are not valid UTF-8
                chars.append(chr(code))
        text = "".join(chars)
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_special_tokens_and_compression(tokenizer_dir):
    from frontload.data.tokenizer import BOS, EOS, PAD, TURN_START, load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (BOS, EOS, PAD)
    assert TURN_START in tokenizer.all_special_tokens
    assert len({tokenizer.convert_tokens_to_ids(t) for t in (BOS, EOS, PAD, TURN_START)}) == 4
    # one token per special, and merges learned: frequent words are single tokens
    assert tokenizer.encode(EOS, add_special_tokens=False) == [tokenizer.eos_token_id]
    assert len(tokenizer.encode("integral", add_special_tokens=False)) == 1
    assert tokenizer.encode("integral", add_special_tokens=True) == tokenizer.encode(
        "integral", add_special_tokens=False
    )


def test_chat_template_masks_exactly_assistant_turns(tokenizer_dir):
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    from frontload.data.tokenizer import EOS, load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "what is 2+3?"},
        {"role": "assistant", "content": "  it is 5\n"},
        {"role": "user", "content": "and 数学?"},
        {"role": "assistant", "content": "😀 math"},
    ]
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    trained = [i for i, m in zip(ids, mask, strict=True) if m]
    assert tokenizer.decode(trained) == "  it is 5\n" + EOS + "😀 math" + EOS
    assert is_chat_template_stop_token_trained(tokenizer)
    prompt = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_bare_tokenizer_json_loads_with_same_hash(tokenizer_dir):
    from frontload.data.tokenizer import load_tokenizer, tokenizer_hash

    folder = load_tokenizer(tokenizer_dir)
    bare = load_tokenizer(tokenizer_dir / "tokenizer.json")
    assert bare.eos_token == folder.eos_token and bare.pad_token == folder.pad_token
    assert tokenizer_hash(bare) == tokenizer_hash(folder)
    text = "the proof of ∫ 😀"
    assert bare.encode(text, add_special_tokens=False) == folder.encode(
        text, add_special_tokens=False
    )


def test_hash_is_stable_and_distinguishes_tokenizers(tokenizer_dir, tmp_path):
    from frontload.data.tokenizer import load_tokenizer, tokenizer_hash, train_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    before = tokenizer_hash(tokenizer)
    tokenizer(["a b c"] * 2, truncation=True, max_length=2, padding="max_length")
    assert tokenizer_hash(tokenizer) == before
    other = train_tokenizer(["zzz yyy xxx www"] * 50, 300, tmp_path / "other")
    assert tokenizer_hash(load_tokenizer(other)) != before


def test_vocab_too_small_and_empty_input(tmp_path):
    from frontload.data.tokenizer import min_vocab_size, train_tokenizer

    with pytest.raises(ConfigError, match="too small"):
        train_tokenizer(["some text"], min_vocab_size() - 1, tmp_path / "t")
    with pytest.raises(InputError, match="no text"):
        train_tokenizer(["", ""], 400, tmp_path / "t")
    with pytest.raises(InputError, match="not found"):
        from frontload.data.tokenizer import load_tokenizer

        load_tokenizer(tmp_path / "missing")


def test_training_stops_at_byte_cap(tmp_path):
    from frontload.data.tokenizer import train_tokenizer

    pulled = []

    def texts():
        for i in range(100_000):
            pulled.append(i)
            yield f"text number {i} with words"

    train_tokenizer(texts(), 300, tmp_path / "t", max_bytes=10_000)
    assert len(pulled) < 1000  # the stream was not drained: memory stays bounded
