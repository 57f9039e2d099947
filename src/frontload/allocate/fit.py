"""Fit the response model to a table of runs: sign-constrained least squares pulled to a prior.

Each row is one run and score category. `pretrain` and `sft` cells are allocations such as
`ldq:2e11+shq:1e10`; alternatives joined by `|` mean the row reports the mean over those runs (the
study's "mean of three" rows). The few nonlinear settings are chosen by leave-one-run-out error.
"""

from __future__ import annotations

import copy
import csv
import itertools
import warnings
from pathlib import Path

import numpy as np

from frontload.allocate.model import (
    TERMS,
    CategoryFit,
    FitReport,
    ResponseModel,
    Settings,
    add_terms,
)
from frontload.allocate.paper import convert_paper_rows
from frontload.allocate.pools import CorpusSpec, Pools, load_pools, pools_from_specs
from frontload.allocate.problem import Problem, affine_value, evaluate
from frontload.config import read_yaml, validate
from frontload.errors import InputError

REQUIRED = ("run", "pretrain", "sft", "pretrain_budget", "category", "score")
PAPER_COLUMNS = ("model", "pt_reasoning", "sft_data", "sft_scale", "stage", "category", "score")
# an experiments table (`fl allocate experiments`): its runs' plans and metric, for the ladder
RUNS_COLUMNS = ("run", "point", "pretrain", "sft", "pretrain_budget", "category", "metric", "score")
PRIOR_COEFS = {
    "pt_diversity": 10.0,
    "pt_quality": 2.0,
    "sft_value": 10.0,
    "synergy": 10.0,
    "consolidation": 1.0,
    "sft_low_quality": 1.0,
    "over_repetition": 1.0,
}
PRIOR_STRENGTH = 0.05  # ridge weight pulling coefficients toward the prior
GRID = {
    "k_pt": (0.02, 0.05, 0.1, 0.2),
    "k_sft": (0.005, 0.01, 0.02, 0.05),
    "rstar_sft": (2.0, 5.0, 15.4),
}


