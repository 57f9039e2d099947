"""`fl report transfer NANO_WS MICRO_WS`: do the nano loop's decisions hold at the second scale?

For the arms both scales trained (the study's arms, the solved plan, the best observed design point,
...), in the transfer's metric and category: the rank agreement of the arms' means, Spearman's rho
and the pairwise decision accuracy (share of arm pairs ordered the same way at both scales), each
with a 95% bootstrap interval (arms resampled, and seeds resampled within every arm at both scales,
2,000 draws, fixed seed); and the study's four findings judged at both scales with the paired-t rule
of `fl report study`, with whether each keeps its verdict. Written to
MICRO_WS/reports/transfer.json and beside the transfer's state (pipeline/<transfer>/transfer.json,
where `fl report html` finds a pipeline's tables); the layout is in docs/interfaces.md.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from frontload.errors import InputError, StageNotReady
from frontload.study.findings import HIGHER_IS_BETTER, judge_findings
from frontload.study.report import eval_values, published_rows
from frontload.workspace import Workspace

DRAWS = 2000
LEVEL = 0.95


def find_folder(ws: Workspace, marker: str, what: str) -> Path:
    """The one pipeline folder of `ws` holding `marker` (a loop's design, a transfer's arms)."""
    root = ws.root / "pipeline"
    found = sorted(p for p in root.glob("*") if (p / marker).is_file()) if root.is_dir() else []
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise StageNotReady(
            f"{ws.root}: expected one {what} (pipeline/*/{marker}), found {names}",
            f"run the {what} in that workspace first",
        )
    return found[0]


def metric_value(ws: Workspace, eval_run: str, metric: str, category: str) -> float | None:
    return eval_values(ws, eval_run).get(metric, {}).get(category)


def nano_arms(
    ws: Workspace, folder: Path, metric: str, category: str
) -> dict[str, dict[int, float]]:
    """The loop's arms: its study arms from models.json (sweep seeds), the verified arms (plan,
    baselines, best observed) from verify.json (fresh seeds, so the best observed point is
    not measured on the runs that chose it)."""
    out: dict[str, dict[int, float]] = {}
    for model in json.loads((folder / "models.json").read_text()):
        if model["stage"] == "sft":
            value = metric_value(ws, model["eval"], metric, category)
            if value is not None:
                out.setdefault(model["model"], {})[int(model["seed"])] = value
    verify = folder / "verify.json"
    if verify.is_file():
        for arm in json.loads(verify.read_text())["arms"]:
            for seed, run in arm.get("runs", {}).items():
                value = metric_value(ws, run, metric, category)
                if value is not None:
                    out.setdefault(arm["arm"], {})[int(seed)] = value
    return out


def micro_arms(
    ws: Workspace, folder: Path, metric: str, category: str
) -> dict[str, dict[int, float]]:
    info = json.loads((folder / "arms.json").read_text())
    out: dict[str, dict[int, float]] = {}
    for label, runs in info["arms"].items():
        for seed, run in runs.items():
            value = metric_value(ws, run, metric, category)
            if value is not None:
                out.setdefault(label, {})[int(seed)] = value
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the ranks (ties get their mean rank)."""
    from scipy.stats import rankdata

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def _accuracy(a: np.ndarray, b: np.ndarray, labels: list[str]) -> float:
    """Share of pairs (of different arms, a nano gap > 0) ordered the same way at both scales."""
    i, j = np.triu_indices(len(a), 1)
    names = np.array(labels)
    keep = (names[i] != names[j]) & (a[i] != a[j])
    if not keep.any():
        return math.nan
    same = np.sign(a[i] - a[j]) == np.sign(b[i] - b[j])
    return float(same[keep].mean())


def _seed_means(per_arm: list[list[float]], rng: np.random.Generator):
    """Each arm's mean, and DRAWS means of its seeds resampled with replacement (arms x DRAWS)."""
    means = np.array([np.mean(values) for values in per_arm])
    draws = np.array(
        [np.asarray(v)[rng.integers(0, len(v), (DRAWS, len(v)))].mean(axis=1) for v in per_arm]
    )
    return means, draws


