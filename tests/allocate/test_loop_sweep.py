"""`fl run LOOP.yaml` sweep execution: every point x seed once (equal pretraining allocations
trained once per seed), finished points skipped on rerun.

The trainers are replaced by stand-ins that record what they were asked to train (the real ones
are covered by tests/train and tests/posttrain); evaluation is replaced by a no-op.
"""

from __future__ import annotations

import json

import pytest
import yaml

from frontload.allocate.design import load_sweep
from frontload.plan import load_plan
from frontload.study.pipeline import digest
from frontload.study.points import pretraining_part
from frontload.study.sweep import Loop, LoopConfig, is_loop

CONFIG = {
    "name": "sw",
    "workspace_corpora": ["dldq", "dshq", "dlmq", "dalf"],
    "budgets": {"pretrain": {"tokens": 204800}, "sft": {"tokens": 20480}},
    "trust_region": None,
}


@pytest.fixture
def loop(corpora_workspace, tmp_path, monkeypatch):
    from frontload.train import pretrain as pretrain_module
    from frontload.train.posttrain import sft as sft_module

    calls = []

    def fake(stage):
        def train(recipe, ws, plan=None, resume=False):
            calls.append((stage, recipe.name, recipe.seed))
            folder = ws.runs_dir / recipe.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "served.jsonl").write_text(json.dumps({"run": recipe.name}) + "\n")

        return train

    monkeypatch.setattr(pretrain_module, "pretrain", fake("pretrain"))
    monkeypatch.setattr(sft_module, "sft", fake("sft"))
    (tmp_path / "allocate.yaml").write_text(yaml.safe_dump(CONFIG))
    recipes = __import__("pathlib").Path(__file__).resolve().parents[2] / "recipes" / "nano"
    for name in ("loop_pretrain.yaml", "loop_sft.yaml"):
        (tmp_path / name).write_text((recipes / name).read_text())
    spec = {
        "name": "sw",
        "curate": "unused.yaml",
        "sweep": {
            "allocate": "allocate.yaml",
            "runs": 11,
            "seeds": [0, 1],
            "pretrain": "loop_pretrain.yaml",
            "sft": "loop_sft.yaml",
        },
    }
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump(spec))
    assert is_loop(tmp_path / "loop.yaml")

    def make():
        return Loop(LoopConfig.model_validate(spec), tmp_path, corpora_workspace)

    return make, calls


def test_every_point_and_seed_once_then_skipped(loop, monkeypatch):
    from frontload.study import pipeline

    monkeypatch.setattr(pipeline.Study, "evaluate", lambda *a, **k: None)
    make, calls = loop
    first = make()
    key, sweep = first.design("data")
    runs = first.run_sweep(sweep, key)
    assert len(runs) == 22 == len(set(runs))
    # points with equal pretraining allocations (the study's arms) share a run per seed
    points, base = load_sweep(sweep)
    parts = {digest(pretraining_part(load_plan(base / p.plan))) for p in points.points}
    assert 4 <= len(parts) < 11
    pretrained = sorted(c[2] for c in calls if c[0] == "pretrain")
    assert pretrained == [0] * len(parts) + [1] * len(parts)
    assert len(calls) == 2 * len(parts) + 22
    calls.clear()
    again = make()  # a rerun (resume): nothing left to do
    key, sweep = again.design("data")
    assert again.run_sweep(sweep, key) == runs and calls == []
    state = json.loads((again.folder / "state.json").read_text())
    dropped = next(s for s in state["done"] if s.startswith("sweep/sft/"))
    del state["done"][dropped]
    (again.folder / "state.json").write_text(json.dumps(state))
    third = make()
    key, sweep = third.design("data")
    third.run_sweep(sweep, key)
    assert [c[0] for c in calls] == ["sft"]  # only the unfinished stage reruns
