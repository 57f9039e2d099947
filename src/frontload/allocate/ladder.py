"""`fl allocate fit --workspace`: every rung of the ladder on the same grouped folds, the rung they
rank best, and the model file that solves and predicts with it.

Ranking (CRITERION): the highest mean out-of-fold decision accuracy over the pairs of points whose
true gap exceeds two seed standard errors (a pair inside the seed noise is decided by luck, and a
rule that calls it a tie earns a coin flip there); without repeated seeds, over all pairs. Ties go
to the all-pairs decision accuracy, then the lower regret@1, then the lower RMSE, then the simpler
rung (ladder order). A rung counts as
better or worse than the best only where the 90% interval of the paired difference (same
bootstrap resample, same folds) excludes zero; otherwise the two are not told apart, and the report
says so. The structured model is one rung among the others: when another ranks first, the model
file names it (`rung`) and `fl allocate solve` and `predict_allocations` use it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frontload.allocate.crossval import (
    METRICS,
    Data,
    Repeated,
    check_signal,
    clear_gaps,
    prepare,
    repeated_cv,
    select,
)
from frontload.allocate.design import FREE_PARAMETERS
from frontload.allocate.experiments import higher_is_better
from frontload.allocate.fit import _fitted_range, _identifiable
from frontload.allocate.model import (
    TERMS,
    CategoryFit,
    FitReport,
    Interval,
    LadderReport,
    LadderRow,
    ResponseModel,
    RungFit,
)
from frontload.allocate.rungs import Rung, Structured, ladder
from frontload.errors import InputError

CRITERION = (
    "highest mean out-of-fold decision accuracy on the clear-gap pairs (all pairs without seed "
    "noise); ties: all-pairs decision accuracy, lower regret@1, lower RMSE, simpler rung"
)
LABELS = {
    "rmse": "RMSE",
    "spearman": "Spearman",
    "decision_accuracy": "decision acc",
    "decision_accuracy_clear": "clear-gap acc",
    "regret_at_1": "regret@1",
}
RESAMPLES = 50  # bootstrap resamples of the points per fold seed (scoring only, no refit)


@dataclass
class RunsFit:
    """What `fl allocate fit --workspace` reports: the model file and the ladder behind it."""

    model: ResponseModel
    data: Data
    ladder: LadderReport

    @property
    def noise(self) -> float:
        return self.data.noise


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def rank(repeated: Repeated, rungs: list[Rung]) -> list[str]:
    """Rung names, best first, by CRITERION."""

    def value(number: float, sign: float) -> float:
        return sign * number if math.isfinite(number) else math.inf

    def key(item: tuple[int, Rung]):
        order, rung = item
        est = repeated.estimate[rung.name]
        clear = est["decision_accuracy_clear"]
        primary = clear if math.isfinite(clear) else est["decision_accuracy"]
        return (
            value(primary, -1.0),
            value(est["decision_accuracy"], -1.0),
            value(est["regret_at_1"], 1.0),
            value(est["rmse"], 1.0),
            order,
        )

    return [r.name for _, r in sorted(enumerate(rungs), key=key)]


def _verdicts(report_rows: list[LadderRow], best: str, metric: str) -> list[str]:
    """One line per rung: better/worse than the best on the ranking's accuracy, or not told apart."""
    notes = []
    for row in report_rows:
        if row.rung == best:
            continue
        diff = row.vs_best.get(metric)
        if diff is None or diff.estimate is None or diff.low is None or diff.high is None:
            continue
        if diff.high < 0:
            verdict = f"{best} is better"
        elif diff.low > 0:
            verdict = f"{row.rung} is better"  # possible when the best won on a tie-break
        else:
            verdict = "not told apart (interval includes 0)"
        notes.append(
            f"{row.rung} vs {best}: {LABELS[metric]} {diff.estimate:+.3f} "
            f"[{diff.low:+.3f}, {diff.high:+.3f}]: {verdict}"
        )
    return notes


