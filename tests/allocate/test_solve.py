"""Solver invariants: budgets, epochs, overlap, LP vs conic, brute force, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from frontload.allocate.build import build_problem
from frontload.allocate.config import AllocateConfig
from frontload.allocate.model import load_model
from frontload.allocate.paper import study_corpora
from frontload.allocate.pools import CorpusSpec, pools_from_specs
from frontload.allocate.problem import evaluate, violations
from frontload.allocate.solve import solve_plan
from frontload.errors import ConfigError, SolverError


def _paper(**update) -> AllocateConfig:
    data = {
        "name": "t",
        "corpora": {k: v.model_dump(exclude_none=True) for k, v in study_corpora().items()},
        "budgets": {"pretrain": {"tokens": 1e12}, "sft": {"samples": 4.8e6}},
        "groups": [{"name": "share", "phase": "pretrain", "min": 0.05, "max": 0.4}],
    }
    data.update(update)
    return AllocateConfig.model_validate(data)


def test_study_scale_plan_follows_the_study():
    plan = solve_plan(_paper())
    pt, sft = plan.phase("pretrain"), plan.phase("sft")
    assert sum(
        e.weight for e in pt.entries
    ) + pt.general_tokens / pt.budget_tokens == pytest.approx(1)
    assert pt.total_tokens == pt.budget_tokens
    diverse = sum(e.tokens for e in pt.entries if e.corpus in ("ldq", "lmq"))
    assert diverse > pt.entry("shq").tokens  # diverse data dominates pretraining
    assert sft.entry("shq").weight > 0.8  # high-quality long CoT dominates SFT
    samples = sum(e.tokens / (t / r) for e in sft.entries for t, r in _tpr(e.corpus))
    assert samples <= 4.8e6 * (1 + 1e-5)
    for phase, cap in (("pretrain", 16), ("sft", 8)):
        assert all(e.epochs <= cap + 1e-6 for e in plan.phase(phase).entries)
    assert plan.objective > max(b.objective for b in plan.baselines if b.feasible)
    assert "budget:sft" in plan.binding_constraints and plan.shadow_prices["budget:sft"] > 0


def _tpr(corpus):
    pools = pools_from_specs(study_corpora())
    return [(pools.corpus_tokens[corpus], pools.corpus_records[corpus])]


def test_lp_and_conic_agree():
    conic = solve_plan(_paper(solver="conic"))
    lp = solve_plan(_paper(solver="lp"))
    assert lp.objective == pytest.approx(conic.objective, rel=1e-4)
    assert lp.shadow_prices["budget:sft"] == pytest.approx(
        conic.shadow_prices["budget:sft"], rel=0.05
    )


def test_overlap_counts_reuse_across_corpora_and_phases():
    model = load_model(None)
    config = _paper(groups=[])
    pools = pools_from_specs(config.corpora)
    built = build_problem(config, pools, model)
    x = np.zeros(built.problem.n_x)
    shq_u = 12.6e9 / 1e12
    x[built.xindex[("shq", "pretrain")]] = 10 * shq_u
    x_alias = np.zeros_like(x)
    x_alias[built.xindex[("shq", "pretrain")]] = 5 * shq_u
    # reading lmq reads its shq atom too: repetition of shq grows without naming shq again
    x_alias[built.xindex[("lmq", "pretrain")]] = 5 * shq_u * (348.6 / 12.6)
    _, v1 = evaluate(built.problem, x)
    _, v2 = evaluate(built.problem, x_alias)
    eff = [h for h in built.problem.hypos if h.kind == "eff"]
    shq_atom = next(i for i, a in enumerate(pools.atoms) if "shq" in a.members)
    assert v2[eff[2 * shq_atom].var] == pytest.approx(v1[eff[2 * shq_atom].var], rel=1e-9)
    assert v1[eff[2 * shq_atom].var] < 10 * shq_u  # diminishing returns past one epoch


def test_brute_force_grid_matches_solver():
    specs = {
        "a": CorpusSpec(tokens=2e9, records=2e6, quality=0.5, answer_tokens=600),
        "b": CorpusSpec(tokens=3e8, records=3e4, quality=0.9, answer_tokens=9000),
    }
    config = AllocateConfig(
        corpora=specs,
        budgets={"pretrain": {"tokens": 1e10}, "sft": {"tokens": 6e8}},
        groups=[{"name": "share", "phase": "pretrain", "min": 0.2, "max": 0.2}],
        trust_region=None,
    )
    plan = solve_plan(config)
    built = build_problem(config, pools_from_specs(specs), load_model(None))
    p, up = built.problem, built.problem.upper
    ia, ib = built.xindex[("a", "pretrain")], built.xindex[("b", "pretrain")]
    sa, sb = built.xindex[("a", "sft")], built.xindex[("b", "sft")]

    def search(center, width, n=17):
        best = (-np.inf, None)
        axes = [
            np.clip(np.linspace(c - width[k], c + width[k], n), 0, up[i])
            for k, (c, i) in enumerate(zip(center, (ia, sa, sb), strict=True))
        ]
        for a_pt, a_sft, b_sft in itertools.product(*axes):
            x = np.zeros(p.n_x)
            x[ia], x[ib], x[sa], x[sb] = a_pt, 0.2 - a_pt, a_sft, b_sft
            if violations(p, x):
                continue
            value = evaluate(p, x)[0]
            if value > best[0]:
                best = (value, (a_pt, a_sft, b_sft))
        return best

    value, point = search((0.1, 0.03, 0.03), (0.1, 0.03, 0.03))
    for _ in range(3):
        value, point = search(point, (0.01, 0.003, 0.003))
    assert plan.objective >= value - 1e-6
    assert plan.objective == pytest.approx(value, rel=1e-3)


def test_infeasible_budgets_name_the_conflict():
    config = _paper(
        groups=[{"name": "share", "phase": "pretrain", "min": 0.5, "max": 0.6}],
        max_epochs={"pretrain": 1.0, "sft": 8},
    )
    with pytest.raises(SolverError, match=r"short by .*group_min:share|group_min:share short by"):
        solve_plan(config)


def test_unknown_corpus_and_non_convex_term():
    with pytest.raises(ConfigError, match="unknown corpus 'zzz'"):
        solve_plan(_paper(limits={"zzz": {"max_epochs": {"sft": 1}}}))
    with pytest.raises(ConfigError, match="not concave"):
        solve_plan(_paper(extra_terms=["cp.square(x['shq:sft'])"]))
    with pytest.raises(ConfigError, match="(?s)unknown variable 'shqq:sft'.*shq:sft"):
        solve_plan(_paper(extra_terms=["cp.log(1 + x['shqq:sft'])"]))
    # a term the chosen backend would silently drop is refused instead
    with pytest.raises(ConfigError, match="only solved in conic mode"):
        solve_plan(_paper(extra_terms=["cp.log(1 + x['shq:sft'])"], tie_break="fewest"))


def test_milp_whole_epochs_and_at_most_k():
    config = _paper(
        solver="milp",
        integer_sft_epochs=True,
        max_corpora={"pretrain": 1},
        budgets={"pretrain": {"tokens": 1e12}, "sft": {"tokens": 5e10}},
    )
    plan = solve_plan(config)
    for e in plan.phase("sft").entries:
        assert abs(e.epochs - round(e.epochs)) < 1e-6
    assert sum(e.tokens > 0 for e in plan.phase("pretrain").entries) <= 1


def test_milp_at_least_if_used():
    config = _paper(
        budgets={"pretrain": {"tokens": 1e12}, "sft": {"tokens": 5e10}},
        limits={c: {"at_least_if_used": {"sft": 0.3}} for c in ("ldq", "shq", "lmq", "alf")},
    )
    plan = solve_plan(config)
    for e in plan.phase("sft").entries:
        assert e.tokens == 0 or e.tokens >= 0.3 * 5e10 * (1 - 1e-6)


def test_tie_break_fewest_keeps_objective(capfd):
    free = solve_plan(_paper(solver="lp"))
    fewest = solve_plan(_paper(tie_break="fewest"))
    assert "Highs" not in capfd.readouterr().out  # HiGHS's native debug lines stay out
    assert fewest.objective == pytest.approx(free.objective, rel=1e-4)
    used = lambda plan: sum(e.tokens > 1e3 for ph in plan.phases for e in ph.entries)  # noqa: E731
    assert used(fewest) <= used(free)
    # the second stage fixes which corpora are used, not how much: budgets keep their price
    sft_price = free.shadow_prices["budget:sft"]
    assert sft_price > 0.1
    assert fewest.shadow_prices["budget:sft"] == pytest.approx(sft_price, rel=0.05)


def test_marginal_values_are_the_gradient():
    from frontload.allocate.problem import gradient

    config = _paper(groups=[])
    built = build_problem(config, pools_from_specs(config.corpora), load_model(None))
    x = np.random.default_rng(0).uniform(0.001, 0.05, built.problem.n_x)
    grad = gradient(built.problem, x)
    base = evaluate(built.problem, x)[0]
    for i in range(built.problem.n_x):
        bumped = x.copy()
        bumped[i] += 1e-7
        numeric = (evaluate(built.problem, bumped)[0] - base) / 1e-7
        assert grad[i] == pytest.approx(numeric, rel=1e-3, abs=1e-3)


def test_midtrain_phase_and_reference_tie_break():
    config = _paper(
        budgets={
            "pretrain": {"tokens": 1e12},
            "midtrain": {"tokens": 5e10},
            "sft": {"tokens": 5e10},
        },
        tie_break="reference",
        reference={"pretrain": {"ldq": 0.3}},
    )
    plan = solve_plan(config)
    mid = plan.phase("midtrain")
    assert mid is not None and mid.total_tokens == 5e10
    assert sum(
        e.weight for e in mid.entries
    ) + mid.general_tokens / mid.budget_tokens == pytest.approx(1)
    free = solve_plan(_paper(solver="lp", budgets=config.budgets))
    assert plan.objective == pytest.approx(free.objective, rel=1e-4)


def test_sft_quality_floor_and_fractions_hold():
    config = _paper(
        budgets={"pretrain": {"tokens": 1e12}, "sft": {"tokens": 5e10}},
        sft_quality_floor=0.6,
        limits={"ldq": {"min_fraction": {"pretrain": 0.1}, "phases": ["pretrain"]}},
    )
    plan = solve_plan(config)
    pools = pools_from_specs(config.corpora)
    sft = plan.phase("sft")
    total = sum(e.tokens for e in sft.entries)
    index = sum(e.tokens * pools.corpus_index(e.corpus, "sft_index") for e in sft.entries) / total
    assert index >= 0.6 - 1e-6
    assert plan.phase("pretrain").entry("ldq").weight >= 0.1 - 1e-6
    assert sft.entry("ldq").tokens == 0


def test_out_of_range_limits_and_unknown_reference_corpora_name_the_field():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_epochs.sft is -1"):
        _paper(max_epochs={"pretrain": 16, "sft": -1})
    with pytest.raises(ValidationError, match="limits.shq.max_fraction.sft is 1.5"):
        _paper(limits={"shq": {"max_fraction": {"sft": 1.5}}})
    with pytest.raises(ValidationError, match="groups.share: min 0.5 > max 0.4"):
        _paper(groups=[{"name": "share", "phase": "pretrain", "min": 0.5, "max": 0.4}])
    with pytest.raises(ConfigError, match="reference.sft: unknown corpus 'shqq'"):
        solve_plan(_paper(tie_break="reference", reference={"sft": {"shqq": 1.0}}))
