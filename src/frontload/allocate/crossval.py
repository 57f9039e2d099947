"""Honest error estimates for a fit on the user's runs, against generic baselines on the same folds.

Folds hold out whole design points (every seed of an allocation together), so a model is never
scored on an allocation it saw. Inside each outer training fold an inner cross-validation chooses
the settings: the structured model's nonlinear settings (k_pt, k_sft, R*_sft), the baselines' ridge
strength. Out-of-fold predictions give RMSE (per run), Spearman and pairwise decision accuracy
(per point, seeds averaged) and regret@1 (how much worse the point predicted best really is than
the best point). A bootstrap resamples design points, re-selects the settings and refits, so the
spread includes the choice of settings. Baselines: linear in the shares (RegMix-style regression),
and Olmix-style log-linear (log of a loss-like quantity linear in the shares).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from frontload.allocate.fit import (
    GRID,
    PRIOR_COEFS,
    _identifiable,
    _lsq,
    features,
    parse_allocation,
)
from frontload.allocate.model import TERMS, Settings
from frontload.errors import InputError

RIDGE = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
SCALE = (
    10.0  # targets are standardised to this spread so the prior (percent points) fits any metric
)
MODELS = ("structured", "linear", "loglinear")


@dataclass
class Data:
    """One target: runs, their design point, oriented score (higher is better) and inputs."""

    runs: list[str]
    points: np.ndarray  # point index per run
    point_names: list[str]
    y: np.ndarray
    shares: np.ndarray  # pretraining and SFT tokens per corpus / pretraining budget
    rows: list[dict]
    pools: object
    cache: dict = field(default_factory=dict)

    def structured(self, settings: Settings) -> np.ndarray:
        key = tuple(settings.model_dump().values())
        if key not in self.cache:
            self.cache[key] = features(self.rows, self.pools, settings)
        return self.cache[key]


def prepare(rows: list[dict], pools, sign: float) -> Data:
    """Rows of one category -> Data (y oriented by `sign`: +1 higher is better, -1 lower)."""
    corpora = sorted(
        {
            c
            for r in rows
            for col in ("pretrain", "sft")
            for a in parse_allocation(r[col])
            for c in a
        }
    )
    shares = np.zeros((len(rows), 2 * len(corpora)))
    for i, row in enumerate(rows):
        budget = float(row["pretrain_budget"])
        for j, col in enumerate(("pretrain", "sft")):
            for corpus, tokens in parse_allocation(row[col])[0].items():
                shares[i, j * len(corpora) + corpora.index(corpus)] = tokens / budget
    names = sorted({str(r.get("point") or r["run"]) for r in rows})
    points = np.array([names.index(str(r.get("point") or r["run"])) for r in rows])
    y = sign * np.array([float(r["score"]) for r in rows])
    return Data([r["run"] for r in rows], points, names, y, shares, rows, pools)


def check_signal(data: Data, metric: str) -> None:
    """A metric that does not move across arms carries no signal: stop rather than fit noise."""
    means = np.array([data.y[data.points == p].mean() for p in range(len(data.point_names))])
    if np.ptp(means) <= 1e-9 * max(1.0, float(np.abs(means).max())):
        raise InputError(
            f"metric {metric} is constant across the {len(means)} arms ({abs(means[0]):.4g}): "
            "no signal to fit, stopping",
            "use a likelihood metric (bpb, answer_logprob) or larger proxy runs",
        )


# Model families: fit(train indices, setting) -> predictor(indices) -> oriented predictions
def _structured(data: Data, train: np.ndarray, settings: Settings):
    x = data.structured(settings)
    mu, sd = data.y[train].mean(), data.y[train].std() or 1.0
    z = (data.y[train] - mu) / sd * SCALE
    prior = np.array([PRIOR_COEFS[t] for t in TERMS])
    free = _identifiable(x[train])
    coef = _lsq(x[train], z, prior, free)
    return lambda idx: mu + (coef[0] + x[idx] @ coef[1:]) * sd / SCALE, coef * sd / SCALE, mu


def _ridge(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    design = np.hstack([np.ones((len(a), 1)), a])
    penalty = alpha * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(design.T @ design + penalty, design.T @ b)


def _linear(data: Data, train: np.ndarray, alpha: float):
    coef = _ridge(data.shares[train], data.y[train], alpha)
    return lambda idx: coef[0] + data.shares[idx] @ coef[1:]


def _loss_ceiling(y: np.ndarray) -> float:
    """A ceiling c with c - y > 0: the score's natural end (0 for log-probs, 1, 100) when above."""
    top = float(y.max())
    for ceiling in (0.0, 1.0, 100.0):
        if top < ceiling:
            return ceiling
    return top + float(y.std() or 1.0)


