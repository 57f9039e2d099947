"""The shipped model reproduces the study's findings; bad tables are reported clearly."""

from __future__ import annotations

import numpy as np
import pytest

from frontload.allocate.fit import features, fit_model, read_experiments
from frontload.allocate.model import TERMS, load_model
from frontload.allocate.paper import study_corpora
from frontload.errors import InputError

R = 200_000_000_000


def _score(model, pt: str, sft: str, category: str) -> float:
    row = {"run": "x", "pretrain": pt, "sft": sft, "pretrain_budget": "1000000000000"}
    x = features([row], study_corpora(), model.settings)[0]
    fit = model.categories[category]
    return fit.intercept + float(x @ np.array([fit.coefs[t] for t in TERMS]))


def test_shipped_model_reproduces_findings():
    m = load_model(None)
    shq_sft, ldq_sft = "shq:50400000000", "ldq:3360000000"
    assert _score(m, f"ldq:{R}", shq_sft, "avg") > _score(m, "", shq_sft, "avg")
    assert _score(m, f"ldq:{R}", shq_sft, "avg") > _score(m, f"ldq:{R}", ldq_sft, "avg")
    assert _score(m, f"ldq:{R}", "ldq:6720000000", "math") <= _score(m, f"ldq:{R}", ldq_sft, "math")
    assert _score(m, f"lmq:{R}", shq_sft, "avg") > _score(m, f"ldq:{R}", shq_sft, "avg")
    assert m.fit.loro_rmse["avg"] < 5 and m.fit.ranking_accuracy["avg"] > 0.8
    assert all(v >= 0 for f in m.categories.values() for v in f.coefs.values())


def test_fit_on_a_small_grid(tmp_path):
    from frontload.allocate.paper import paper_experiments

    rows = [r for r in paper_experiments() if r["category"] in ("avg", "math")]
    model = fit_model(
        rows,
        study_corpora(),
        bootstrap=3,
        grid={"k_pt": (0.02,), "k_sft": (0.02,), "rstar_sft": (15.4,)},
    )
    assert set(model.categories) == {"avg", "math"}
    assert len(model.categories["avg"].bootstrap) == 3
    assert set(model.fit.spread["avg"]) == set(TERMS)


def test_missing_columns_and_too_few_rows(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("run,score\nx,1\n")
    with pytest.raises(InputError, match="missing columns"):
        read_experiments(bad)
    few = tmp_path / "few.csv"
    few.write_text(
        "run,pretrain,sft,pretrain_budget,category,score\n"
        "a,ldq:100,shq:10,1000,avg,30\nb,,shq:10,1000,avg,20\n"
    )
    with pytest.warns(UserWarning, match="too few"):
        model = fit_model(read_experiments(few), study_corpora())
    assert model.fit.unidentified == list(TERMS)
    # a misspelt corpus is an error even when the table is too small to fit
    typo = tmp_path / "typo.csv"
    typo.write_text(few.read_text().replace("shq:10,1000,avg,20", "shqq:10,1000,avg,20"))
    with pytest.raises(InputError, match="run b: sft: unknown corpus 'shqq'"):
        fit_model(read_experiments(typo), study_corpora())


def test_repeated_corpus_in_a_cell_adds_up_whatever_its_case():
    from frontload.allocate.fit import parse_allocation

    assert parse_allocation("LDQ:1e9+ldq:2e9|shq:1") == [{"ldq": 3e9}, {"shq": 1.0}]


def test_terms_the_table_cannot_see_are_pinned_and_flagged():
    rows = [
        {
            "run": f"r{i}",
            "pretrain": f"ldq:{tokens}",
            "sft": "shq:50400000000",
            "pretrain_budget": "1000000000000",
            "category": "avg",
            "score": str(30 + 10 * np.log1p(tokens / 5e10)),
        }
        for i, tokens in enumerate([0, 2e10, 5e10, 1e11, 2e11, 3e11])
    ]
    grid = {"k_pt": (0.05,), "k_sft": (0.02,), "rstar_sft": (5.0,)}
    model = fit_model(rows, study_corpora(), bootstrap=2, grid=grid)
    assert "sft_value" in model.fit.unidentified and "pt_diversity" not in model.fit.unidentified
    from frontload.allocate.fit import PRIOR_COEFS

    assert model.categories["avg"].coefs["sft_value"] == PRIOR_COEFS["sft_value"]
