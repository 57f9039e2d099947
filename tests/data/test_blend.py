"""The blend: exact proportions, disjoint ranks, exact resume, epochs with reshuffling, bad input.

Synthetic datasets give every token of source s a unique value in [s*10^6, (s+1)*10^6), so the
tests can tell from the served tokens alone which source and which document each row came from.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from frontload.errors import ConfigError, DataError

EOS = 1
HASH = "testhash"


def write_dataset(folder, source: int, docs: int, seed: int, digest: str = HASH, mask=False):
    """Documents of unique tokens ending with EOS; with mask, odd tokens are the trained ones."""
    from frontload.data.shards import FORMAT_VERSION, ShardWriter, atomic_write_json

    folder.mkdir(parents=True)
    rng = random.Random(seed)
    counter = source * 1_000_000 + 2
    shards = []
    for shard in range(2):
        writer = ShardWriter(folder, f"shard-{shard:05d}", np.dtype("<u4"), with_mask=mask)
        tokens, lengths = [], []
        for _ in range(docs // 2):
            length = rng.randint(1, 12)
            tokens += [*range(counter, counter + length), EOS]
            lengths.append(length + 1)
            counter += length
        array = np.asarray(tokens, dtype=np.int64)
        writer.append(
            array, np.asarray(lengths), (array % 2 == 1).astype(np.uint8) if mask else None
        )
        shards.append(writer.close({"tokenizer_hash": digest, "format": FORMAT_VERSION}))
    manifest = {
        "name": folder.name,
        "tokens": sum(s["tokens"] for s in shards),
        "documents": sum(s["documents"] for s in shards),
        "dtype": "uint32",
        "tokenizer_hash": digest,
        "field": "text",
        "shards": shards,
    }
    atomic_write_json(folder / "manifest.json", manifest)
    return folder


@pytest.fixture
def datasets(tmp_path):
    return [
        write_dataset(tmp_path / f"src{s}", s, docs, seed=s)
        for s, docs in enumerate((40, 200, 120))
    ]


def source_of(row: np.ndarray) -> int:
    """The one source a row's non-EOS tokens come from."""
    owners = set((row[row != EOS] // 1_000_000).tolist())
    assert len(owners) == 1
    return owners.pop()


def test_batch_layout(datasets):
    from frontload.data.blend import Blend, BlendSource

    blend = Blend([BlendSource(datasets[1], weight=1.0)], seq_len=32)
    batch = blend.next_batch(4)
    assert batch["input_ids"].dtype == np.int64 and batch["input_ids"].shape == (4, 32)
    assert batch["seq_idx"].dtype == np.int32 and batch["labels"].dtype == np.int64
    assert np.array_equal(batch["labels"], batch["input_ids"])  # no loss mask on text data
    for ids, docs in zip(batch["input_ids"], batch["seq_idx"], strict=True):
        assert docs[0] == 0
        # a new document starts right after each EOS, and only there
        assert np.array_equal(np.diff(docs), (ids[:-1] == EOS).astype(np.int32))


def test_labels_hide_untrained_tokens(tmp_path):
    from frontload.data.blend import IGNORE_INDEX, Blend, BlendSource

    folder = write_dataset(tmp_path / "chat", 3, 60, seed=1, mask=True)
    batch = Blend([BlendSource(folder, weight=1)], seq_len=24).next_batch(3)
    ids, labels = batch["input_ids"], batch["labels"]
    assert np.array_equal(labels == IGNORE_INDEX, ids % 2 == 0)
    assert np.array_equal(labels[ids % 2 == 1], ids[ids % 2 == 1])


def test_exact_proportions_after_every_batch(datasets):
    from frontload.data.blend import Blend, BlendSource

    weights = [0.13, 0.55, 0.32]
    sources = [BlendSource(path, weight=w) for path, w in zip(datasets, weights, strict=True)]
    blend = Blend(sources, seq_len=16, seed=3)
    counts = np.zeros(3)
    for _ in range(40):
        for row in blend.next_batch(5)["input_ids"]:
            counts[source_of(row)] += 1
        # within one sequence of the target share, for every source, after every batch
        assert np.all(np.abs(counts - np.asarray(weights) * counts.sum()) < 1)
    report = blend.report()
    assert [r["tokens_served"] for r in report["sources"]] == (counts * 16).astype(int).tolist()


def test_ranks_are_disjoint_and_cover_the_global_batch(datasets):
    from frontload.data.blend import Blend, BlendSource

    sources = [BlendSource(path, weight=w) for path, w in zip(datasets, (1, 2, 1), strict=True)]
    world = 3
    ranks = [Blend(sources, 8, seed=5, rank=r, world_size=world) for r in range(world)]
    single = Blend(sources, 8, seed=5)
    seen: list[int] = []
    for _ in range(6):
        parts = [blend.next_batch(2)["input_ids"] for blend in ranks]
        assert np.array_equal(np.concatenate(parts), single.next_batch(2 * world)["input_ids"])
        for part in parts:
            seen += part[part != EOS].tolist()
    # 288 tokens served, less than one epoch of any source: no token may be served twice
    assert len(seen) == len(set(seen))


def test_resume_gives_the_batches_of_an_uninterrupted_run(datasets):
    from frontload.data.blend import Blend, BlendSource

    sources = [BlendSource(path, weight=w) for path, w in zip(datasets, (3, 1, 1), strict=True)]
    straight = Blend(sources, 20, seed=9, rank=1, world_size=2)
    expected = [straight.next_batch(3) for _ in range(12)]  # source 0 wraps several epochs
    assert straight.report()["sources"][0]["epochs_used"] > 2
    first = Blend(sources, 20, seed=9, rank=1, world_size=2)
    for _ in range(5):
        first.next_batch(3)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = Blend(sources, 20, seed=9, rank=1, world_size=2)
    resumed.load_state_dict(state)
    for want in expected[5:]:
        got = resumed.next_batch(3)
        for key in ("input_ids", "labels", "seq_idx"):
            assert np.array_equal(got[key], want[key])
    assert resumed.state_dict() == straight.state_dict()
    with pytest.raises(ConfigError, match="seed"):
        Blend(sources, 20, seed=10).load_state_dict(state)


def test_repeated_epochs_cover_every_document_and_reshuffle(datasets):
    from frontload.data.blend import Blend, BlendSource
    from frontload.data.shards import TokenDataset

    dataset = TokenDataset.open(datasets[0])
    total = dataset.num_tokens
    blend = Blend([BlendSource(datasets[0], weight=1)], seq_len=10, seed=2)
    rows = -(-3 * total // 10)
    stream = np.concatenate([blend.next_batch(1)["input_ids"][0] for _ in range(rows)])
    everything = np.sort(np.concatenate([np.asarray(t) for t in dataset.tokens]))
    epochs = [stream[e * total : (e + 1) * total] for e in range(3)]
    for epoch in epochs:
        assert np.array_equal(np.sort(epoch), everything)
    assert not np.array_equal(epochs[0], epochs[1])
    assert blend.report()["sources"][0]["epochs_used"] == pytest.approx(rows * 10 / total)


def test_seed_changes_order_but_not_shares(datasets):
    from frontload.data.blend import Blend, BlendSource

    sources = [BlendSource(path, weight=1) for path in datasets]
    a, b = Blend(sources, 16, seed=0), Blend(sources, 16, seed=1)
    assert not np.array_equal(a.next_batch(6)["input_ids"], b.next_batch(6)["input_ids"])
    assert [r["tokens_served"] for r in a.report()["sources"]] == [
        r["tokens_served"] for r in b.report()["sources"]
    ]


def test_token_targets_and_epoch_caps(datasets):
    from frontload.data.blend import Blend, BlendSource
    from frontload.data.shards import TokenDataset

    small = TokenDataset.open(datasets[0]).num_tokens
    sources = [
        BlendSource(datasets[0], tokens=small * 2),
        BlendSource(datasets[1], tokens=small * 6),
    ]
    blend = Blend(sources, 16, total_tokens=small * 8)
    assert blend.weights.tolist() == pytest.approx([0.25, 0.75])
    capped = [BlendSource(datasets[0], tokens=small * 2, max_epochs=1.5), sources[1]]
    with pytest.raises(ConfigError, match="max_epochs"):
        Blend(capped, 16, total_tokens=small * 8)
    runtime = Blend([BlendSource(datasets[0], weight=1, max_epochs=1)], 16)
    with pytest.raises(DataError, match="max_epochs"):
        for _ in range(small // 16 + 2):
            runtime.next_batch(1)


def test_bad_weights_and_tokenizer_mismatch(datasets, tmp_path):
    from frontload.data.blend import Blend, BlendSource

    with pytest.raises(ConfigError, match=">= 0"):
        BlendSource(datasets[0], weight=-0.5)
    with pytest.raises(ConfigError, match="sum to zero"):
        Blend([BlendSource(datasets[0], weight=0), BlendSource(datasets[1], weight=0)], 8)
    with pytest.raises(ConfigError, match="without a total"):
        Blend([BlendSource(datasets[0], weight=1), BlendSource(datasets[1], tokens=10)], 8)
    with pytest.raises(DataError) as error:
        Blend([BlendSource(datasets[0], weight=1)], 8, expected_tokenizer_hash="abc123")
    assert "abc123" in str(error.value) and HASH in str(error.value)
    foreign = write_dataset(tmp_path / "foreign", 5, 20, seed=0, digest="otherhash")
    with pytest.raises(DataError, match="different tokenizers"):
        Blend([BlendSource(datasets[0], weight=1), BlendSource(foreign, weight=1)], 8)


def test_plan_sources_serve_the_plan_tokens(datasets, tmp_path):
    """A plan phase becomes blend sources by its tokens (general last, empty entries dropped),
    resolved to token folders the one way every stage does (names in lower case)."""
    from frontload.data.blend import Blend
    from frontload.data.interop import plan_sources
    from frontload.plan import PhasePlan, PlanEntry
    from frontload.workspace import Workspace

    workspace = Workspace(tmp_path / "ws")
    workspace.tokens_dir.mkdir(parents=True)
    for path in datasets:
        (workspace.tokens_dir / path.name).symlink_to(path)
    phase = PhasePlan(
        name="pretrain",
        budget_tokens=10_000,
        general_corpus="src1",
        general_tokens=7_000,
        entries=[
            PlanEntry(corpus="SRC0", tokens=2_000, weight=0.2, epochs=1.0),
            PlanEntry(corpus="src2", tokens=1_000, weight=0.1, epochs=1.0),
            PlanEntry(corpus="dshq", tokens=0, weight=0.0, epochs=0.0),
        ],
    )
    sources = plan_sources(phase, workspace)
    assert [(s.path.name, s.tokens) for s in sources] == [
        ("src0", 2_000),
        ("src2", 1_000),
        ("src1", 7_000),
    ]
    blend = Blend(sources, seq_len=8, seed=1)
    assert blend.weights.tolist() == pytest.approx([0.2, 0.1, 0.7])


def test_interop_exports(datasets):
    from frontload.data.blend import BlendSource
    from frontload.data.interop import export_blend
    from frontload.data.shards import TokenDataset

    sources = [BlendSource(path, weight=w) for path, w in zip(datasets, (1, 2, 1), strict=True)]
    exported = export_blend(sources)
    parts = exported["megatron_data_path"].split()
    weights = [float(w) for w in parts[0::2]]
    # one prefix per source: its `fl data export megatron` files (token weights)
    assert parts[1::2] == [str(d / "megatron_text_document") for d in datasets]
    assert weights == pytest.approx([0.25, 0.5, 0.25], abs=1e-7)
    assert len(exported["megatron_convert_first"]) == 3  # not converted yet
    probabilities = np.asarray(exported["hf_probabilities"])
    assert probabilities.sum() == pytest.approx(1)
    # examples are drawn in proportion to token weight / mean document length
    mean = np.asarray([d.num_tokens / d.num_documents for d in map(TokenDataset.open, datasets)])
    expected = np.asarray([0.25, 0.5, 0.25]) / mean
    assert probabilities == pytest.approx(expected / expected.sum())


def test_held_out_documents_are_never_served(datasets):
    """The last documents holding `holdout_tokens` are what the trainer validates on: never trained."""
    from frontload.data.blend import Blend, BlendSource, holdout_start
    from frontload.data.shards import TokenDataset

    dataset = TokenDataset.open(datasets[0])
    start = holdout_start(dataset, 30)
    held = np.concatenate(
        [np.asarray(dataset.document(d)[0]) for d in range(start, len(dataset.doc_len))]
    )
    assert len(held) >= 30 and len(held) - int(dataset.doc_len[start]) < 30  # the fewest documents
    blend = Blend([BlendSource(datasets[0], weight=1, holdout_tokens=30)], seq_len=10, seed=1)
    served = np.concatenate([blend.next_batch(4)["input_ids"].ravel() for _ in range(40)])
    held_ids = set(held[held != EOS].tolist())
    assert held_ids and not held_ids & set(served.tolist())
    assert blend.report()["sources"][0]["held_out_documents"] == len(dataset.doc_len) - start
    with pytest.raises(DataError, match="leaves no documents"):
        Blend([BlendSource(datasets[0], weight=1, holdout_tokens=10**9)], seq_len=10)