def run_ladder(
    data: Data,
    metric: str,
    higher: bool,
    rungs: list[Rung],
    repeats: int = 20,
    outer: int = 5,
    inner: int = 4,
    seed: int = 0,
) -> LadderReport:
    """Every rung through `repeats` fold seeds, each scored on bootstrap resamples of the points;
    the ladder report."""
    start = time.perf_counter()
    notes = []
    if not data.anchor.any():
        rungs = [r for r in rungs if r.name != "null_anchor"]
        notes.append("null_anchor left out: no design anchors marked in the table (kind column)")
    repeated = repeated_cv(data, rungs, repeats, outer, inner, seed, RESAMPLES)
    order = rank(repeated, rungs)
    best = order[0]
    rows = []
    for rung in rungs:
        scores, vs_best = {}, {}
        for m in METRICS:
            low, high = repeated.interval(rung.name, m)
            scores[m] = Interval(
                estimate=_finite(repeated.estimate[rung.name][m]),
                low=_finite(low),
                high=_finite(high),
            )
            if rung.name != best:
                est, lo, hi = repeated.paired(rung.name, best, m)
                vs_best[m] = Interval(estimate=_finite(est), low=_finite(lo), high=_finite(hi))
        rows.append(
            LadderRow(
                rung=rung.name,
                title=rung.title,
                solve=rung.solve,
                scores=scores,
                vs_best=vs_best,
                chosen=repeated.chosen[rung.name],
            )
        )
    ranked_on = "decision_accuracy_clear" if math.isfinite(data.noise) else "decision_accuracy"
    gaps = clear_gaps(data)
    truth = np.array([data.y[data.points == p].mean() for p in range(data.n_points)])
    i, j = np.triu_indices(data.n_points, k=1)
    names: dict[int, set[str]] = {}
    for p, row in zip(data.points, data.inputs.rows, strict=True):
        names.setdefault(int(p), set()).add(str(row.get("point") or row["run"]))
    return LadderReport(
        metric=metric,
        higher_is_better=higher,
        runs=len(data.y),
        points=data.n_points,
        merged=[sorted(n) for n in names.values() if len(n) > 1],
        anchors=int(data.anchor.sum()),
        noise=_finite(data.noise),
        pairs=int(np.sum(truth[i] != truth[j])),
        clear_pairs=int(np.sum(np.abs(truth[i] - truth[j]) > gaps[i, j])),
        repeats=repeats,
        resamples=RESAMPLES,
        outer=outer,
        inner=inner,
        seed=seed,
        criterion=CRITERION,
        best=best,
        rows=rows,
        notes=notes + _verdicts(rows, best, ranked_on),
        seconds=round(time.perf_counter() - start, 1),
    )


def refits(rung: Rung, data: Data, draws: int, inner: int, seed: int) -> list:
    """The rung refitted on `draws` bootstrap resamples of the points, its setting re-chosen by
    inner CV on each (a resampled point's copies share one fold)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        picked = rng.integers(0, data.n_points, data.n_points)
        if len(np.unique(picked)) < 3:
            continue
        resampled = data.resample(picked)
        every = np.arange(len(resampled.y))
        out.append(rung.fit(resampled, every, select(rung, resampled, every, inner)))
    return out


def fit_rung(rung: Rung, data: Data, draws: int, inner: int = 4, seed: int = 0) -> RungFit:
    """A rung fitted on every run (its setting chosen by inner CV) with its bootstrap refits."""
    every = np.arange(len(data.y))
    final = rung.fit(data, every, select(rung, data, every, inner))
    return RungFit(
        name=rung.name,
        state=final.state(),
        draws=[d.state() for d in refits(rung, data, draws, inner, seed)],
        corpora=data.inputs.corpora,
    )


def fit_runs(
    rows: list[dict],
    pools,
    metric: str,
    bootstrap_draws: int = 30,
    outer: int = 5,
    inner: int = 4,
    grid: dict | None = None,
    seed: int = 0,
    repeats: int = 20,
) -> RunsFit:
    """The ladder on the objective (`avg`), then the structured model on every category (the
    settings chosen on `avg`) and the best rung on the objective, each with bootstrap refits.
    BLAS runs on one thread: thousands of fits of tiny matrices, where threads only contend (6x
    faster GP fits on 2 busy cores). The limit reaches only libraries already loaded, so the
    GP's (scikit-learn, scipy.optimize) are loaded first."""
    import scipy.optimize  # noqa: F401
    import sklearn.gaussian_process  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _fit_runs(rows, pools, metric, bootstrap_draws, outer, inner, grid, seed, repeats)