def rank_agreement(
    nano: dict[str, dict[int, float]], micro: dict[str, dict[int, float]], seed: int = 0
) -> dict[str, Any]:
    """Spearman and pairwise decision accuracy of the shared arms' means, with bootstrap intervals."""
    shared = sorted(set(nano) & set(micro))
    if len(shared) < 3:
        raise InputError(
            f"only {len(shared)} arms evaluated at both scales ({', '.join(shared) or 'none'})",
            "rank agreement needs at least 3 shared arms",
        )

    rng = np.random.default_rng(seed)
    a, nano_draws = _seed_means([list(nano[x].values()) for x in shared], rng)
    b, micro_draws = _seed_means([list(micro[x].values()) for x in shared], rng)
    picks = rng.integers(0, len(shared), (DRAWS, len(shared)))  # arms resampled per draw
    rho_draws, acc_draws = [], []
    for draw, chosen in enumerate(picks):
        ra, rb = nano_draws[chosen, draw], micro_draws[chosen, draw]
        labels = [shared[i] for i in chosen]
        rho_draws.append(_spearman(ra, rb))
        acc_draws.append(_accuracy(ra, rb, labels))
    tail = (1 - LEVEL) / 2

    def interval(draws):
        values = np.array([d for d in draws if not math.isnan(d)])
        if not len(values):
            return None, None
        low, high = np.quantile(values, [tail, 1 - tail])
        return float(low), float(high)

    rho_low, rho_high = interval(rho_draws)
    acc_low, acc_high = interval(acc_draws)
    return {
        "arms": shared,
        "nano": dict(zip(shared, a.tolist(), strict=True)),
        "micro": dict(zip(shared, b.tolist(), strict=True)),
        "nano_seeds": {x: len(nano[x]) for x in shared},
        "micro_seeds": {x: len(micro[x]) for x in shared},
        "spearman": _spearman(a, b),
        "spearman_interval": [rho_low, rho_high],
        "decision_accuracy": _accuracy(a, b, shared),
        "decision_accuracy_interval": [acc_low, acc_high],
        "pairs": len(shared) * (len(shared) - 1) // 2,
        "bootstrap": {"draws": DRAWS, "level": LEVEL, "seed": seed},
    }


def findings_at(ws: Workspace, folder: Path, metric: str, category: str, level: float) -> list:
    models = json.loads((folder / "models.json").read_text())
    return judge_findings(
        models,
        lambda run: eval_values(ws, run),
        published_rows(),
        metric=metric,
        category=category,
        level=level,
    )


def findings_transfer(nano: list[dict], micro: list[dict]) -> list[dict]:
    """Per finding: each scale's paired difference, interval and verdict; kept when equal."""
    out = []
    for small, large in zip(nano, micro, strict=True):
        a = next(r for r in small["results"] if r["primary"])
        b = next(r for r in large["results"] if r["primary"])
        out.append(
            {
                "id": small["id"],
                "title": small["title"],
                "paper": small["paper"],
                "nano": {k: a[k] for k in ("diff", "low", "high", "n", "verdict")},
                "micro": {k: b[k] for k in ("diff", "low", "high", "n", "verdict")},
                "kept": a["verdict"] == b["verdict"],
            }
        )
    return out


