"""Honest error estimates for models fitted on the user's runs: grouped folds, nested selection,
repeated splits and a bootstrap over points.

A design point is what was trained, not a plan name: runs are grouped by the digest of their
realized allocation (`experiments.allocation_digest`) and by the plan they followed, joined
transitively, so two plans that served the same tokens are one point, and every seed of a plan
stays with its plan even when its served tokens differ by a few examples. Folds hold out whole
points, so a model is never scored on an allocation it saw.

Inside each outer training fold an inner grouped cross-validation chooses each model's settings
(nested), so no setting is chosen on the point it is scored on. Scores are out of fold: RMSE over
runs; Spearman, pairwise decision accuracy and regret@1 over points (seeds averaged); and decision
accuracy over the pairs whose true gap exceeds two seed standard errors of their difference.

Each estimate is the mean over repeated splits (fold seeds 0..R-1). Its 90% interval is the
5th-95th percentile, over the R splits x B bootstrap resamples of the points, of the score of
that split's out-of-fold predictions on the resampled points: it carries both the choice of split
and which points happened to be run. Refitting on bootstrap resamples (as `ladder.refits` does
for the model file's intervals) keeps a resampled point's copies in one fold (`Data.resample`):
a copy on each side of a split would score a model on a point it was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from frontload.allocate.experiments import allocation_digest
from frontload.allocate.fit import features, parse_allocation, settings_key
from frontload.allocate.model import Settings
from frontload.errors import InputError

QUANTILES = (5.0, 95.0)
METRICS = ("rmse", "spearman", "decision_accuracy", "decision_accuracy_clear", "regret_at_1")


@dataclass
class Inputs:
    """Allocations a fitted model can predict: experiments rows (`pretrain`, `sft` cells and
    `pretrain_budget`), the pools they read (corpus metadata for the structured features) and the
    corpora, in order, of the share columns."""

    rows: list[dict]
    pools: object
    corpora: list[str]
    cache: dict = field(default_factory=dict)

    @classmethod
    def of(cls, rows: list[dict], pools, corpora: list[str] | None = None) -> Inputs:
        """Inputs of `rows`; share columns follow `corpora` (default: every corpus the rows read)."""
        named = sorted(
            {
                c
                for r in rows
                for col in ("pretrain", "sft")
                for a in parse_allocation(r[col])
                for c in a
            }
        )
        if corpora is None:
            corpora = named
        unknown = sorted(set(named) - set(corpora))
        if unknown:
            raise InputError(
                f"allocation reads corpus '{unknown[0]}', which the model was not fitted on",
                f"the model knows: {', '.join(corpora)}",
            )
        return cls(rows, pools, list(corpora))

    def shares(self) -> np.ndarray:
        """Pretraining then SFT tokens per corpus, over the pretraining budget."""
        if "shares" not in self.cache:
            n = len(self.corpora)
            out = np.zeros((len(self.rows), 2 * n))
            for i, row in enumerate(self.rows):
                budget = float(row["pretrain_budget"])
                for j, col in enumerate(("pretrain", "sft")):
                    for corpus, tokens in parse_allocation(row[col])[0].items():
                        out[i, j * n + self.corpora.index(corpus)] += tokens / budget
            self.cache["shares"] = out
        return self.cache["shares"]

    def pt_share(self) -> np.ndarray:
        """The reasoning share of pretraining (every reasoning corpus together)."""
        return self.shares()[:, : len(self.corpora)].sum(axis=1)

    def structured(self, settings: Settings) -> np.ndarray:
        """The structured model's term values (model.TERMS) under `settings`."""
        key = ("structured", settings_key(settings))
        if key not in self.cache:
            self.cache[key] = features(self.rows, self.pools, settings)
        return self.cache[key]

    def take(self, idx: np.ndarray) -> Inputs:
        """The rows `idx` (repeats allowed), with every cached array taken along."""
        return Inputs(
            [self.rows[i] for i in idx],
            self.pools,
            self.corpora,
            {k: v[idx] for k, v in self.cache.items()},
        )


