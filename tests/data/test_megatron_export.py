"""`fl data export megatron`: Megatron-LM's indexed dataset (.bin + .idx) read back, every document
compared token for token, by Megatron's own reader and by an independent one written from the
documented format; `--data-path` strings then name those files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from .test_blend import write_dataset

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}


def read_indexed(prefix: Path) -> list[np.ndarray]:
    """Megatron's `MMIDIDX` format, read from its documented layout (not from fl's writer):
    9-byte magic, <Q version 1, <B dtype code, <Q sequence count, <Q document count, then int32
    lengths, int64 byte pointers and int64 document boundaries; the .bin holds the tokens."""
    raw = Path(f"{prefix}.idx").read_bytes()
    assert raw[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack_from("<Q", raw, 9)
    (code,) = struct.unpack_from("<B", raw, 17)
    sequences, documents = struct.unpack_from("<QQ", raw, 18)
    assert version == 1 and documents == sequences + 1
    offset = 34
    lengths = np.frombuffer(raw, np.int32, sequences, offset)
    pointers = np.frombuffer(raw, np.int64, sequences, offset + 4 * sequences)
    bounds = np.frombuffer(raw, np.int64, documents, offset + 12 * sequences)
    assert len(raw) == offset + 12 * sequences + 8 * documents
    assert np.array_equal(bounds, np.arange(documents))  # one sequence per document
    dtype = np.dtype(DTYPES[code])
    data = np.fromfile(f"{prefix}.bin", dtype=dtype)
    assert data.nbytes == int(pointers[-1]) + int(lengths[-1]) * dtype.itemsize
    return [
        data[p // dtype.itemsize : p // dtype.itemsize + n]
        for p, n in zip(pointers, lengths, strict=True)
    ]


def documents(folder: Path) -> list[np.ndarray]:
    from frontload.data.shards import TokenDataset

    dataset = TokenDataset.open(folder)
    return [np.asarray(dataset.document(i)[0]) for i in range(dataset.num_documents)]


@pytest.fixture
def wide_dataset(tmp_path):
    """Token ids above 2^16 (uint32 shards -> Megatron int32), two shards, 120 documents."""
    return write_dataset(tmp_path / "wide", 3, 120, seed=3)


def test_independent_reader_gets_every_document_back(wide_dataset):
    from frontload.data.interop import export_megatron, megatron_is_current, megatron_prefix

    info = export_megatron(wide_dataset)
    assert info["dtype"] == "int32" and info["documents"] == 120
    ours, theirs = documents(wide_dataset), read_indexed(megatron_prefix(wide_dataset))
    assert len(theirs) == len(ours) == 120
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(a.astype(np.int64), b.astype(np.int64))
        assert b[-1] == 1  # each document keeps its EOS: boundaries survive
    assert megatron_is_current(wide_dataset)


def test_megatron_core_reader_gets_every_document_back(wide_dataset, tmp_path):
    indexed = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    from frontload.data.interop import export_megatron

    prefix = tmp_path / "out" / "wide_text_document"
    export_megatron(wide_dataset, prefix)
    dataset = indexed.IndexedDataset(str(prefix))
    ours = documents(wide_dataset)
    assert len(dataset) == len(ours)
    assert np.array_equal(dataset.document_indices, np.arange(len(ours) + 1))
    assert np.array_equal(dataset.sequence_lengths, [len(d) for d in ours])
    for i, doc in enumerate(ours):
        assert np.array_equal(np.asarray(dataset[i], dtype=np.int64), doc.astype(np.int64))


def test_cli_export_then_blend_export_points_at_the_files(corpus_workspace):
    from typer.testing import CliRunner

    from frontload.cli import app

    runner = CliRunner()

    def fl(*args: str) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    fl("data", "tokenize", "-c", "dldq", "-c", "general")
    before = json.loads(fl("data", "blend-export", "-s", "dldq=1", "-s", "general=3"))
    assert before["megatron_convert_first"] == [
        "fl data export megatron dldq",
        "fl data export megatron general",
    ]
    for name in ("dldq", "general"):
        assert "documents" in fl("data", "export", "megatron", name)
    exported = json.loads(fl("data", "blend-export", "-s", "dldq=1", "-s", "general=3"))
    assert exported["megatron_convert_first"] == []
    parts = exported["megatron_data_path"].split()
    assert [float(w) for w in parts[0::2]] == pytest.approx([0.25, 0.75])
    for prefix in parts[1::2]:
        assert Path(f"{prefix}.bin").is_file() and Path(f"{prefix}.idx").is_file()
    folder = corpus_workspace.tokens_dir / "dldq"
    theirs = read_indexed(Path(parts[1]))
    assert Path(parts[1]).parent == folder
    assert np.dtype(theirs[0].dtype) == np.uint16  # a small vocab stays 2 bytes per token
    assert all(np.array_equal(a, b) for a, b in zip(documents(folder), theirs, strict=True))


def test_a_loss_mask_that_megatron_cannot_hold_is_reported(tmp_path):
    """A chat-form dataset's assistant-only mask has no place in Megatron's indexed dataset: the
    export says it left the mask out instead of dropping it without a word."""
    from frontload.data.interop import export_megatron

    masked = write_dataset(tmp_path / "chat", 1, 20, seed=1, mask=True)
    assert export_megatron(masked)["loss_mask_dropped"] is True
    plain = write_dataset(tmp_path / "text", 2, 20, seed=2)
    assert export_megatron(plain)["loss_mask_dropped"] is False