def read_table(path: str | Path) -> tuple[str, list[dict]]:
    """A results CSV and its kind, told apart by its columns: "runs" for an experiments table
    `fl allocate experiments` wrote (RUNS_COLUMNS: the ladder fits it), "study" for the study's
    results table (converted) or a table of post-SFT scores with the REQUIRED columns (the
    study-table fit)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: experiments table not found")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        rows = list(reader)
    if all(c in columns for c in PAPER_COLUMNS):
        return "study", convert_paper_rows(rows)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InputError(
            f"{path}: neither an experiments table nor a study table: missing columns "
            f"{', '.join(missing)}",
            f"an experiments table (fl allocate experiments --out) has {', '.join(RUNS_COLUMNS)}; "
            f"a study table {', '.join(REQUIRED)} (optional: stage), or the study's results.csv",
        )
    for number, row in enumerate(rows, start=2):
        try:
            float(row["score"]), float(row["pretrain_budget"])
            parse_allocation(row["pretrain"]), parse_allocation(row["sft"])
        except ValueError as error:
            raise InputError(f"{path}:{number}: {error}") from error
    if all(c in columns for c in RUNS_COLUMNS):
        metrics = sorted({r["metric"] for r in rows})
        if len(metrics) > 1:
            raise InputError(
                f"{path}: rows on {len(metrics)} metrics ({', '.join(metrics)})",
                "export one metric per table: fl allocate experiments --metric M",
            )
        if not rows:
            raise InputError(f"{path}: no runs in the table", "export it after runs finish")
        return "runs", rows
    return "study", [r for r in rows if r.get("stage", "sft") in ("sft", "")]


def read_experiments(path: str | Path) -> list[dict]:
    """The rows of a results CSV of either kind (`read_table`)."""
    return read_table(path)[1]


def read_corpora(path: str | Path) -> dict[str, CorpusSpec] | Pools:
    """The `corpora:` mapping of a YAML file (an allocate config, or just that key), or the
    exact pools of a pools file (`atoms:`, written by `fl allocate experiments`)."""

    data = read_yaml(path)
    if isinstance(data, dict) and "atoms" in data:
        return load_pools(path)
    corpora = data.get("corpora") if isinstance(data, dict) else None
    if not isinstance(corpora, dict) or not corpora:
        raise InputError(
            f"{path}: no `corpora:` mapping (nor the `atoms:` of a pools file)",
            "describe each corpus of the table by hand",
        )
    return {
        name: validate(CorpusSpec, spec, f"{path}: corpora.{name}")
        for name, spec in corpora.items()
    }


def parse_allocation(cell: str) -> list[dict[str, float]]:
    """`a:1e9+b:2e9|c:3e9` -> [{a: 1e9, b: 2e9}, {c: 3e9}]."""
    out = []
    for alternative in (cell or "").split("|"):
        alloc: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in alternative.split("+"))):
            name, _, tokens = part.partition(":")
            if not tokens:
                raise ValueError(f"'{part}' should be corpus:tokens")
            key = name.strip().lower()
            alloc[key] = alloc.get(key, 0.0) + float(tokens)
        out.append(alloc)
    return out


def _check_corpora(rows: list[dict], specs: dict[str, CorpusSpec] | Pools) -> None:
    """Unknown corpus names are an error even when too few rows fall back to the prior."""
    known = set(specs.corpora) if isinstance(specs, Pools) else set(specs)
    for row in rows:
        for column in ("pretrain", "sft"):
            for alloc in parse_allocation(row[column]):
                unknown = sorted(set(alloc) - known)
                if unknown:
                    raise InputError(
                        f"run {row['run']}: {column}: unknown corpus '{unknown[0]}'",
                        f"known corpora: {', '.join(sorted(known))} (describe others with --corpora)",
                    )


def features(
    rows: list[dict], specs: dict[str, CorpusSpec] | Pools, settings: Settings
) -> np.ndarray:
    """Term values of every row (mean over its alternatives), shape (rows, terms). `specs` are
    corpora given by hand, or the pools read from a workspace (copied: rescaling mutates them)."""
    cache: dict[float, tuple] = {}
    out = np.zeros((len(rows), len(TERMS)))
    for r, row in enumerate(rows):
        budget = float(row["pretrain_budget"])
        if budget not in cache:
            pools = copy.deepcopy(specs) if isinstance(specs, Pools) else pools_from_specs(specs)
            pools.rescale(budget)
            xindex = {
                (c, p): 2 * k + j
                for k, c in enumerate(pools.corpora)
                for j, p in enumerate(("pretrain", "sft"))
            }
            problem = Problem([f"{c}:{p}" for c, p in xindex], [np.inf] * len(xindex))
            cache[budget] = (problem, xindex, add_terms(problem, pools, xindex, settings))
        problem, xindex, feats = cache[budget]
        values = []
        for pt, sft in itertools.product(
            parse_allocation(row["pretrain"]), parse_allocation(row["sft"])
        ):
            x = np.zeros(problem.n_x)
            for phase, alloc in (("pretrain", pt), ("sft", sft)):
                for corpus, tokens in alloc.items():
                    if (corpus, phase) not in xindex:
                        raise InputError(
                            f"run {row['run']}: unknown corpus '{corpus}'",
                            f"known corpora: {', '.join(sorted({c for c, _ in xindex}))}",
                        )
                    x[xindex[(corpus, phase)]] += tokens / budget
            _, v = evaluate(problem, x)
            values.append([affine_value(feats[t], v) for t in TERMS])
        out[r] = np.mean(values, axis=0)
    return out


def _lsq(x: np.ndarray, y: np.ndarray, prior: np.ndarray, free: np.ndarray) -> np.ndarray:
    """min |y - b - X beta|^2 + s |beta - prior|^2 with beta >= 0; pinned terms stay at the prior.

    The free intercept is eliminated by centring (b = mean(y - X beta) at the optimum), which
    leaves a nonnegative least-squares problem on the stacked system [Xc; sqrt(s) I]: the same
    minimiser as a bounded solver, in a fraction of the time (the ladder fits thousands)."""
    from scipy.optimize import nnls

    y_adj = y - x[:, ~free] @ prior[~free]
    xf = x[:, free]
    n = xf.shape[1]
    s = np.sqrt(PRIOR_STRENGTH)
    x_mean, y_mean = xf.mean(axis=0), y_adj.mean()
    a = np.vstack([xf - x_mean, s * np.eye(n)])
    b = np.concatenate([y_adj - y_mean, s * prior[free]])
    coef, _ = nnls(a, b)
    beta = prior.copy()
    beta[free] = coef
    return np.concatenate([[y_mean - x_mean @ coef], beta])


def _identifiable(x: np.ndarray) -> np.ndarray:
    """A term is identifiable when its column is not (almost) a combination of the others.

    Scanning the terms in order, a term is pinned when its column is flat, or when its residual
    on the intercept, the later terms and the earlier free ones is under 1e-3 of its centred norm.
    When every column is either exactly constant or varying, and every varying term's residual on
    all the others is clearly above that, the scan pins exactly the constant ones; one inverse of
    the varying columns' correlation matrix shows it (the common case, asked thousands of times
    by the ladder)."""
    n, k = x.shape
    spread = np.ptp(x, axis=0)
    varying = spread >= 1e-6
    # an exactly constant column adds nothing to the intercept, so it drops out of every test
    if np.all(varying | (spread == 0)) and n > varying.sum() > 0:
        centred = x[:, varying] - x[:, varying].mean(axis=0)
        unit = centred / np.linalg.norm(centred, axis=0)
        try:
            with np.errstate(invalid="ignore", divide="ignore"):  # singular: the scan decides
                relative = 1.0 / np.sqrt(np.diag(np.linalg.inv(unit.T @ unit)))
        except np.linalg.LinAlgError:
            relative = np.zeros(int(varying.sum()))
        if np.all(relative > 2e-3):  # residual / centred norm, with a margin over 1e-3
            return varying.copy()
    free = np.ones(k, bool)
    for j in range(k):
        col = x[:, j]
        if np.ptp(col) < 1e-6:
            free[j] = False
            continue
        others = np.column_stack(
            [np.ones(n)] + [x[:, i] for i in range(k) if i != j and (i > j or free[i])]
        )
        coef, *_ = np.linalg.lstsq(others, col, rcond=None)
        if np.linalg.norm(col - others @ coef) < 1e-3 * np.linalg.norm(col - col.mean()):
            free[j] = False
    return free


def _loro(x: np.ndarray, y: np.ndarray, prior: np.ndarray, free: np.ndarray) -> np.ndarray:
    preds = np.zeros(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        coef = _lsq(x[keep], y[keep], prior, free)
        preds[i] = coef[0] + x[i] @ coef[1:]
    return preds


def _ranking(pred: np.ndarray, y: np.ndarray) -> float:
    pairs = [(i, j) for i in range(len(y)) for j in range(i + 1, len(y)) if y[i] != y[j]]
    if not pairs:
        return 1.0
    return float(np.mean([np.sign(pred[i] - pred[j]) == np.sign(y[i] - y[j]) for i, j in pairs]))


def settings_key(settings: Settings) -> tuple[float, ...]:
    """Settings as a hashable key (feature caches)."""
    return tuple(settings.model_dump().values())


def _settings_grid(grid: dict[str, tuple]) -> list[Settings]:
    return [Settings(**dict(zip(grid, v, strict=True))) for v in itertools.product(*grid.values())]


def _selection_error(x: np.ndarray, rows: list[dict], prior: np.ndarray) -> float:
    """The settings criterion: leave-one-run-out mean squared error, summed over categories."""
    free = _identifiable(x)
    err = 0.0
    for cat in sorted({r["category"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["category"] == cat]
        y = np.array([float(rows[i]["score"]) for i in idx])
        err += float(np.mean((_loro(x[idx], y, prior, free) - y) ** 2))
    return err


def choose_settings(
    rows: list[dict], specs, grid: dict[str, tuple], cache: dict | None = None
) -> tuple[Settings, np.ndarray, np.ndarray]:
    """The settings with the lowest leave-one-run-out error: (settings, features, free terms).
    `cache` maps `settings_key`s to the features of `rows` (computed when missing)."""
    prior = np.array([PRIOR_COEFS[t] for t in TERMS])
    best = None
    for settings in _settings_grid(grid):
        key = settings_key(settings)
        x = cache[key] if cache and key in cache else features(rows, specs, settings)
        err = _selection_error(x, rows, prior)
        if best is None or err < best[0]:
            best = (err, settings, x)
    _, settings, x = best
    return settings, x, _identifiable(x)


def nested_loro(
    rows: list[dict], specs: dict[str, CorpusSpec], grid: dict[str, tuple] | None = None
) -> dict[str, float]:
    """Held-out RMSE per category with nothing chosen on the held-out run: each run in turn is
    left out of every category, the settings are re-chosen by leave-one-run-out on the others,
    the terms the others identify are fitted, and the run is predicted."""
    grid = grid or GRID
    _check_corpora(rows, specs)
    prior = np.array([PRIOR_COEFS[t] for t in TERMS])
    every = {settings_key(s): (s, features(rows, specs, s)) for s in _settings_grid(grid)}
    errors: dict[str, list[float]] = {c: [] for c in sorted({r["category"] for r in rows})}
    for held in sorted({r["run"] for r in rows}):
        train = [i for i, r in enumerate(rows) if r["run"] != held]
        subset = [rows[i] for i in train]
        cache = {key: x[train] for key, (_, x) in every.items()}
        settings, _, free = choose_settings(subset, specs, grid, cache)
        x = every[settings_key(settings)][1]
        for cat in errors:
            fit_idx = [i for i in train if rows[i]["category"] == cat]
            y = np.array([float(rows[i]["score"]) for i in fit_idx])
            coef = _lsq(x[fit_idx], y, prior, free)
            for i, row in enumerate(rows):
                if row["run"] == held and row["category"] == cat:
                    errors[cat].append(coef[0] + x[i] @ coef[1:] - float(row["score"]))
    return {c: float(np.sqrt(np.mean(np.square(e)))) for c, e in errors.items() if e}


def fit_model(
    rows: list[dict],
    specs: dict[str, CorpusSpec],
    bootstrap: int = 50,
    seed: int = 0,
    grid: dict[str, tuple] | None = None,
    nested: bool = True,
) -> ResponseModel:
    """Fit every category; settings by leave-one-run-out; too few rows falls back to the prior.
    `nested` also measures the held-out error with the settings re-chosen in each fold."""
    grid = grid or GRID
    _check_corpora(rows, specs)
    categories = sorted({r["category"] for r in rows})
    prior = np.array([PRIOR_COEFS[t] for t in TERMS])
    report = FitReport()
    by_cat = {c: [r for r in rows if r["category"] == c] for c in categories}
    if not rows or min(len(v) for v in by_cat.values()) < 4:
        least = min((len(v) for v in by_cat.values()), default=0)
        message = (
            f"only {len(rows)} post-SFT rows ({least} in the smallest category, 4 needed): "
            "too few to fit, using the prior coefficients"
        )
        warnings.warn(message, stacklevel=2)
        report.warnings.append(message)
        report.unidentified = list(TERMS)
        fits = {
            c: CategoryFit(
                intercept=float(np.mean([float(r["score"]) for r in v])) if v else 0.0,
                coefs=dict(PRIOR_COEFS),
            )
            for c, v in (by_cat or {"avg": []}).items()
        }
        return ResponseModel(
            categories=fits,
            objective=_objective(fits),
            fitted_range=_fitted_range(rows)
            if rows
            else ResponseModel.model_fields["fitted_range"].get_default(call_default_factory=True),
            fit=report,
        )
    settings, x, free = choose_settings(rows, specs, grid)
    report.runs = len(next(iter(by_cat.values())))
    if nested:
        report.nested_rmse = nested_loro(rows, specs, grid)
    report.unidentified = [t for t, f in zip(TERMS, free, strict=True) if not f]
    rng = np.random.default_rng(seed)
    fits = {}
    for cat, cat_rows in by_cat.items():
        idx = [i for i, r in enumerate(rows) if r["category"] == cat]
        xc, y = x[idx], np.array([float(r["score"]) for r in cat_rows])
        coef = _lsq(xc, y, prior, free)
        loro = _loro(xc, y, prior, free)
        report.loro_rmse[cat] = float(np.sqrt(np.mean((loro - y) ** 2)))
        report.ranking_accuracy[cat] = _ranking(loro, y)
        draws = [coef]
        for _ in range(bootstrap):
            pick = rng.integers(0, len(y), len(y))
            draws.append(_lsq(xc[pick], y[pick], prior, free))
        draws = np.array(draws)
        report.spread[cat] = {t: float(s) for t, s in zip(TERMS, draws[:, 1:].std(0), strict=True)}
        fits[cat] = CategoryFit(
            intercept=float(coef[0]),
            coefs={t: float(v) for t, v in zip(TERMS, coef[1:], strict=True)},
            bootstrap=[[float(v) for v in d] for d in draws[1:]],
        )
    return ResponseModel(
        settings=settings,
        categories=fits,
        objective=_objective(fits),
        fitted_range=_fitted_range(rows),
        fit=report,
    )


def _fitted_range(rows: list[dict]) -> dict[str, float]:
    """Largest pretraining reasoning share and SFT tokens (x pretraining budget) in the table."""
    share = sft = 0.0
    for row in rows:
        budget = float(row["pretrain_budget"])
        share = max([share] + [sum(a.values()) / budget for a in parse_allocation(row["pretrain"])])
        sft = max([sft] + [sum(a.values()) / budget for a in parse_allocation(row["sft"])])
    return {"pt_reasoning_share": share, "sft_tokens": sft}


def _objective(fits: dict) -> dict[str, float]:
    return {"avg": 1.0} if "avg" in fits else {c: 1.0 / len(fits) for c in fits}
