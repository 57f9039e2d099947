"""Stand-in trainers and evaluation for whole-loop tests: each run writes what the real trainers
write for the catalog (served.jsonl, recipe.yaml, summary.json), and evaluation writes a metric
that is a fixed linear function of the allocation's shares plus seed noise, so that the loop,
verify and the scale transfer run end to end in seconds (the real trainers and evaluator are tested
in tests/train, tests/posttrain and tests/evaluate)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from frontload.plan import Plan

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
ALLOCATE = {
    "name": "vf",
    "workspace_corpora": ["dldq", "dshq", "dlmq", "dalf"],
    "budgets": {"pretrain": {"tokens": 204800}, "sft": {"tokens": 20480}},
    "trust_region": None,
}
# bpb = 5 - sum(weight x share of the phase) + noise: scale-free, so both scales rank arms alike
WEIGHTS = {("pretrain", "dldq"): 0.4, ("pretrain", "dshq"): 0.2, ("sft", "dshq"): 0.15}
NOISE = 0.002


def served_rows(run: str, plan, phase_name: str) -> list[dict]:
    phase = plan.phase(phase_name)
    rows = [
        {"run": run, "stage": phase_name, "phase": phase_name, "corpus": e.corpus}
        | {"tokens": e.tokens, "examples": None, "epochs": e.epochs, "plan": plan.name}
        for e in phase.entries
        if e.tokens
    ]
    if phase_name == "pretrain":
        rows.append(
            {"run": run, "stage": "pretrain", "phase": "pretrain", "corpus": "general"}
            | {"tokens": phase.general_tokens, "examples": None, "epochs": 1.0, "plan": plan.name}
        )
    return rows


def shares(run_dir: Path) -> dict[tuple[str, str], float]:
    """(phase, corpus) -> share of its phase, over this run and its parent (SFT runs)."""
    rows = [json.loads(line) for line in (run_dir / "served.jsonl").read_text().splitlines()]
    summary = run_dir / "summary.json"
    if summary.is_file():
        parent = Path(json.loads(summary.read_text())["model"]).parent.name
        parent_rows = (run_dir.parent / parent / "served.jsonl").read_text().splitlines()
        rows += [json.loads(line) for line in parent_rows]
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["stage"]] = totals.get(row["stage"], 0.0) + row["tokens"]
    return {(r["stage"], r["corpus"]): r["tokens"] / totals[r["stage"]] for r in rows}


def metric(run_dir: Path, seed: int) -> float:
    found = shares(run_dir)
    signal = sum(w * found.get(key, 0.0) for key, w in WEIGHTS.items())
    return 5.0 - signal + NOISE * (((seed * 7919) % 13) / 13 - 0.5)


def install(monkeypatch, calls: list) -> None:
    """Replace pretraining, SFT, evaluation and the data stages with stand-ins."""
    from frontload.study import pipeline
    from frontload.train import pretrain as pretrain_module
    from frontload.train.posttrain import sft as sft_module

    def fake_pretrain(recipe, ws, plan=None, resume=False):
        assert isinstance(plan, Plan), plan
        calls.append(("pretrain", recipe.name, recipe.seed))
        folder = ws.runs_dir / recipe.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "recipe.yaml").write_text(yaml.safe_dump({"seed": recipe.seed}))
        rows = served_rows(recipe.name, plan, "pretrain")
        (folder / "served.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def fake_sft(recipe, ws, plan=None, resume=True):
        assert isinstance(plan, Plan), plan  # the trainers take the resolved plan
        calls.append(("sft", recipe.name, recipe.seed))
        folder = ws.runs_dir / recipe.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "summary.json").write_text(json.dumps({"model": recipe.model}))
        rows = served_rows(recipe.name, plan, "sft")
        (folder / "served.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def fake_evaluate(self, run, model_dir, mode, upstream):
        folder = self.ws.evals_dir / run
        folder.mkdir(parents=True, exist_ok=True)
        seed = int(re.findall(r"_s(\d+)", run)[-1])
        row = {"run": run, "train_run": model_dir.parent.name, "model": str(model_dir)}
        row |= {"task": "gsm8k", "category": "math", "score": 0.0, "answer_logprob": -3.0}
        row["bpb"] = metric(model_dir.parent, seed) + (0.3 if mode == "base" else 0.0)
        (folder / "summary.json").write_text(json.dumps([row]))

    monkeypatch.setattr(pretrain_module, "pretrain", fake_pretrain)
    monkeypatch.setattr(sft_module, "sft", fake_sft)
    monkeypatch.setattr(pipeline.Study, "evaluate", fake_evaluate)
    monkeypatch.setattr(pipeline.Study, "data_stages", lambda self: "data")


def write_loop(folder: Path, seeds: list[int]) -> Path:
    """A loop file (and its allocate config and recipes) over the test corpora, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "allocate.yaml").write_text(yaml.safe_dump(ALLOCATE))
    for name in ("loop_pretrain.yaml", "loop_sft.yaml"):
        (folder / name).write_text((RECIPES / "nano" / name).read_text())
    spec = {
        "name": "vf",
        "curate": "unused.yaml",
        "sweep": {
            "allocate": "allocate.yaml",
            "runs": 11,
            "seeds": seeds,
            "pretrain": "loop_pretrain.yaml",
            "sft": "loop_sft.yaml",
        },
        "fit": {"metric": "bpb", "bootstrap": 0, "repeats": 2},  # the ladder: tests/allocate
        "verify": {"seeds": 3, "seed_offset": 1000},
    }
    path = folder / "loop.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
