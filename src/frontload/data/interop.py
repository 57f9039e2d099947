"""A blend in other trainers' terms: Megatron-LM indexed datasets and `--data-path` weights, and HF
`interleave_datasets` probabilities.

`export_megatron` writes a token dataset as Megatron-LM's indexed dataset (`<prefix>.bin` +
`<prefix>.idx`, one sequence per document, EOS included, document boundaries kept), the files that
`--data-path` names. Megatron samples fixed-length sequences, so its blend weights are token
weights. HF `interleave_datasets` samples examples, not tokens, so its probabilities are the token
weights divided by each source's mean document length, renormalised.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from frontload.data.blend import BlendSource, resolve_weights
from frontload.data.shards import MANIFEST, TokenDataset, atomic_write_json, token_dir
from frontload.errors import ConfigError
from frontload.plan import PhasePlan, interleave_probabilities, megatron_data_path
from frontload.workspace import Workspace

MEGATRON_STEM = "megatron_text_document"  # <tokens dir>/<stem>.bin|.idx|.json
MEGATRON_HEADER = b"MMIDIDX\x00\x00"  # Megatron-LM's indexed dataset magic, version 1 follows
MEGATRON_DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}


def megatron_prefix(token_dir: Path) -> Path:
    """The Megatron prefix (path without .bin/.idx) of a token dataset's export."""
    return Path(token_dir) / MEGATRON_STEM


def megatron_is_current(token_dir: Path) -> bool:
    """Whether the export exists and was made from the dataset's current shards."""
    prefix = megatron_prefix(token_dir)
    side = prefix.with_suffix(".json")
    if not (side.is_file() and prefix.with_suffix(".bin").is_file()):
        return False
    made_from = json.loads(side.read_text())
    manifest = json.loads((Path(token_dir) / MANIFEST).read_text())
    keys = ("tokens", "documents", "tokenizer_hash")
    return all(made_from.get(k) == manifest.get(k) for k in keys)


def export_megatron(token_dir: Path, prefix: Path | None = None) -> dict:
    """Write `<prefix>.bin` and `<prefix>.idx` (Megatron-LM `IndexedDataset`, format version 1):
    the .bin is every document's tokens end to end; the .idx holds the header, dtype code,
    sequence and document counts, int32 sequence lengths, int64 byte pointers and the int64
    document index (0..n: one sequence per document). Written under temporary names, then
    renamed, so a reader never sees half a dataset."""
    dataset = TokenDataset.open(token_dir)
    prefix = Path(prefix) if prefix else megatron_prefix(token_dir)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    wide = any(np.dtype(m["dtype"]).itemsize > 2 for m in dataset.manifest["shards"])
    dtype = np.dtype(np.int32) if wide else np.dtype(np.uint16)
    bin_path, idx_path = prefix.with_suffix(".bin"), prefix.with_suffix(".idx")
    bin_tmp, idx_tmp = Path(f"{bin_path}.tmp"), Path(f"{idx_path}.tmp")
    with bin_tmp.open("wb") as out:
        for tokens in dataset.tokens:  # shards in order: documents in dataset order
            out.write(np.ascontiguousarray(tokens, dtype=dtype).tobytes())
    lengths = dataset.doc_len.astype(np.int32)
    pointers = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1].astype(np.int64) * dtype.itemsize, out=pointers[1:])
    documents = np.arange(len(lengths) + 1, dtype=np.int64)
    with idx_tmp.open("wb") as out:
        out.write(MEGATRON_HEADER)
        out.write(struct.pack("<Q", 1))
        out.write(struct.pack("<B", MEGATRON_DTYPE_CODES[dtype]))
        out.write(struct.pack("<Q", len(lengths)))
        out.write(struct.pack("<Q", len(documents)))
        out.write(lengths.tobytes(order="C"))
        out.write(pointers.tobytes(order="C"))
        out.write(documents.tobytes(order="C"))
    bin_tmp.replace(bin_path)
    idx_tmp.replace(idx_path)
    info = {
        "prefix": str(prefix),
        "dtype": dtype.name,
        "tokens": dataset.num_tokens,
        "documents": dataset.num_documents,
        "tokenizer_hash": dataset.tokenizer_hash,
        # Megatron's indexed dataset has no loss mask: a chat-form dataset's mask is not exported
        "loss_mask_dropped": dataset.has_mask,
    }
    if prefix == megatron_prefix(token_dir):
        atomic_write_json(prefix.with_suffix(".json"), info)
    return info


def export_blend(
    sources: list[BlendSource],
    total_tokens: int | None = None,
    seed: int = 0,
    prefix: str | None = None,
) -> dict:
    """A blend in every trainer's terms: token weights and per-example probabilities per source,
    the Megatron `--data-path` string (one prefix per source: its `fl data export megatron` files,
    or `prefix` with `{corpus}` replaced), the HF snippet, and the blend as fl's loader reads it
    (`fl`: token folder and tokens or weight)."""
    weights = resolve_weights(sources, total_tokens)
    datasets = [TokenDataset.open(s.path) for s in sources]
    names = [d.name for d in datasets]
    if len(set(names)) < len(names):
        raise ConfigError(f"the blend lists a token dataset twice: {', '.join(names)}")
    token_weights = dict(zip(names, (float(w) for w in weights), strict=True))
    mean_doc = {d.name: d.num_tokens / max(d.num_documents, 1) for d in datasets}
    probabilities = interleave_probabilities(token_weights, mean_doc)
    prefixes = {
        d.name: str(megatron_prefix(s.path)) for d, s in zip(datasets, sources, strict=True)
    }
    convert = [
        f"fl data export megatron {n}"
        for n, s in zip(names, sources, strict=True)
        if not megatron_is_current(s.path)
    ]
    listed = ", ".join(names)
    rounded = [round(p, 6) for p in probabilities.values()]
    return {
        "sources": [
            {
                "name": n,
                "path": str(s.path),
                "token_weight": token_weights[n],
                "mean_document_tokens": float(mean_doc[n]),
                "example_probability": float(probabilities[n]),
            }
            for n, s in zip(names, sources, strict=True)
        ],
        "megatron_data_path": megatron_data_path(token_weights, prefixes.__getitem__),
        "megatron_convert_first": convert,
        "hf_probabilities": [float(p) for p in probabilities.values()],
        "hf_probabilities_are": "per example (interleave_datasets draws examples, not tokens)",
        "hf_snippet": (
            f"interleave_datasets([{listed}], probabilities={rounded}, "
            f"seed={seed}, stopping_strategy='all_exhausted')"
        ),
        "fl": [
            {"path": str(s.path), "tokens": s.tokens, "weight": None if s.tokens else s.weight}
            for s in sources
        ],
    }


def plan_sources(phase: PhasePlan, workspace: Workspace) -> list[BlendSource]:
    """A plan phase's corpora (general included) as blend sources that serve the plan's tokens."""
    return [
        BlendSource(token_dir(workspace, corpus), tokens=tokens)
        for corpus, tokens in phase.corpus_tokens()
    ]