def transfer(nano_ws: Workspace, micro_ws: Workspace) -> dict[str, Any]:
    """The transfer between the loop in `nano_ws` and the transfer run in `micro_ws`; also
    written to MICRO_WS/reports/transfer.json and the transfer's pipeline folder."""
    nano_folder = find_folder(nano_ws, "design/sweep.yaml", "loop")
    micro_folder = find_folder(micro_ws, "arms.json", "transfer")
    settings = json.loads((micro_folder / "report.json").read_text())
    metric, category = settings.get("metric", "bpb"), settings.get("category", "math")
    level = settings.get("level", 0.95)
    nano = nano_arms(nano_ws, nano_folder, metric, category)
    micro = micro_arms(micro_ws, micro_folder, metric, category)
    info = json.loads((micro_folder / "arms.json").read_text())
    data = {
        "nano": {"workspace": str(nano_ws.root), "loop": nano_folder.name},
        "micro": {"workspace": str(micro_ws.root), "transfer": micro_folder.name},
        "factor": info.get("factor"),
        "metric": metric,
        "category": category,
        "higher_is_better": HIGHER_IS_BETTER.get(metric, True),
        "ranks": rank_agreement(nano, micro),
        "findings": findings_transfer(
            findings_at(nano_ws, nano_folder, metric, category, level),
            findings_at(micro_ws, micro_folder, metric, category, level),
        ),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    data["rows"], data["note"] = display_rows(data)
    text = json.dumps(data, indent=2)
    micro_ws.reports_dir.mkdir(parents=True, exist_ok=True)
    for out in (micro_ws.reports_dir / "transfer.json", micro_folder / "transfer.json"):
        out.write_text(text)
    return data


def display_rows(data: dict[str, Any]) -> tuple[list[dict], str]:
    """The shared arms as rows and the rank agreement as a note (what `fl report html` shows)."""
    ranks = data["ranks"]
    rows = [
        {
            "arm": arm,
            f"nano {data['metric']}": ranks["nano"][arm],
            f"micro {data['metric']}": ranks["micro"][arm],
            "seeds (nano/micro)": f"{ranks['nano_seeds'][arm]}/{ranks['micro_seeds'][arm]}",
        }
        for arm in ranks["arms"]
    ]
    kept = sum(f["kept"] for f in data["findings"])
    note = (
        f"{len(ranks['arms'])} shared arms: Spearman {ranks['spearman']:.3f} "
        f"{_interval(ranks['spearman_interval'])}, pairwise decision accuracy "
        f"{ranks['decision_accuracy']:.3f} {_interval(ranks['decision_accuracy_interval'])} "
        f"({ranks['bootstrap']['level']:.0%} bootstrap); {kept} of {len(data['findings'])} "
        "findings keep their verdict"
    )
    return rows, note


def _interval(pair: list) -> str:
    return "-" if pair[0] is None else f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def format_transfer(data: dict[str, Any]) -> str:
    """The transfer table: arms at both scales, rank agreement, the findings' verdicts."""
    ranks, metric = data["ranks"], data["metric"]
    lines = [
        f"transfer {data['nano']['loop']} -> {data['micro']['transfer']} "
        f"(tokens x{data['factor']:.3g}), {metric} on {data['category']}:",
        f"  {'arm':<22}{'nano':>10}{'micro':>10}  seeds",
    ]
    for arm in ranks["arms"]:
        lines.append(
            f"  {arm:<22}{ranks['nano'][arm]:>10.4f}{ranks['micro'][arm]:>10.4f}  "
            f"{ranks['nano_seeds'][arm]}/{ranks['micro_seeds'][arm]}"
        )
    pct = f"{ranks['bootstrap']['level']:.0%}"
    lines.append(
        f"rank agreement over {len(ranks['arms'])} shared arms ({ranks['pairs']} pairs), {pct} "
        f"bootstrap intervals:"
    )
    lines.append(
        f"  Spearman {ranks['spearman']:.3f} {_interval(ranks['spearman_interval'])}   "
        f"decision accuracy {ranks['decision_accuracy']:.3f} "
        f"{_interval(ranks['decision_accuracy_interval'])}"
    )
    lines.append("findings (paired over seeds, verdict at each scale):")
    for f in data["findings"]:
        cells = []
        for scale in ("nano", "micro"):
            r = f[scale]
            interval = "" if r["low"] is None else f" [{r['low']:+.3f}, {r['high']:+.3f}]"
            diff = "-" if r["diff"] is None else f"{r['diff']:+.3f}"
            cells.append(f"{scale} {diff}{interval} {r['verdict']}")
        kept = "kept" if f["kept"] else "changed"
        lines.append(f"  {f['id']}. {'; '.join(cells)}  -> {kept}")
    return "\n".join(lines)
