"""The ladder's models, from no fitting at all to a flexible learner, on one interface.

Every rung fits on the training runs of a fold with one setting (chosen by the caller's inner
cross-validation among `candidates()`), and returns a fitted model that predicts any allocation
(`Inputs`) in the oriented units of the target (higher is better) and saves to a small dict
(`state()`, read back by `load`), so the model file can carry it and `fl allocate solve` and
`predict_allocations` can use it.

1. prior: the shipped model (fitted to the study's table) applied unchanged; only a positive
   slope and an intercept map its scores onto the metric, so its order is the prior's own.
2. null_share: the total reasoning share of pretraining, one least-squares line.
   null_anchor: the design's anchors ranked by what they scored: an allocation is predicted by the
   observed mean of its nearest anchor in the training fold (distance over the shares, each
   column scaled by its largest training value).
3. linear: ridge on the shares (RegMix's linear regression).
   ridge_structured: ridge on the structured model's term values (no prior, any sign).
4. structured_free: least squares on the term values, no prior and no sign constraints.
5. structured: the model as shipped: nonnegative coefficients pulled toward the prior.
6. gp: a Gaussian process on the shares (RegMix fits LightGBM on 512 runs; with 12-30 points
   trees of a few leaves barely split, while a GP with four kernel hyperparameters, fitted by
   marginal likelihood inside the fold, stays stable; its kernel nests the linear rung).
7. loglinear: Olmix's log-linear loss law L = E + exp(a + w . shares), E (the irreducible loss)
   fitted in the fold by profiling the training error, the ridge strength chosen by inner CV.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from frontload.allocate.crossval import Data, Inputs
from frontload.allocate.fit import GRID, PRIOR_COEFS, _identifiable, _lsq
from frontload.allocate.model import TERMS, Settings, load_model

RIDGE = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
SCALE = (
    10.0  # targets are standardised to this spread so the prior (percent points) fits any metric
)
OFFSETS = np.geomspace(1e-2, 1e2, 25)  # loglinear: E = min(loss) - range x these


def settings_grid(grid: dict | None = None) -> list[Settings]:
    grid = grid or GRID
    return [Settings(**dict(zip(grid, v, strict=True))) for v in itertools.product(*grid.values())]


def _prior_scores(inputs: Inputs) -> np.ndarray:
    """The shipped model's objective (its own settings and coefficients) per allocation."""
    if "prior" not in inputs.cache:
        model = load_model(None)
        x = inputs.structured(model.settings)
        target = next(iter(model.objective))
        fit = model.categories[target]
        inputs.cache["prior"] = fit.intercept + x @ np.array([fit.coefs[t] for t in TERMS])
    return inputs.cache["prior"]


def _basis(inputs: Inputs, basis: str, settings: Settings | None) -> np.ndarray:
    if basis == "shares":
        return inputs.shares()
    if basis == "pt_share":
        return inputs.pt_share()[:, None]
    if basis == "prior":
        return _prior_scores(inputs)[:, None]
    return inputs.structured(settings)


@dataclass
class Linear:
    """intercept + basis @ coef, the basis being the shares, the pretraining reasoning share, the
    prior's score or the structured term values under `settings`."""

    basis: str
    coef: np.ndarray  # [intercept, *coefficients]
    settings: Settings | None = None

    def predict(self, inputs: Inputs, idx: np.ndarray | None = None) -> np.ndarray:
        x = _basis(inputs, self.basis, self.settings)
        x = x if idx is None else x[idx]
        return self.coef[0] + x @ self.coef[1:]

    def state(self) -> dict[str, Any]:
        out = {"kind": "linear", "basis": self.basis, "coef": [float(c) for c in self.coef]}
        if self.settings is not None:
            out["settings"] = self.settings.model_dump()
        return out


@dataclass
class LogLinear:
    """Oriented score = -(E + exp(a + shares @ w)): Olmix's loss law with irreducible loss E."""

    offset: float
    coef: np.ndarray

    def predict(self, inputs: Inputs, idx: np.ndarray | None = None) -> np.ndarray:
        s = inputs.shares() if idx is None else inputs.shares()[idx]
        return -(self.offset + np.exp(np.clip(self.coef[0] + s @ self.coef[1:], -700, 700)))

    def state(self) -> dict[str, Any]:
        return {"kind": "loglinear", "offset": self.offset, "coef": [float(c) for c in self.coef]}