def _loglinear(data: Data, train: np.ndarray, alpha: float):
    ceiling = _loss_ceiling(data.y)
    loss = np.log(ceiling - data.y[train] + 1e-9)
    coef = _ridge(data.shares[train], loss, alpha)
    return lambda idx: ceiling - np.exp(coef[0] + data.shares[idx] @ coef[1:])


def settings_grid(grid: dict | None = None) -> list[Settings]:
    grid = grid or GRID
    return [Settings(**dict(zip(grid, v, strict=True))) for v in itertools.product(*grid.values())]


def _candidates(family: str, grid: dict | None):
    return settings_grid(grid) if family == "structured" else list(RIDGE)


def _fit(family: str, data: Data, train: np.ndarray, setting):
    if family == "structured":
        return _structured(data, train, setting)[0]
    return (_linear if family == "linear" else _loglinear)(data, train, setting)


def group_folds(points: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Test index sets holding out whole points, k folds (leave-one-point-out when k >= points)."""
    unique = np.unique(points)
    rng = np.random.default_rng(seed)
    order = rng.permutation(unique)
    folds = np.array_split(order, min(k, len(unique)))
    return [np.flatnonzero(np.isin(points, f)) for f in folds if len(f)]


def select(family: str, data: Data, train: np.ndarray, grid: dict | None, k: int = 4):
    """The setting with the lowest inner cross-validated squared error on `train` only."""
    folds = group_folds(data.points[train], k, seed=1)
    best = None
    for setting in _candidates(family, grid):
        err = 0.0
        for test in folds:
            inner = np.setdiff1d(np.arange(len(train)), test)
            predictor = _fit(family, data, train[inner], setting)
            err += float(np.sum((predictor(train[test]) - data.y[train[test]]) ** 2))
        if best is None or err < best[0]:
            best = (err, setting)
    return best[1]


def point_means(data: Data, values: np.ndarray) -> np.ndarray:
    return np.array([values[data.points == p].mean() for p in range(len(data.point_names))])


def decision_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of point pairs (with different true scores) whose order the predictions get right."""
    pairs = [
        (i, j) for i in range(len(truth)) for j in range(i + 1, len(truth)) if truth[i] != truth[j]
    ]
    if not pairs:
        return float("nan")
    return float(
        np.mean([np.sign(pred[i] - pred[j]) == np.sign(truth[i] - truth[j]) for i, j in pairs])
    )


def scores(data: Data, oof: np.ndarray) -> dict[str, float]:
    """Out-of-fold RMSE (runs), Spearman, decision accuracy and regret@1 (points)."""
    from scipy.stats import spearmanr

    pred, truth = point_means(data, oof), point_means(data, data.y)
    rho = spearmanr(pred, truth).statistic if np.ptp(pred) > 0 else float("nan")
    return {
        "rmse": float(np.sqrt(np.mean((oof - data.y) ** 2))),
        "spearman": float(rho),
        "decision_accuracy": decision_accuracy(pred, truth),
        "regret_at_1": float(truth.max() - truth[int(np.argmax(pred))]),
    }


def nested_cv(
    data: Data, outer: int = 5, inner: int = 4, grid: dict | None = None, seed: int = 0
) -> dict[str, dict]:
    """Per family: out-of-fold predictions, scores, and the setting each outer fold chose."""
    folds = group_folds(data.points, outer, seed)
    out = {}
    for family in MODELS:
        oof = np.zeros(len(data.y))
        chosen = []
        for test in folds:
            train = np.setdiff1d(np.arange(len(data.y)), test)
            setting = select(family, data, train, grid, inner)
            chosen.append(setting.model_dump() if isinstance(setting, Settings) else setting)
            oof[test] = _fit(family, data, train, setting)(test)
        out[family] = {"oof": oof, "scores": scores(data, oof), "chosen": chosen}
    return out


def bootstrap(
    data: Data, draws: int, grid: dict | None = None, inner: int = 4, seed: int = 0
) -> list[tuple[Settings, np.ndarray]]:
    """Resample design points, re-select the settings by inner CV, refit: (settings, coef) draws
    with coef = [intercept, *term coefficients] in the oriented metric's units."""
    rng = np.random.default_rng(seed)
    n_points = len(data.point_names)
    out = []
    for _ in range(draws):
        picked = rng.integers(0, n_points, n_points)
        if len(np.unique(picked)) < 3:
            continue
        idx = np.concatenate([np.flatnonzero(data.points == p) for p in picked])
        resampled = Data(
            [data.runs[i] for i in idx],
            np.concatenate([np.full((data.points == p).sum(), k) for k, p in enumerate(picked)]),
            [str(k) for k in range(n_points)],
            data.y[idx],
            data.shares[idx],
            [data.rows[i] for i in idx],
            data.pools,
        )
        for key, x in data.cache.items():
            resampled.cache[key] = x[idx]
        settings = select("structured", resampled, np.arange(len(idx)), grid, inner)
        _, coef, mu = _structured(resampled, np.arange(len(idx)), settings)
        coef = coef.copy()
        coef[0] += mu
        out.append((settings, coef))
    return out


def fit_final(data: Data, grid: dict | None = None, inner: int = 4) -> tuple[Settings, np.ndarray]:
    """Settings by CV on all runs, then coefficients on all runs ([intercept, *coefs], oriented)."""
    settings = select("structured", data, np.arange(len(data.y)), grid, inner)
    _, coef, mu = _structured(data, np.arange(len(data.y)), settings)
    coef = coef.copy()
    coef[0] += mu
    return settings, coef


@dataclass
class RunsFit:
    """What `fl allocate fit --workspace` reports: the model plus the comparison behind it."""

    model: object  # ResponseModel
    data: Data
    cv: dict[str, dict]
    noise: float  # mean standard deviation across seeds of one point (oriented units)


def fit_runs(
    rows: list[dict],
    pools,
    metric: str,
    bootstrap_draws: int = 30,
    outer: int = 5,
    inner: int = 4,
    grid: dict | None = None,
    seed: int = 0,
) -> RunsFit:
    """Nested CV of the three families on the objective (`avg`), then the structured model fitted
    on every category with the settings chosen on `avg`, and a bootstrap that re-selects them."""
    from frontload.allocate.design import FREE_PARAMETERS
    from frontload.allocate.experiments import higher_is_better
    from frontload.allocate.fit import _fitted_range
    from frontload.allocate.model import CategoryFit, FitReport, ResponseModel

    sign = 1.0 if higher_is_better(metric) else -1.0
    by_cat: dict[str, list[dict]] = {}
    for row in rows:
        by_cat.setdefault(row["category"], []).append(row)
    target = "avg" if "avg" in by_cat else sorted(by_cat)[0]
    data = prepare(by_cat[target], pools, sign)
    n_points = len(data.point_names)
    if n_points < FREE_PARAMETERS:
        raise InputError(
            f"{n_points} design points with results: too few for the response model's "
            f"{FREE_PARAMETERS} free parameters",
            f"train at least {FREE_PARAMETERS} points (fl allocate design --runs {FREE_PARAMETERS})",
        )
    check_signal(data, metric)
    cv = nested_cv(data, outer, inner, grid, seed)
    settings, _ = fit_final(data, grid, inner)
    draws = bootstrap(data, bootstrap_draws, grid, inner, seed)
    fits = {}
    for category, cat_rows in sorted(by_cat.items()):
        cat_data = data if category == target else prepare(cat_rows, pools, sign)
        _, coef, mu = _structured(cat_data, np.arange(len(cat_data.y)), settings)
        fits[category] = CategoryFit(
            intercept=float(coef[0] + mu),
            coefs={t: float(v) for t, v in zip(TERMS, coef[1:], strict=True)},
            bootstrap=[[float(v) for v in c] for _, c in draws] if category == target else [],
            bootstrap_settings=[s for s, _ in draws] if category == target else [],
        )
    seeds = [data.y[data.points == p] for p in range(n_points)]
    noise = float(np.mean([s.std(ddof=1) for s in seeds if len(s) > 1] or [float("nan")]))
    report = FitReport(
        runs=len(data.y),
        loro_rmse={target: cv["structured"]["scores"]["rmse"]},
        ranking_accuracy={target: cv["structured"]["scores"]["decision_accuracy"]},
        unidentified=[
            t
            for t, free in zip(TERMS, _identifiable(data.structured(settings)), strict=True)
            if not free
        ],
        cross_validation={family: result["scores"] for family, result in cv.items()},
    )
    model = ResponseModel(
        settings=settings,
        categories=fits,
        objective={target: 1.0},
        fitted_range=_fitted_range(by_cat[target]),
        fit=report,
        metric="score" if metric == "score" else (metric if sign > 0 else f"-{metric}"),
    )
    return RunsFit(model, data, cv, noise)