@dataclass
class Data:
    """One target over runs: its inputs, oriented score (higher is better), the scoring unit
    (`points`) and the fold unit (`groups`) of every run, anchors per point, and seed noise."""

    inputs: Inputs
    y: np.ndarray
    points: np.ndarray  # point index per run (what scores average over)
    groups: np.ndarray  # fold group per run (a bootstrap copy keeps its point's group)
    point_names: list[str]
    anchor: np.ndarray  # per point: a design anchor (study arm, proportional, UniMax, optimum)
    noise: float  # pooled standard deviation across the seeds of a point (nan: one seed each)

    @property
    def n_points(self) -> int:
        return len(self.point_names)

    def resample(self, picked: np.ndarray) -> Data:
        """The points `picked` (with repeats): each copy is its own scoring point, and all copies
        of one original point share its fold group."""
        idx, points, groups = [], [], []
        for copy, p in enumerate(picked):
            runs = np.flatnonzero(self.points == p)
            idx.extend(runs)
            points.extend([copy] * len(runs))
            groups.extend(self.groups[runs])
        idx = np.array(idx)
        return Data(
            self.inputs.take(idx),
            self.y[idx],
            np.array(points),
            np.array(groups),
            [self.point_names[p] for p in picked],
            self.anchor[picked],
            self.noise,
        )


def _components(rows: list[dict]) -> list[int]:
    """Union of runs that followed one plan or trained one allocation: a component per run."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        digest = row.get("allocation_digest") or allocation_digest(
            row["pretrain"], row["sft"], row["pretrain_budget"]
        )
        for key in (("plan", str(row.get("point") or row["run"])), ("digest", digest)):
            if key in seen:
                parent[find(i)] = find(seen[key])
            else:
                seen[key] = i
    return [find(i) for i in range(len(rows))]


def pooled_noise(y: np.ndarray, points: np.ndarray) -> float:
    """Pooled within-point standard deviation (the seed noise); nan without repeated seeds."""
    sums = dof = 0.0
    for p in np.unique(points):
        values = y[points == p]
        if len(values) > 1:
            sums += float(np.sum((values - values.mean()) ** 2))
            dof += len(values) - 1
    return float(np.sqrt(sums / dof)) if dof else float("nan")


def prepare(rows: list[dict], pools, sign: float) -> Data:
    """Rows of one category -> Data (y oriented by `sign`: +1 higher is better, -1 lower).
    A point is named after the first plan (in sorted order) among its runs."""
    component = _components(rows)
    names_of: dict[int, list[str]] = {}
    for c, row in zip(component, rows, strict=True):
        names_of.setdefault(c, []).append(str(row.get("point") or row["run"]))
    first = {c: min(names) for c, names in names_of.items()}
    point_names = sorted(set(first.values()))
    points = np.array([point_names.index(first[c]) for c in component])
    anchor = np.zeros(len(point_names), bool)
    for p, row in zip(points, rows, strict=True):
        anchor[p] |= row.get("kind") == "anchor"
    y = sign * np.array([float(r["score"]) for r in rows])
    return Data(
        Inputs.of(rows, pools),
        y,
        points,
        points.copy(),
        point_names,
        anchor,
        pooled_noise(y, points),
    )


def check_signal(data: Data, metric: str) -> None:
    """A metric that does not move across arms carries no signal: stop rather than fit noise."""
    means = point_means(data.y, data.points, data.n_points)
    if np.ptp(means) <= 1e-9 * max(1.0, float(np.abs(means).max())):
        raise InputError(
            f"metric {metric} is constant across the {len(means)} arms ({abs(means[0]):.4g}): "
            "no signal to fit, stopping",
            "use a likelihood metric (bpb, answer_logprob) or larger proxy runs",
        )


def group_folds(groups: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Test index sets holding out whole groups, k folds (leave-one-group-out when k >= groups)."""
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    order = rng.permutation(unique)
    folds = np.array_split(order, min(k, len(unique)))
    return [np.flatnonzero(np.isin(groups, f)) for f in folds if len(f)]


