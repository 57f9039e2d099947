"""Plan files: round trip, validation of weights, exports for trainers."""

from __future__ import annotations

import json

import pytest

from frontload.errors import ConfigError, InputError
from frontload.plan import (
    PhasePlan,
    Plan,
    PlanEntry,
    interleave_probabilities,
    load_plan,
    megatron_data_path,
    save_plan,
)


def _plan() -> Plan:
    pretrain = PhasePlan(
        name="pretrain",
        budget_tokens=1000,
        general_tokens=800,
        entries=[
            PlanEntry(corpus="dldq", tokens=150, epochs=1.5, weight=0.15),
            PlanEntry(corpus="dshq", tokens=50, epochs=0.5, weight=0.05),
        ],
    )
    sft = PhasePlan(
        name="sft",
        budget_tokens=300,
        general_corpus=None,
        entries=[PlanEntry(corpus="dshq", tokens=200, epochs=2.0, weight=1.0)],
    )
    return Plan(name="demo", phases=[pretrain, sft])


def test_round_trip_writes_yaml_and_json(tmp_path):
    path = save_plan(_plan(), tmp_path / "plans" / "demo.yaml")
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert load_plan(path) == _plan()
    assert load_plan(path.with_suffix(".json")) == _plan()
    assert json.loads(path.with_suffix(".json").read_text())["name"] == "demo"
    assert load_plan(path).phase("sft").entry("dshq").epochs == 2.0
    assert load_plan(path).phase("midtrain") is None


def test_pretrain_weights_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to"):
        PhasePlan(
            name="pretrain",
            budget_tokens=1000,
            general_tokens=700,
            entries=[PlanEntry(corpus="dldq", tokens=150, epochs=1, weight=0.15)],
        )


def test_bad_files_are_clear(tmp_path):
    with pytest.raises(InputError, match="plan not found"):
        load_plan(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nphases:\n  - name: warmup\n    budget_tokens: 1\n")
    with pytest.raises(ConfigError, match="phases.0.name"):
        load_plan(bad)
    with pytest.raises(ConfigError, match="no midtrain phase"):
        _plan().require_phase("midtrain")
    config = tmp_path / "allocate.yaml"
    config.write_text("name: x\nbudgets:\n  pretrain: {tokens: 1000}\n")
    with pytest.raises(InputError, match="is an allocate config, not a plan"):
        load_plan(config)


def test_phase_view_and_exports():
    phase = _plan().phase("pretrain")
    assert phase.corpus_tokens() == [("dldq", 150), ("dshq", 50), ("general", 800)]
    weights = phase.blend_weights()
    assert megatron_data_path(weights, "/t/{}/text".format) == (
        "0.15 /t/dldq/text 0.05 /t/dshq/text 0.8 /t/general/text"
    )
    by_name = interleave_probabilities(weights, {"dldq": 500, "dshq": 5000, "general": 800})
    names, probs = list(by_name), list(by_name.values())
    assert names == ["dldq", "dshq", "general"]
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    # per example: token weight over mean example length (dshq's long examples drawn 10x less)
    assert probs[0] / probs[1] == pytest.approx((0.15 / 500) / (0.05 / 5000))
    assert _plan().phase("sft").blend_weights() == {"dshq": 1.0}
    with pytest.raises(ConfigError, match="no mean example length for general"):
        interleave_probabilities(weights, {"dldq": 500, "dshq": 5000})


def test_explain_scales_marginal_values_to_the_budget():
    """A 20k-token demo budget is priced per 1k tokens, not per (meaningless) extra billion;
    non-binding rows' duals are left out."""
    from frontload.allocate.explain import explain

    def plan(budget: int) -> Plan:
        entries = [PlanEntry(corpus="a", tokens=budget, epochs=1.0, weight=1.0, marginal_value=2e4)]
        return Plan(
            name="p",
            phases=[
                PhasePlan(name="sft", budget_tokens=budget, general_corpus=None, entries=entries)
            ],
            binding_constraints=["budget:sft", "group_max:share"],
            shadow_prices={"budget:sft": 3e4, "group_max:share": 1e4, "budget:pretrain": 7e-4},
        )

    small = explain(plan(20_480))
    assert "value/1k" in small and "20" in small.split("value/1k")[1].splitlines()[1]
    assert "one more 1k SFT tokens would be worth 0.03 points" in small
    assert "relaxing group_max:share by 1k tokens: +0.01 points" in small
    assert "budget:pretrain by" not in small
    large = explain(plan(50_000_000_000))
    assert "one more 1B SFT tokens would be worth 3e+04 points" in large
