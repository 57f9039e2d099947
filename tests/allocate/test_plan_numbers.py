"""Every number a plan prints is right: per-example HF probabilities reproduce the plan's token
weights when examples are drawn with them; binding constraints come from duals and slacks; an
under-filled SFT budget says why; infeasible baselines are not scored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from frontload.allocate.config import AllocateConfig
from frontload.allocate.solve import solve_plan


def write_tokens(folder, lengths: list[int], seed: int) -> None:
    """A token dataset (fl's shard format) with documents of the given lengths."""
    from frontload.data.shards import FORMAT_VERSION, ShardWriter, atomic_write_json

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    writer = ShardWriter(folder, "shard-00000", np.dtype("<u2"), with_mask=False)
    tokens = rng.integers(2, 200, size=sum(lengths))
    writer.append(tokens, np.asarray(lengths), None)
    meta = writer.close({"tokenizer_hash": "h", "format": FORMAT_VERSION})
    manifest = {"name": folder.name, "tokens": meta["tokens"], "documents": meta["documents"]}
    manifest.update(dtype="uint16", tokenizer_hash="h", field="text", shards=[meta])
    atomic_write_json(folder / "manifest.json", manifest)


@pytest.fixture
def long_and_short(workspace):
    """general: ~300-token documents; dldq: ~40; dshq: ~2000 (long chains of thought)."""
    rng = np.random.default_rng(0)
    for name, mean, count in (("general", 300, 400), ("dldq", 40, 900), ("dshq", 2000, 60)):
        lengths = rng.integers(mean // 2, mean * 3 // 2 + 1, size=count).tolist()
        write_tokens(workspace.tokens_dir / name, lengths, seed=len(name))
    from frontload.plan import PhasePlan, Plan, PlanEntry, save_plan

    budget = 1_000_000
    entries = [
        PlanEntry(corpus="dldq", tokens=250_000, epochs=1.0, weight=0.25),
        PlanEntry(corpus="dshq", tokens=150_000, epochs=1.0, weight=0.15),
    ]
    phase = PhasePlan(
        name="pretrain", budget_tokens=budget, general_tokens=600_000, entries=entries
    )
    save_plan(Plan(name="mix", phases=[phase]), workspace.plans_dir / "mix.yaml")
    return workspace


def _token_shares(workspace, names, probabilities, draws: int, seed: int) -> np.ndarray:
    """Draw `draws` examples: a source by `probabilities`, then one of its documents uniformly;
    return each source's share of the tokens drawn."""
    from frontload.data.shards import TokenDataset

    rng = np.random.default_rng(seed)
    picks = rng.choice(len(names), size=draws, p=probabilities)
    tokens = np.zeros(len(names))
    for s, name in enumerate(names):
        lengths = TokenDataset.open(workspace.tokens_dir / name).doc_len
        tokens[s] = lengths[rng.integers(0, len(lengths), size=int((picks == s).sum()))].sum()
    return tokens / tokens.sum()


def test_hf_probabilities_reproduce_token_weights_by_simulation(long_and_short):
    from typer.testing import CliRunner

    from frontload.cli import app

    runner = CliRunner()
    hf = ["data", "blend-export", "--plan", "mix", "--format", "hf"]
    result = runner.invoke(app, hf, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    names, probs, weights = out["datasets"], out["probabilities"], out["token_weights"]
    assert names == ["dldq", "dshq", "general"] and "per example" in out["probabilities_are"]
    assert weights == pytest.approx([0.25, 0.15, 0.6])
    shares = _token_shares(long_and_short, names, probs, 2_000_000, seed=1)
    assert shares == pytest.approx(weights, rel=0.01)  # within 1% of each token weight
    # token weights used as per-example probabilities (the old export) miss by far more
    wrong = _token_shares(long_and_short, names, weights, 2_000_000, seed=1)
    assert abs(wrong[1] / weights[1] - 1) > 0.5
    # the whole JSON export gives the same numbers for the same plan
    blend = runner.invoke(app, ["data", "blend-export", "--plan", "mix"], catch_exceptions=False)
    assert json.loads(blend.output)["hf_probabilities"] == pytest.approx(probs)


def _hand(**update) -> AllocateConfig:
    data = {
        "name": "t",
        "corpora": {
            "ldq": {"tokens": 2e6, "records": 4000, "quality": 0.4, "answer_tokens": 300},
            "shq": {"tokens": 5e5, "records": 100, "quality": 0.9, "answer_tokens": 5000},
        },
        "budgets": {"pretrain": {"tokens": 2e7}, "sft": {"tokens": 1e8}},
        "groups": [{"name": "share", "phase": "pretrain", "min": 0.05, "max": 0.4}],
        "trust_region": None,
        "max_epochs": {"pretrain": 16, "sft": 0.5},
    }
    data.update(update)
    return AllocateConfig.model_validate(data)


def test_under_filled_sft_budget_says_why_and_what_relaxing_is_worth():
    from frontload.allocate.explain import explain

    plan = solve_plan(_hand())
    sft = plan.require_phase("sft")
    used = sum(e.tokens for e in sft.entries)
    assert used < 0.01 * sft.budget_tokens
    note = next(n for n in plan.notes if n.startswith("sft budget under-filled"))
    assert "data exhausted at max epochs" in note and "shq at 0.5 epochs" in note
    assert "max_epochs:shq:sft" in plan.binding_constraints
    assert "budget:sft" not in plan.binding_constraints  # the ceiling is not what binds
    value = plan.shadow_prices["max_epochs:shq:sft"]
    assert value > 0 and f"{value:+.3g} points per extra epoch" in note
    # the price is right: one more epoch allowed gains about that much (concave: at most that)
    relaxed = solve_plan(_hand(limits={"shq": {"max_epochs": {"sft": 0.6}}}))
    gain = relaxed.objective - plan.objective
    assert 0 < gain <= 0.1 * value * (1 + 1e-3)
    assert gain == pytest.approx(0.1 * value, rel=0.2)
    assert "the SFT budget does not bind" in explain(plan)


def test_a_budget_cap_is_never_reported_as_an_epoch_limit():
    """A corpus whose cap is the SFT budget itself (the budget, not its epochs, binds)."""
    plan = solve_plan(
        _hand(
            budgets={"pretrain": {"tokens": 2e7}, "sft": {"tokens": 2e5}},
            max_epochs={"pretrain": 16, "sft": 8},
        )
    )
    assert plan.require_phase("sft").total_tokens == pytest.approx(2e5, rel=1e-4)
    assert "budget:sft" in plan.binding_constraints
    assert not any(
        b.startswith("max_epochs:") and b.endswith(":sft") for b in plan.binding_constraints
    )
    assert not any(n.startswith("sft budget under-filled") for n in plan.notes)


def test_infeasible_baseline_is_shown_as_infeasible_not_scored():
    from frontload.allocate.explain import explain

    plan = solve_plan(
        _hand(groups=[{"name": "share", "phase": "pretrain", "min": 0.1, "max": 0.4}])
    )
    no_pt = next(b for b in plan.baselines if b.name == "no_pretrain_reasoning")
    assert not no_pt.feasible and no_pt.breaks == ["group_min:share"]
    assert no_pt.objective is None and no_pt.predicted == {}
    text = explain(plan)
    line = next(line for line in text.splitlines() if "no_pretrain_reasoning" in line)
    assert "infeasible" in line
    assert "breaks: group_min:share" in text
    for b in plan.baselines:
        if b.feasible:
            assert b.objective is not None and all(p.score >= 0 for p in b.predicted.values())
