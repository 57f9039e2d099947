"""A blend in other trainers' terms: Megatron `--data-path` weights and HF `interleave_datasets`.

Megatron blends per file prefix, so each source's weight is spread over its shards by their token
counts (`w1 prefix1 w2 prefix2 ...`; the prefixes name our shards, which Megatron reads once
converted to its .bin/.idx pair). HF `interleave_datasets` samples examples, not tokens, so its
probabilities are the token weights divided by each source's mean document length, renormalised.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from frontload.data.blend import BlendSource, resolve_weights
from frontload.data.shards import MANIFEST
from frontload.errors import StageNotReady


def _manifest(path: Path) -> dict:
    file = path / MANIFEST
    if not file.is_file():
        raise StageNotReady(
            f"no token dataset at {path}", hint=f"run `fl data tokenize --corpus {path.name}`"
        )
    return json.loads(file.read_text())


def export_blend(
    sources: list[BlendSource], total_tokens: int | None = None, seed: int = 0
) -> dict:
    """Token weights per source, the Megatron weight string and HF interleave probabilities."""
    weights = resolve_weights(sources, total_tokens)
    manifests = [_manifest(s.path) for s in sources]
    pairs = []
    for source, weight, manifest in zip(sources, weights, manifests, strict=True):
        for shard in manifest["shards"]:
            if shard["tokens"]:
                share = weight * shard["tokens"] / manifest["tokens"]
                pairs.append(f"{share:.6g} {source.path / shard['name']}")
    mean_doc = np.asarray([m["tokens"] / max(m["documents"], 1) for m in manifests])
    per_example = weights / mean_doc
    probabilities = per_example / per_example.sum()
    names = [m.get("name", s.path.name) for s, m in zip(sources, manifests, strict=True)]
    listed = ", ".join(names)
    return {
        "sources": [
            {"name": n, "path": str(s.path), "weight": float(w)}
            for n, s, w in zip(names, sources, weights, strict=True)
        ],
        "megatron_data_path": " ".join(pairs),
        "hf_probabilities": [float(p) for p in probabilities],
        "hf_snippet": (
            f"interleave_datasets([{listed}], probabilities={[round(float(p), 6) for p in probabilities]}, "
            f"seed={seed}, stopping_strategy='all_exhausted')"
        ),
    }
