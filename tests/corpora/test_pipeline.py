"""Through the curation pipeline: generated sample -> pool with quality/length/verified -> corpora."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from frontload.curate.pipeline import run_curation
from frontload.curate.recipe import load_recipe
from frontload.quickstart.sample import generate_sample

from .conftest import REPO_ROOT


def test_sample_to_corpora(workspace, tmp_path):
    generate_sample(workspace.root / "sample", records=300, seed=1)
    recipe = yaml.safe_load((REPO_ROOT / "recipes" / "tiny" / "curate.yaml").read_text())
    recipe["executor"] = {"tasks": 1, "workers": 1}
    recipe["near_dedup"] = {"enabled": False}
    recipe["quality"] = {"bootstrap": {"bucket": 100_000, "dim": 16, "epochs": 20}}
    recipe["length"] = {"vocab_size": 1024}
    recipe["corpora"] = {"dshq_min_answer_tokens": 128, "dalf_min_answer_tokens": 256}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run_curation(load_recipe(path), workspace)

    pool = pa.concat_tables(pq.read_table(p) for p in sorted(workspace.pool_dir.glob("*.parquet")))
    rows = pool.to_pylist()
    assert rows and all(r["quality"] is not None and 0 <= r["quality"] <= 1 for r in rows)
    assert all(r["total_tokens"] > 0 and r["answer_tokens"] <= r["total_tokens"] for r in rows)
    referenced = [r for r in rows if r["reference"]]
    assert referenced and all(r["verified"] is not None for r in referenced)
    assert sum(r["verified"] for r in referenced) > len(referenced) / 2
    assert all(r["verified"] is None for r in rows if not r["reference"])
    curated = [r["quality"] for r in rows if "curated" in r["tags"]]
    others = [r["quality"] for r in rows if "curated" not in r["tags"]]
    assert sum(curated) / len(curated) > sum(others) / len(others)

    corpora = result.corpora
    assert all(corpora[name]["records"] > 0 for name in ("dldq", "dshq", "dlmq", "dalf", "general"))
    ids = {
        name: {
            r["id"]
            for r in pq.read_table(next(workspace.corpus_dir(name).glob("*.parquet"))).to_pylist()
        }
        for name in corpora
    }
    assert ids["dlmq"] == ids["dldq"] | ids["dshq"]
    contaminated = {r["id"] for r in rows if r["contaminated"]}
    assert contaminated and not contaminated & ids["dlmq"]
