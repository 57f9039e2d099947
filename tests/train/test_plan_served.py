"""A solved plan is what pretraining serves: each corpus within one sequence of the plan's tokens per
phase (general corpus included), recorded in served.jsonl with a copy of the plan and its hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from frontload.errors import ConfigError
from frontload.train.pretrain import pretrain
from frontload.train.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SEQ, BATCH = 64, 512


def plan_recipe(**changes):
    """recipes/tiny/pretrain_plan.yaml (no blend of its own), shortened for a test."""
    recipe = load_recipe(RECIPES / "tiny" / "pretrain_plan.yaml")
    data = recipe.data.model_copy(update={"validation_tokens": 512})
    base = {"seq_len": SEQ, "global_batch_tokens": BATCH, "micro_batch_size": 4, "data": data}
    return recipe.model_copy(update={**base, **changes})


def solve_tiny_plan(workspace, pretrain_tokens: int, midtrain_tokens: int | None = None):
    """Solve an allocation over the workspace's dldq token dataset (given by hand)."""
    from frontload.allocate.config import AllocateConfig
    from frontload.allocate.solve import solve_plan
    from frontload.data.shards import TokenDataset
    from frontload.plan import save_plan

    dldq = TokenDataset.open(workspace.tokens_dir / "dldq")
    budgets = {"pretrain": {"tokens": pretrain_tokens}}
    if midtrain_tokens:
        budgets["midtrain"] = {"tokens": midtrain_tokens}
    config = AllocateConfig.model_validate(
        {
            "name": "tiny",
            "corpora": {"dldq": {"tokens": dldq.num_tokens, "records": dldq.num_documents}},
            "budgets": budgets,
            "groups": [{"name": "share", "phase": "pretrain", "min": 0.3, "max": 0.45}],
            "trust_region": None,
        }
    )
    plan = solve_plan(config)
    save_plan(plan, workspace.plans_dir / "tiny.yaml")
    return plan


def test_pretraining_serves_the_plan_within_one_sequence(token_workspace):
    plan = solve_tiny_plan(token_workspace, BATCH * 8, BATCH * 4)
    share = plan.require_phase("pretrain").entry("dldq").weight
    assert 0.3 - 1e-6 <= share <= 0.45 + 1e-6
    run = pretrain(plan_recipe(), token_workspace, plan=plan)

    served = [json.loads(line) for line in (run / "served.jsonl").read_text().splitlines()]
    assert {(r["phase"], r["corpus"]) for r in served} == {
        (p, c) for p in ("pretrain", "midtrain") for c in ("dldq", "general")
    }
    for row in served:
        phase = plan.require_phase(row["phase"])
        entry = phase.entry(row["corpus"])
        planned = entry.tokens if entry else phase.general_tokens
        assert abs(row["tokens"] - planned) < SEQ, (row, planned)
        assert row["stage"] == "pretrain" and row["run"] == "tiny-plan" and row["plan"] == "tiny"
        assert row["examples"] > 0 and row["epochs"] > 0
    assert sum(r["tokens"] for r in served) == BATCH * 12  # the whole budget, both phases

    copy = (run / "plan.yaml").read_bytes()
    digest = (run / "plan.sha256").read_text().strip()
    assert hashlib.sha256(copy).hexdigest() == digest
    assert all(r["plan_sha256"] == digest for r in served)
    from frontload.plan import load_plan

    assert load_plan(run / "plan.yaml") == plan

    from frontload.catalog import Catalog

    with Catalog(token_workspace) as catalog:
        catalog.refresh()
        table = catalog.query(
            "SELECT phase, sum(tokens) AS t FROM train_blend WHERE run = 'tiny-plan' "
            "GROUP BY phase ORDER BY phase"
        )
    assert table.to_pylist() == [
        {"phase": "midtrain", "t": BATCH * 4},
        {"phase": "pretrain", "t": BATCH * 8},
    ]


def test_a_recipe_blend_that_contradicts_the_plan_is_an_error(token_workspace):
    plan = solve_tiny_plan(token_workspace, BATCH * 8)
    staged = load_recipe(RECIPES / "tiny" / "pretrain_ldq.yaml")
    with pytest.raises(ConfigError) as error:
        pretrain(staged.model_copy(update={"total_tokens": BATCH * 8}), token_workspace, plan=plan)
    message = str(error.value)
    assert "tiny-ldq" in message and "plan tiny" in message
    assert "data.reasoning" in message and "data.phases" in message
    with pytest.raises(ConfigError, match="total_tokens: 1,024 .*the plan trains 4,096"):
        pretrain(plan_recipe(total_tokens=BATCH * 2), token_workspace, plan=plan)