def point_means(values: np.ndarray, points: np.ndarray, n_points: int) -> np.ndarray:
    return np.array([values[points == p].mean() for p in range(n_points)])


def decision_accuracy(pred: np.ndarray, truth: np.ndarray, min_gap: np.ndarray | None = None):
    """Share of point pairs whose order the predictions get right, over the pairs with different
    true scores (and, with `min_gap`, a true gap above min_gap[i, j]). A predicted tie is a coin
    flip: half right. nan when no pair qualifies."""
    i, j = np.triu_indices(len(truth), k=1)
    gap = truth[i] - truth[j]
    keep = gap != 0
    if min_gap is not None:
        keep &= np.abs(gap) > min_gap[i, j]
    if not keep.any():
        return float("nan")
    agree = np.sign(pred[i] - pred[j])[keep] * np.sign(gap[keep])
    return float(np.mean(np.where(agree == 0, 0.5, agree > 0)))


def clear_gaps(data: Data) -> np.ndarray:
    """Two seed standard errors of each pair's difference: 2 sqrt(s^2/n_i + s^2/n_j) with s the
    pooled seed noise and n the runs of each point (inf without seed noise: no pair is clear)."""
    counts = np.bincount(data.points, minlength=data.n_points).astype(float)
    if not np.isfinite(data.noise):
        return np.full((data.n_points, data.n_points), np.inf)
    var = data.noise**2 / counts
    return 2.0 * np.sqrt(var[:, None] + var[None, :])


def scores(data: Data, oof: np.ndarray, picked: np.ndarray | None = None) -> dict[str, float]:
    """Out-of-fold RMSE (runs), Spearman, decision accuracy (all pairs, and pairs with a clear
    true gap) and regret@1 (the best point's true score minus the true score of the point
    predicted best; a predicted tie at the top averages over the tied points). `picked` scores a
    bootstrap resample of the points (repeats allowed; a point's copies tie, so no pair of
    copies counts)."""
    from scipy.stats import spearmanr

    picked = np.arange(data.n_points) if picked is None else picked
    pred = point_means(oof, data.points, data.n_points)[picked]
    truth = point_means(data.y, data.points, data.n_points)[picked]
    squared = np.bincount(data.points, (oof - data.y) ** 2, minlength=data.n_points)
    counts = np.bincount(data.points, minlength=data.n_points)
    rho = spearmanr(pred, truth).statistic if np.ptp(pred) > 0 else float("nan")
    top = np.flatnonzero(pred >= pred.max() - 1e-12 * max(1.0, abs(pred.max())))
    return {
        "rmse": float(np.sqrt(squared[picked].sum() / counts[picked].sum())),
        "spearman": float(rho),
        "decision_accuracy": decision_accuracy(pred, truth),
        "decision_accuracy_clear": decision_accuracy(
            pred, truth, clear_gaps(data)[np.ix_(picked, picked)]
        ),
        "regret_at_1": float(truth.max() - truth[top].mean()),
    }


def select(rung, data: Data, train: np.ndarray, inner: int = 4, seed: int = 1):
    """The rung's setting with the lowest inner grouped cross-validated squared error on `train`
    only (the rung's only candidate when it has no setting to choose)."""
    candidates = rung.candidates()
    if len(candidates) == 1:
        return candidates[0]
    folds = group_folds(data.groups[train], inner, seed)
    best = None
    for setting in candidates:
        err = 0.0
        for test in folds:
            fit_on = train[np.setdiff1d(np.arange(len(train)), test)]
            predicted = rung.fit(data, fit_on, setting).predict(data.inputs, train[test])
            err += float(np.sum((predicted - data.y[train[test]]) ** 2))
        if best is None or err < best[0]:
            best = (err, setting)
    return best[1]


