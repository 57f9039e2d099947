"""Corpus -> packed shards: exact contents, chat loss masks, resume, corrupted-shard errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from frontload.errors import DataError, StageNotReady

from .helpers import chat_rows, record, text_rows, write_corpus


def _tokenize(ws, corpus, **kwargs):
    from frontload.data.tokenize import tokenize_corpus

    return tokenize_corpus(ws, corpus, ws.tokenizer_dir, progress=False, **kwargs)


def test_text_shards_hold_every_document_then_eos(corpus_workspace):
    from frontload.data.shards import TokenDataset
    from frontload.data.tokenizer import load_tokenizer, tokenizer_hash

    ws = corpus_workspace
    rows = text_rows(1, 300)
    manifest = _tokenize(ws, "dldq", rows_per_shard=100)
    tokenizer = load_tokenizer(ws.tokenizer_dir)
    assert manifest["dtype"] == "uint16" and manifest["tokenizer_hash"] == tokenizer_hash(tokenizer)
    assert manifest["documents"] == 300 and len(manifest["shards"]) == 4  # 2 files x (100+50)
    dataset = TokenDataset.open(ws.tokens_dir / "dldq")
    assert dataset.num_tokens == manifest["tokens"] == int(dataset.doc_len.sum())
    for index, row in enumerate(rows):
        ids, mask = dataset.document(index)
        assert mask is None
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids[:-1]) == row["text"]
    on_disk = json.loads((ws.tokens_dir / "dldq" / "manifest.json").read_text())
    assert on_disk["tokens"] == manifest["tokens"] and on_disk["field"] == "text"


def test_chat_mask_matches_transformers_assistant_mask(corpus_workspace):
    from frontload.data.encode import chat_messages
    from frontload.data.shards import TokenDataset
    from frontload.data.tokenizer import load_tokenizer

    ws = corpus_workspace
    manifest = _tokenize(ws, "dshq", field="messages", rows_per_shard=30)
    assert manifest["has_loss_mask"] and manifest["documents"] == 120
    tokenizer = load_tokenizer(ws.tokenizer_dir)
    dataset = TokenDataset.open(ws.tokens_dir / "dshq")
    for index, row in enumerate(chat_rows(3, 120)):
        expected = tokenizer.apply_chat_template(
            chat_messages(row), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids, mask = dataset.document(index)
        assert ids.tolist() == list(expected["input_ids"])
        assert mask.tolist() == list(expected["assistant_masks"])
        answers = [m["content"] for m in chat_messages(row) if m["role"] == "assistant"]
        assert tokenizer.decode(ids[mask == 1]) == "".join(a + tokenizer.eos_token for a in answers)


def test_two_workers_write_the_same_shards(corpus_workspace, tmp_path):
    from frontload.data.shards import TokenDataset

    ws = corpus_workspace
    _tokenize(ws, "general", rows_per_shard=100, workers=1)
    one = TokenDataset.open(ws.tokens_dir / "general")
    single = np.concatenate([np.asarray(t) for t in one.tokens])
    (ws.tokens_dir / "general").rename(tmp_path / "first")
    _tokenize(ws, "general", rows_per_shard=100, workers=2)
    two = TokenDataset.open(ws.tokens_dir / "general")
    assert np.array_equal(single, np.concatenate([np.asarray(t) for t in two.tokens]))
    assert np.array_equal(one.doc_len, two.doc_len)


def test_resume_rebuilds_only_broken_shards(corpus_workspace):
    ws = corpus_workspace
    folder = ws.tokens_dir / "general"
    first = _tokenize(ws, "general", rows_per_shard=100)
    # a killed writer: one shard cut short, one with only temporary files, manifest gone
    with open(folder / "shard-00001.tokens.bin", "r+b") as handle:
        handle.truncate(10)
    (folder / "shard-00003.json").unlink()
    (folder / "shard-00003.tokens.bin").rename(folder / "shard-00003.tokens.bin.tmp")
    (folder / "manifest.json").unlink()
    untouched = (folder / "shard-00000.tokens.bin").stat().st_mtime_ns
    second = _tokenize(ws, "general", rows_per_shard=100)
    assert (folder / "shard-00000.tokens.bin").stat().st_mtime_ns == untouched
    assert second["shards"] == first["shards"] and second["tokens"] == first["tokens"]
    assert not list(folder.glob("*.tmp"))


def test_reader_rejects_corrupted_shards(corpus_workspace):
    from frontload.data.shards import TokenDataset

    ws = corpus_workspace
    folder = ws.tokens_dir / "general"
    _tokenize(ws, "general", rows_per_shard=1000)
    tokens = folder / "shard-00000.tokens.bin"
    data = tokens.read_bytes()
    tokens.write_bytes(data[:-1])  # not a multiple of uint16
    with pytest.raises(DataError, match="not a multiple"):
        TokenDataset.open(folder)
    tokens.write_bytes(data[:-2])  # whole tokens, but fewer than the manifest says
    with pytest.raises(DataError, match="expected"):
        TokenDataset.open(folder)
    tokens.write_bytes(data)
    docs = folder / "shard-00000.docs.bin"
    offsets = np.fromfile(docs, dtype="<i8")
    offsets[5] = offsets[-1] + 100  # points past the end of the tokens
    offsets.tofile(docs)
    with pytest.raises(DataError, match="out of range"):
        TokenDataset.open(folder)


def test_tokenizer_mismatch_is_reported_with_both_hashes(corpus_workspace, tmp_path):
    from frontload.data.shards import TokenDataset
    from frontload.data.tokenizer import load_tokenizer, tokenizer_hash, train_tokenizer

    ws = corpus_workspace
    manifest = _tokenize(ws, "dldq")
    other = tokenizer_hash(load_tokenizer(train_tokenizer(["qq ww ee"] * 40, 300, tmp_path / "o")))
    with pytest.raises(DataError) as error:
        TokenDataset.open(ws.tokens_dir / "dldq", expected_tokenizer_hash=other)
    assert manifest["tokenizer_hash"] in str(error.value) and other in str(error.value)
    # re-tokenizing with the other tokenizer rewrites every shard
    from frontload.data.tokenize import tokenize_corpus

    again = tokenize_corpus(ws, "dldq", tmp_path / "o", progress=False)
    assert again["tokenizer_hash"] == other
    assert all(s["tokenizer_hash"] == other for s in again["shards"])


def test_empty_and_missing_corpora(corpus_workspace):
    ws = corpus_workspace
    with pytest.raises(StageNotReady, match="no part"):
        _tokenize(ws, "nothing")
    write_corpus(ws, "blank", [record(i, "") for i in range(10)])
    with pytest.raises(DataError, match="no text"):
        _tokenize(ws, "blank")
    assert not (ws.tokens_dir / "blank" / "manifest.json").exists()
    with pytest.raises(StageNotReady):
        from frontload.data.shards import TokenDataset

        TokenDataset.open(ws.tokens_dir / "blank")


def test_large_vocab_uses_uint32():
    from frontload.data.shards import token_dtype

    assert token_dtype(65_536).name == "uint16" and token_dtype(65_537).name == "uint32"


def test_foreign_chat_template_uses_transformers_masks(corpus_workspace, tmp_path):
    from frontload.data.encode import chat_messages
    from frontload.data.shards import TokenDataset
    from frontload.data.tokenizer import CHAT_TEMPLATE, load_tokenizer

    ws = corpus_workspace
    tokenizer = load_tokenizer(ws.tokenizer_dir)
    tokenizer.chat_template = CHAT_TEMPLATE.replace("'\\n'", "':\\n'")  # "role:\n" headers
    assert tokenizer.chat_template != CHAT_TEMPLATE
    tokenizer.save_pretrained(str(tmp_path / "custom"))
    from frontload.data.tokenize import tokenize_corpus

    tokenize_corpus(ws, "dshq", tmp_path / "custom", field="messages", progress=False)
    dataset = TokenDataset.open(ws.tokens_dir / "dshq")
    row = chat_rows(3, 120)[1]
    expected = tokenizer.apply_chat_template(
        chat_messages(row), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = dataset.document(1)
    assert "system:\n" in tokenizer.decode(ids)
    assert ids.tolist() == list(expected["input_ids"])
    assert mask.tolist() == list(expected["assistant_masks"])


def test_bare_tokenizer_json_from_elsewhere(corpus_workspace, tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from frontload.data.shards import TokenDataset
    from frontload.data.tokenize import tokenize_corpus

    bare = Tokenizer(models.BPE())
    bare.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bare.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bare.train_from_iterator([r["text"] for r in text_rows(1, 300)], trainer=trainer)
    bare.save(str(tmp_path / "tokenizer.json"))
    manifest = tokenize_corpus(
        corpus_workspace, "dldq", tmp_path / "tokenizer.json", name="dldq-bare", progress=False
    )
    dataset = TokenDataset.open(corpus_workspace.tokens_dir / "dldq-bare")
    eos = bare.token_to_id("<|endoftext|>")
    assert manifest["eos_id"] == eos and dataset.document(0)[0][-1] == eos
    assert bare.decode(dataset.document(0)[0][:-1].tolist()) == text_rows(1, 300)[0]["text"]


def test_text_field_falls_back_to_prompt_response_then_messages(corpus_workspace):
    from frontload.data.shards import TokenDataset
    from frontload.data.tokenizer import load_tokenizer

    ws = corpus_workspace
    manifest = _tokenize(ws, "dshq", name="dshq-text")
    assert manifest["documents"] == 120 and manifest["skipped"] == 0
    tokenizer = load_tokenizer(ws.tokenizer_dir)
    dataset = TokenDataset.open(ws.tokens_dir / "dshq-text")
    rows = chat_rows(3, 120)
    first, second = (tokenizer.decode(dataset.document(i)[0][:-1]) for i in (0, 1))
    assert first == rows[0]["prompt"] + "\n" + rows[0]["response"]
    assert second == "\n".join(m["content"] for m in rows[1]["messages"])


def test_workspace_corpora_skips_staging_folders(corpus_workspace):
    from frontload.data.tokenize import workspace_corpora

    write_corpus(corpus_workspace, ".staging-123", text_rows(0, 3))
    (corpus_workspace.corpora_dir / "notes").mkdir()
    assert workspace_corpora(corpus_workspace) == ["dldq", "dshq", "general"]


def test_one_big_row_group_is_split_into_units(corpus_workspace, monkeypatch):
    from frontload.data import tokenize
    from frontload.data.shards import TokenDataset
    from frontload.data.tokenizer import load_tokenizer

    ws = corpus_workspace
    monkeypatch.setattr(tokenize, "BATCH_ROWS", 16)
    rows = text_rows(5, 300)
    write_corpus(ws, "big", rows, files=1, row_group=300)
    manifest = _tokenize(ws, "big", rows_per_shard=64)  # 4 batches of 16 rows per unit
    assert [s["documents"] for s in manifest["shards"]] == [64, 64, 64, 64, 44]
    tokenizer = load_tokenizer(ws.tokenizer_dir)
    dataset = TokenDataset.open(ws.tokens_dir / "big")
    for index in (0, 63, 64, 200, 299):
        assert tokenizer.decode(dataset.document(index)[0][:-1]) == rows[index]["text"]
    again = _tokenize(ws, "big", rows_per_shard=64)
    assert again["shards"] == manifest["shards"]