@dataclass
class Nearest:
    """The observed mean of the nearest anchor (scaled shares); the training mean if none."""

    anchors: np.ndarray  # shares of each anchor point
    values: np.ndarray  # its observed mean
    scale: np.ndarray
    fallback: float

    def predict(self, inputs: Inputs, idx: np.ndarray | None = None) -> np.ndarray:
        s = inputs.shares() if idx is None else inputs.shares()[idx]
        if not len(self.anchors):
            return np.full(len(s), self.fallback)
        d = (((s[:, None, :] - self.anchors[None]) / self.scale) ** 2).sum(axis=2)
        return self.values[np.argmin(d, axis=1)]

    def state(self) -> dict[str, Any]:
        return {
            "kind": "nearest",
            "anchors": self.anchors.tolist(),
            "values": self.values.tolist(),
            "scale": self.scale.tolist(),
            "fallback": self.fallback,
        }


@dataclass
class Process:
    """A Gaussian process on the scaled shares, refitted from its training data and kernel
    hyperparameters (no optimisation on load, so predictions are reproduced exactly)."""

    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray
    theta: np.ndarray

    def regressor(self):
        from sklearn.gaussian_process import GaussianProcessRegressor

        kernel = _kernel().clone_with_theta(self.theta)
        gp = GaussianProcessRegressor(kernel, optimizer=None, normalize_y=True)
        return gp.fit(self.x / self.scale, self.y)

    def predict(self, inputs: Inputs, idx: np.ndarray | None = None) -> np.ndarray:
        s = inputs.shares() if idx is None else inputs.shares()[idx]
        return self.regressor().predict(s / self.scale)

    def state(self) -> dict[str, Any]:
        return {
            "kind": "gp",
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            "scale": self.scale.tolist(),
            "theta": self.theta.tolist(),
        }


def load(state: dict[str, Any]):
    """A fitted rung from its `state()`."""
    kind = state["kind"]
    if kind == "linear":
        settings = Settings(**state["settings"]) if "settings" in state else None
        return Linear(state["basis"], np.array(state["coef"]), settings)
    if kind == "loglinear":
        return LogLinear(float(state["offset"]), np.array(state["coef"]))
    if kind == "nearest":
        scale = np.array(state["scale"])
        anchors = np.array(state["anchors"], dtype=float).reshape(len(state["values"]), len(scale))
        return Nearest(anchors, np.array(state["values"]), scale, state["fallback"])
    if kind == "gp":
        return Process(
            np.array(state["x"]),
            np.array(state["y"]),
            np.array(state["scale"]),
            np.array(state["theta"]),
        )
    raise ValueError(f"unknown fitted rung kind {kind}")