def test_budgets_that_are_not_whole_batches_are_split_exactly(token_workspace):
    """Phase budgets off the global batch: the midtrain phase starts inside a global batch, each
    phase serves its budget within one sequence, and each corpus its plan tokens within one
    sequence of its share (the budgets add up to whole batches, so the run trains all of them)."""
    plan = solve_tiny_plan(token_workspace, BATCH * 8 + 100, BATCH * 4 - 100)
    run = pretrain(plan_recipe(), token_workspace, plan=plan)
    served = [json.loads(line) for line in (run / "served.jsonl").read_text().splitlines()]
    assert sum(r["tokens"] for r in served) == BATCH * 12
    for name in ("pretrain", "midtrain"):
        phase = plan.require_phase(name)
        rows = [r for r in served if r["phase"] == name]
        assert abs(sum(r["tokens"] for r in rows) - phase.budget_tokens) <= SEQ / 2
        for row in rows:
            entry = phase.entry(row["corpus"])
            planned = entry.tokens if entry else phase.general_tokens
            assert abs(row["tokens"] - planned) < 1.5 * SEQ, (row, planned)


def test_a_plan_off_whole_batches_trains_the_nearest_whole_number(token_workspace):
    from frontload.train.phases import plan_phases, run_steps

    plan = solve_tiny_plan(token_workspace, BATCH * 8 + 300)
    recipe = plan_recipe()
    assert run_steps(recipe, plan) == 9  # 8.59 global batches
    (phase,) = plan_phases(recipe, 9, plan)
    assert (phase.start, phase.end) == (0, 9 * BATCH // SEQ)
    assert sum(phase.tokens.values()) == BATCH * 8 + 300  # the plan's tokens set the shares


def test_runs_without_a_plan_record_what_they_served(token_workspace):
    recipe = load_recipe(RECIPES / "tiny" / "pretrain_ldq.yaml")
    data = recipe.data.model_copy(update={"validation_tokens": 512})
    recipe = recipe.model_copy(
        update={"seq_len": SEQ, "global_batch_tokens": BATCH, "total_tokens": BATCH * 10}
    )
    recipe = recipe.model_copy(update={"data": data})
    run = pretrain(recipe, token_workspace)
    served = {
        r["corpus"]: r for r in map(json.loads, (run / "served.jsonl").read_text().splitlines())
    }
    # 60% general only (6 steps), then 80/20: 4 steps x 8 sequences, 20% dldq.
    assert served["dldq"]["tokens"] == pytest.approx(0.2 * 4 * BATCH, abs=SEQ)
    assert served["general"]["tokens"] + served["dldq"]["tokens"] == BATCH * 10
    assert {r["phase"] for r in served.values()} == {"pretrain"}
    assert served["dldq"]["plan"] is None and not (run / "plan.yaml").exists()


@pytest.mark.parametrize("study_dir", ["tiny", "nano"])
def test_the_study_plan_arm_trains_the_plan_scaled_to_its_budget(study_dir):
    """The tiny and nano studies' M_plan arm: pretrain_plan.yaml with the arms' token budget
    trains the plan's shares (scaled explicitly, noted in the plan the run keeps)."""
    import yaml

    from frontload.plan import PhasePlan, Plan, PlanEntry, scaled_plan
    from frontload.train.phases import plan_phases, plan_tokens

    study = yaml.safe_load((RECIPES / study_dir / "study.yaml").read_text())
    arm = next(a for a in study["arms"] if a.get("use_plan"))
    recipe = load_recipe(RECIPES / study_dir / arm["pretrain"])
    recipe = recipe.model_copy(update=study.get("pretrain_overrides", {}))
    entries = [
        PlanEntry(corpus="dldq", tokens=51200, epochs=2.0, weight=0.25),
        PlanEntry(corpus="dshq", tokens=30720, epochs=1.0, weight=0.15),
    ]
    phase = PhasePlan(name="pretrain", budget_tokens=204800, general_tokens=122880, entries=entries)
    plan = Plan(name="tiny", phases=[phase])
    budget = recipe.total_tokens
    with pytest.raises(ConfigError, match=f"total_tokens: {budget:,}"):
        plan_tokens(recipe, plan)
    scaled = scaled_plan(plan, budget)
    assert plan_tokens(recipe, scaled) == budget
    assert f"scaled from 204,800 to {budget:,}" in scaled.notes[-1]
    (only,) = plan_phases(recipe, recipe.total_steps(budget), scaled)
    assert only.weights == pytest.approx({"dldq": 0.25, "dshq": 0.15, "general": 0.6}, abs=1e-3)


def test_served_counts_survive_a_resume_across_phases(token_workspace):
    """The data state carries each finished phase's counts, so a resumed run reports the same."""
    from frontload.train.phases import StagedData, plan_phases

    plan = solve_tiny_plan(token_workspace, BATCH * 4, BATCH * 2)
    recipe = plan_recipe()
    phases = plan_phases(recipe, 6, plan)

    def staged():
        return StagedData(
            phases, token_workspace, seq_len=SEQ, seed=0, rank=0, world_size=1, tokenizer_hash=None
        )

    rows = BATCH // SEQ
    whole = staged()
    for step in range(6):
        whole.batch(step, rows)
    first = staged()
    for step in range(5):  # into the midtrain phase
        first.batch(step, rows)
    resumed = staged()
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    resumed.batch(5, rows)
    assert resumed.served() == whole.served()
    assert [p["phase"] for p in whole.served()] == ["pretrain", "midtrain"]


def test_cli_takes_a_plan_name_and_refuses_a_contradicting_recipe(token_workspace, tmp_path):
    from typer.testing import CliRunner

    from frontload.cli import app
    from frontload.config import dump_yaml
    from frontload.train.phases import run_recipe

    solve_tiny_plan(token_workspace, BATCH * 4)
    runner = CliRunner()
    ws = ["--workspace", str(token_workspace.root)]
    staged = runner.invoke(
        app,
        ["train", "pretrain", str(RECIPES / "tiny" / "pretrain_ldq.yaml"), "--plan", "tiny", *ws],
    )
    assert isinstance(staged.exception, ConfigError)
    assert "contradicts plan tiny" in str(staged.exception)
    assert not (token_workspace.runs_dir / "tiny-ldq").exists()  # refused before any training
    recipe = tmp_path / "plan.yaml"
    dump_yaml(run_recipe(plan_recipe(), "tiny"), recipe)  # a full dump, as a run folder keeps it
    result = runner.invoke(app, ["train", "pretrain", str(recipe), "--plan", "tiny", *ws])
    assert result.exit_code == 0, result.output
    run = token_workspace.runs_dir / "tiny-plan"
    served = (run / "served.jsonl").read_text().splitlines()
    assert sum(json.loads(row)["tokens"] for row in served) == BATCH * 4
    kept = (run / "recipe.yaml").read_text()
    assert "reasoning" not in kept  # the run's recipe shows no blend of its own: plan.yaml is it
    again = runner.invoke(
        app, ["train", "pretrain", str(run / "recipe.yaml"), "--plan", "tiny", *ws]
    )
    assert "already has checkpoints" in str(again.exception)  # it parses and agrees with the plan


def test_a_recipe_that_says_no_reasoning_contradicts_a_plan_with_reasoning():
    """pretrain_base.yaml says `reasoning: []`: with a plan that puts reasoning into pretraining,
    training the plan under that recipe's name would be a silent override, so it is an error."""
    from frontload.plan import PhasePlan, Plan, PlanEntry
    from frontload.train.phases import plan_tokens

    entry = PlanEntry(corpus="dldq", tokens=BATCH * 2, epochs=1.0, weight=0.25)
    budget = {"name": "pretrain", "budget_tokens": BATCH * 8}
    phase = PhasePlan(**budget, general_tokens=BATCH * 6, entries=[entry])
    plan = Plan(name="tiny", phases=[phase])
    base = load_recipe(RECIPES / "tiny" / "pretrain_base.yaml")
    base = base.model_copy(update={"total_tokens": None, "global_batch_tokens": BATCH})
    with pytest.raises(ConfigError, match=r"tiny-base contradicts plan tiny: data.reasoning: \[\]"):
        plan_tokens(base, plan)
    no_reasoning = Plan(name="none", phases=[PhasePlan(**budget, general_tokens=BATCH * 8)])
    assert plan_tokens(base, no_reasoning) == BATCH * 8  # a plan without reasoning agrees
    assert plan_tokens(plan_recipe(global_batch_tokens=BATCH), plan) == BATCH * 8


def test_a_run_resumes_only_on_the_plan_it_started_with(tmp_path):
    from frontload.plan import PhasePlan, Plan
    from frontload.train.served import check_resume_plan, record_plan

    phase = {"name": "pretrain", "budget_tokens": BATCH * 8, "general_tokens": BATCH * 8}
    plan = Plan(name="tiny", phases=[PhasePlan(**phase)])
    other = plan.model_copy(update={"name": "other"})
    run = tmp_path / "runs" / "r"
    check_resume_plan(run, None)  # no plan before, none now
    record_plan(run, plan)
    check_resume_plan(run, plan)
    with pytest.raises(ConfigError, match="started with plan .* resumed with plan other"):
        check_resume_plan(run, other)
    with pytest.raises(ConfigError, match=r"(?s)resumed with no plan.*--plan .*plan\.yaml"):
        check_resume_plan(run, None)
    record_plan(run, None)  # a fresh run without a plan drops the old copy
    assert not (run / "plan.yaml").exists() and not (run / "plan.sha256").exists()
    with pytest.raises(ConfigError, match="started with no plan"):
        check_resume_plan(run, plan)