def _fit_runs(
    rows: list[dict],
    pools,
    metric: str,
    bootstrap_draws: int,
    outer: int,
    inner: int,
    grid: dict | None,
    seed: int,
    repeats: int,
) -> RunsFit:
    higher = higher_is_better(metric)
    sign = 1.0 if higher else -1.0
    by_cat: dict[str, list[dict]] = {}
    for row in rows:
        by_cat.setdefault(row["category"], []).append(row)
    target = "avg" if "avg" in by_cat else sorted(by_cat)[0]
    data = prepare(by_cat[target], pools, sign)
    if data.n_points < FREE_PARAMETERS:
        raise InputError(
            f"{data.n_points} design points with results: too few for the response model's "
            f"{FREE_PARAMETERS} free parameters",
            f"train at least {FREE_PARAMETERS} points (fl allocate design --runs {FREE_PARAMETERS})",
        )
    check_signal(data, metric)
    rungs = ladder(grid)
    report = run_ladder(data, metric, higher, rungs, repeats, outer, inner, seed)
    every = np.arange(len(data.y))
    structured = Structured(grid)
    settings = select(structured, data, every, inner)
    draws = refits(structured, data, bootstrap_draws, inner, seed)
    fits = {}
    for category, cat_rows in sorted(by_cat.items()):
        cat_data = data if category == target else prepare(cat_rows, pools, sign)
        coef = structured.fit(cat_data, np.arange(len(cat_data.y)), settings).coef
        fits[category] = CategoryFit(
            intercept=float(coef[0]),
            coefs={t: float(v) for t, v in zip(TERMS, coef[1:], strict=True)},
            bootstrap=[[float(v) for v in d.coef] for d in draws] if category == target else [],
            bootstrap_settings=[d.settings for d in draws] if category == target else [],
        )
    rung_fit = None
    if report.best != "structured":
        best = next(r for r in rungs if r.name == report.best)
        rung_fit = fit_rung(best, data, bootstrap_draws, inner, seed)
    rows_of = {r.rung: r for r in report.rows}
    fit_report = FitReport(
        runs=len(data.y),
        loro_rmse={target: rows_of["structured"].scores["rmse"].estimate or float("nan")},
        ranking_accuracy={
            target: rows_of["structured"].scores["decision_accuracy"].estimate or float("nan")
        },
        unidentified=[
            t
            for t, free in zip(TERMS, _identifiable(data.inputs.structured(settings)), strict=True)
            if not free
        ],
        cross_validation={
            r.rung: {m: v.estimate for m, v in r.scores.items() if v.estimate is not None}
            for r in report.rows
        },
    )
    model = ResponseModel(
        settings=settings,
        categories=fits,
        objective={target: 1.0},
        fitted_range=_fitted_range(by_cat[target]),
        fit=fit_report,
        metric="score" if metric == "score" else (metric if higher else f"-{metric}"),
        rung=report.best,
        rung_fit=rung_fit,
        ladder=report,
    )
    return RunsFit(model, data, report)


def _cell(value: Interval, digits: int) -> str:
    if value.estimate is None:
        return "-"
    text = f"{value.estimate:.{digits}g}"
    if value.low is not None and value.high is not None:
        text += f" [{value.low:.{digits}g}, {value.high:.{digits}g}]"
    return text


def format_ladder(report: LadderReport) -> str:
    """The ladder as a table: one row per rung, estimate [90% interval] per score, the best
    rung, and the paired verdicts against it."""
    direction = "higher" if report.higher_is_better else "lower"
    noise = "n/a (one seed per point)" if report.noise is None else f"{report.noise:.4g}"
    lines = [
        f"ladder on {report.metric} ({direction} is better): {report.runs} runs, "
        f"{report.points} points ({len(report.merged)} merged: same allocation), "
        f"{report.anchors} anchors; seed noise (std) {noise}",
        f"out of fold, nested; estimate = mean over {report.repeats} fold seeds x "
        f"{report.outer} folds; [90% interval] over those splits x {report.resamples} "
        f"bootstrap resamples of the points; clear-gap pairs (true gap > 2 seed standard "
        f"errors): {report.clear_pairs} of {report.pairs}",
    ]
    header = f"  {'rung':<18}" + "".join(f"{LABELS[m]:<27}" for m in METRICS)
    lines.append(header.rstrip())
    for row in report.rows:
        mark = "*" if row.rung == report.best else " "
        cells = "".join(f"{_cell(row.scores[m], 3):<27}" for m in METRICS)
        lines.append(f"{mark} {row.rung:<18}{cells}".rstrip())
    lines.append(f"best rung (*): {report.best}, by {report.criterion}")
    lines += [f"  {note}" for note in report.notes]
    return "\n".join(lines)


def write_ladder(report: LadderReport, path: str | Path) -> Path:
    """ladder.json: the report (fields documented in docs/readme/allocate.md) for `fl report`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report.model_dump(mode="json"), indent=2), encoding="utf-8")
    tmp.replace(path)
    return path