def nested_cv(
    data: Data, rungs: list, outer: int = 5, inner: int = 4, seed: int = 0
) -> dict[str, dict]:
    """Per rung: out-of-fold predictions, their scores, and the setting each outer fold chose."""
    folds = group_folds(data.groups, outer, seed)
    out = {}
    for rung in rungs:
        oof = np.zeros(len(data.y))
        chosen = []
        for test in folds:
            train = np.setdiff1d(np.arange(len(data.y)), test)
            setting = select(rung, data, train, inner)
            chosen.append(rung.describe(setting))
            oof[test] = rung.fit(data, train, setting).predict(data.inputs, test)
        out[rung.name] = {"oof": oof, "scores": scores(data, oof), "chosen": chosen}
    return out


@dataclass
class Repeated:
    """Scores of every rung: the estimate (mean over fold seeds) and the draws behind the
    intervals (per fold seed, the out-of-fold predictions scored on bootstrap resamples of the
    points; the same seeds and resamples for every rung, so differences between rungs are
    paired)."""

    estimate: dict[str, dict[str, float]]
    draws: dict[str, dict[str, np.ndarray]]
    chosen: dict[str, list]  # the setting each outer fold of the first split chose

    def interval(self, rung: str, metric: str) -> tuple[float, float]:
        values = self.draws[rung][metric]
        values = values[np.isfinite(values)]
        if not len(values):
            return float("nan"), float("nan")
        low, high = np.percentile(values, QUANTILES)
        return float(low), float(high)

    def paired(self, rung: str, other: str, metric: str) -> tuple[float, float, float]:
        """rung minus other: the estimate and the 90% interval of the paired differences."""
        estimate = self.estimate[rung][metric] - self.estimate[other][metric]
        diff = self.draws[rung][metric] - self.draws[other][metric]
        diff = diff[np.isfinite(diff)]
        if not len(diff):
            return estimate, float("nan"), float("nan")
        low, high = np.percentile(diff, QUANTILES)
        return float(estimate), float(low), float(high)


def repeated_cv(
    data: Data,
    rungs: list,
    repeats: int = 20,
    outer: int = 5,
    inner: int = 4,
    seed: int = 0,
    resamples: int = 50,
) -> Repeated:
    """Nested CV with fold seeds seed..seed+repeats-1 (the estimates: mean over the seeds); each
    seed's out-of-fold predictions are scored again on `resamples` bootstrap resamples of the
    points (the intervals: percentiles over repeats x resamples)."""
    names = [r.name for r in rungs]
    on_data = {n: {m: [] for m in METRICS} for n in names}
    draws = {n: {m: [] for m in METRICS} for n in names}
    rng = np.random.default_rng(seed)
    chosen: dict[str, list] = {}
    for r in range(repeats):
        results = nested_cv(data, rungs, outer, inner, seed + r)
        chosen = chosen or {name: result["chosen"] for name, result in results.items()}
        for name, result in results.items():
            for m in METRICS:
                on_data[name][m].append(result["scores"][m])
        for _ in range(resamples):
            picked = _bootstrap_points(rng, data.n_points)
            for name, result in results.items():
                scored = scores(data, result["oof"], picked)
                for m in METRICS:
                    draws[name][m].append(scored[m])
    estimate = {n: {m: _mean(on_data[n][m]) for m in METRICS} for n in names}
    arrays = {n: {m: np.array(v) for m, v in d.items()} for n, d in draws.items()}
    return Repeated(estimate, arrays, chosen)


def _bootstrap_points(rng: np.random.Generator, n_points: int) -> np.ndarray:
    """n points drawn with replacement, redrawn until at least 3 differ (a fold needs them)."""
    while True:
        picked = rng.integers(0, n_points, n_points)
        if len(np.unique(picked)) >= min(3, n_points):
            return picked


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
