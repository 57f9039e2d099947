"""Verification's rules: fresh seeds never overlap the sweep's, the paired rule needs an interval
that excludes 0, and equal allocations are recognised (the whole loop: tests/study)."""

from __future__ import annotations

import pytest
import yaml

from frontload.allocate.design import write_sweep
from frontload.allocate.verify import paired, same_allocation, verify_seeds
from frontload.errors import ConfigError
from frontload.plan import load_plan
from frontload.study.sweep import LoopConfig

CONFIG = {
    "name": "vf",
    "workspace_corpora": ["dldq", "dshq", "dlmq", "dalf"],
    "budgets": {"pretrain": {"tokens": 204800}, "sft": {"tokens": 20480}},
    "trust_region": None,
}


def test_verify_seeds_never_overlap_the_sweeps():
    assert verify_seeds(3, 1000, [0, 1, 2]) == [1000, 1001, 1002]
    with pytest.raises(ConfigError, match=r"overlap the sweep's seeds \[0, 1, 2\] at \[2\]"):
        verify_seeds(3, 2, [0, 1, 2])
    with pytest.raises(ValueError, match="greater than or equal to 3"):
        LoopConfig.model_validate(
            {"name": "x", "curate": "c", "sweep": {"allocate": "a", "pretrain": "p", "sft": "s"}}
            | {"verify": {"seeds": 2}}
        )
    assert (
        LoopConfig.model_validate(
            {"name": "x", "curate": "c", "sweep": {"allocate": "a", "pretrain": "p", "sft": "s"}}
            | {"verify": False}
        ).verify.enabled
        is False
    )


def test_paired_rule_needs_an_interval_that_excludes_zero():
    plan = {1000: 5.00, 1001: 5.01, 1002: 5.02}
    clearly_worse = {1000: 5.50, 1001: 5.52, 1002: 5.49}
    noisy = {1000: 4.9, 1001: 5.2, 1002: 5.0}
    diff, low, high, n, verdict = paired(plan, clearly_worse, 0.95, higher_better=False)
    assert n == 3 and high < 0 and verdict == "better"  # lower bpb than the baseline
    assert paired(plan, noisy, 0.95, higher_better=False)[-1] == "inconclusive"
    assert paired(clearly_worse, plan, 0.95, higher_better=False)[-1] == "worse"
    assert paired({1000: 1.0}, {1000: 2.0}, 0.95, True)[-1] == "inconclusive"  # one seed


def test_same_allocation_within_rounding(corpora_workspace, tmp_path):
    (tmp_path / "allocate.yaml").write_text(yaml.safe_dump(CONFIG))
    sweep, path = write_sweep(tmp_path / "allocate.yaml", 11, tmp_path / "d", corpora_workspace)
    plans = [load_plan(path.parent / p.plan) for p in sweep.points]
    assert same_allocation(plans[0], plans[0])
    assert not any(same_allocation(plans[0], other) for other in plans[1:])
    nudged = plans[1].model_copy(deep=True)
    nudged.phases[0].entries[0].tokens += 1  # rounding: still the same allocation
    assert same_allocation(plans[1], nudged)