def _ridge(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """[intercept, *coef] of ridge regression (intercept not penalised)."""
    design = np.hstack([np.ones((len(a), 1)), a])
    penalty = alpha * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    gram, moment = design.T @ design + penalty, design.T @ b
    try:
        return np.linalg.solve(gram, moment)
    except np.linalg.LinAlgError:  # a flat column with no penalty: the least-norm solution
        return np.linalg.lstsq(gram, moment, rcond=None)[0]


def _column_scale(x: np.ndarray) -> np.ndarray:
    top = np.abs(x).max(axis=0)
    return np.where(top > 0, top, 1.0)


class Rung:
    """A model family: its name, how the solve uses it, its settings and its fit."""

    name = ""
    title = ""
    solve = "convex"  # convex program, or search over sampled feasible plans

    def candidates(self) -> list:
        return [None]

    def describe(self, setting) -> Any:
        return setting.model_dump() if isinstance(setting, Settings) else setting

    def fit(self, data: Data, train: np.ndarray, setting):
        raise NotImplementedError


class Prior(Rung):
    name, title = "prior", "prior, unfitted"

    def fit(self, data: Data, train: np.ndarray, setting) -> Linear:
        p, y = _prior_scores(data.inputs)[train], data.y[train]
        spread = np.std(p)
        slope = float(np.cov(p, y, bias=True)[0, 1] / spread**2) if spread > 0 else 0.0
        slope = max(slope, 1e-9 * float(np.std(y) or 1.0) / float(spread or 1.0))  # keeps the order
        return Linear("prior", np.array([y.mean() - slope * p.mean(), slope]))


class NullShare(Rung):
    name, title = "null_share", "null: reasoning share of pretraining"

    def fit(self, data: Data, train: np.ndarray, setting) -> Linear:
        return Linear("pt_share", _ridge(data.inputs.pt_share()[train, None], data.y[train], 1e-12))


class NullAnchor(Rung):
    name, title = "null_anchor", "null: nearest design anchor"
    solve = "search"

    def fit(self, data: Data, train: np.ndarray, setting) -> Nearest:
        shares = data.inputs.shares()
        points = [p for p in np.unique(data.points[train]) if data.anchor[p]]
        rows = [train[data.points[train] == p] for p in points]
        anchors = np.array([shares[r].mean(axis=0) for r in rows]).reshape(
            len(rows), shares.shape[1]
        )
        values = np.array([data.y[r].mean() for r in rows])
        return Nearest(anchors, values, _column_scale(shares[train]), float(data.y[train].mean()))


class LinearShares(Rung):
    name, title = "linear", "ridge on the shares (RegMix linear)"

    def candidates(self) -> list:
        return list(RIDGE)

    def fit(self, data: Data, train: np.ndarray, setting) -> Linear:
        return Linear("shares", _ridge(data.inputs.shares()[train], data.y[train], setting))


class _StructuredBase(Rung):
    def __init__(self, grid: dict | None = None) -> None:
        self.grid = grid

    def candidates(self) -> list:
        return settings_grid(self.grid)


class RidgeStructured(_StructuredBase):
    name, title = "ridge_structured", "ridge on the structured terms"

    def candidates(self) -> list:
        return [(s, a) for s in settings_grid(self.grid) for a in RIDGE]

    def describe(self, setting) -> Any:
        return {**setting[0].model_dump(), "ridge": setting[1]}

    def fit(self, data: Data, train: np.ndarray, setting) -> Linear:
        settings, alpha = setting
        x = data.inputs.structured(settings)[train]
        sd = x.std(axis=0)
        sd = np.where(sd > 0, sd, np.inf)  # a flat column gets a zero coefficient
        coef = _ridge(x / sd, data.y[train], alpha * len(train))
        return Linear("structured", np.concatenate([[coef[0]], coef[1:] / sd]), settings)


class FreeStructured(_StructuredBase):
    name, title = "structured_free", "structured terms, no prior, any sign"

    def fit(self, data: Data, train: np.ndarray, setting: Settings) -> Linear:
        x = data.inputs.structured(setting)[train]
        free = _identifiable(x)
        design = np.hstack([np.ones((len(train), 1)), x[:, free]])
        solution = np.linalg.lstsq(design, data.y[train], rcond=None)[0]
        coef = np.zeros(1 + len(TERMS))
        coef[0] = solution[0]
        coef[1:][free] = solution[1:]
        return Linear("structured", coef, setting)


class Structured(_StructuredBase):
    name, title = "structured", "structured model as shipped"

    def fit(self, data: Data, train: np.ndarray, setting: Settings) -> Linear:
        x = data.inputs.structured(setting)[train]
        y = data.y[train]
        mu, sd = y.mean(), y.std() or 1.0
        prior = np.array([PRIOR_COEFS[t] for t in TERMS])
        coef = _lsq(x, (y - mu) / sd * SCALE, prior, _identifiable(x)) * sd / SCALE
        coef[0] += mu
        return Linear("structured", coef, setting)


def _kernel():
    """A linear trend (DotProduct: Bayesian linear regression on the shares, so the GP nests the
    linear rung), a smooth isotropic RBF deviation from it, and white noise for the seeds. Four
    hyperparameters: with 12-30 points a kernel with one length scale per share would overfit."""
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, WhiteKernel

    return (
        DotProduct(1.0, (1e-3, 1e3))
        + ConstantKernel(1.0, (1e-3, 1e3)) * RBF(1.0, (1e-2, 1e2))
        + WhiteKernel(0.1, (1e-6, 1e1))
    )


class GaussianProcess(Rung):
    name, title = "gp", "Gaussian process on the shares"
    solve = "search"

    def fit(self, data: Data, train: np.ndarray, setting) -> Process:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor

        x, y = data.inputs.shares()[train], data.y[train]
        scale = _column_scale(x)
        gp = GaussianProcessRegressor(
            _kernel(), normalize_y=True, n_restarts_optimizer=1, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(x / scale, y)
        return Process(x, y, scale, gp.kernel_.theta)


class LogLinearOffset(Rung):
    name, title = "loglinear", "log-linear with fitted irreducible loss (Olmix)"

    def candidates(self) -> list:
        return list(RIDGE)

    def fit(self, data: Data, train: np.ndarray, setting) -> LogLinear:
        s, loss = data.inputs.shares()[train], -data.y[train]
        spread = float(np.ptp(loss)) or float(abs(loss.min())) or 1.0
        best = None
        for offset in loss.min() - spread * OFFSETS:
            coef = _ridge(s, np.log(loss - offset), setting)
            fitted = offset + np.exp(np.clip(coef[0] + s @ coef[1:], -700, 700))
            err = float(np.sum((fitted - loss) ** 2))
            if best is None or err < best[0]:
                best = (err, float(offset), coef)
        return LogLinear(best[1], best[2])


def ladder(grid: dict | None = None) -> list[Rung]:
    """Every rung, simplest first (the order breaks ties in the ranking)."""
    return [
        Prior(),
        NullShare(),
        NullAnchor(),
        LinearShares(),
        RidgeStructured(grid),
        FreeStructured(grid),
        Structured(grid),
        GaussianProcess(),
        LogLinearOffset(),
    ]
