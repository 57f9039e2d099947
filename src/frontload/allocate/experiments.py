"""The experiments table, straight from the catalog: realized allocations joined to evaluations.

A row is one trained model (its last run: SFT when there is one), one score category and one metric.
Its allocation is what the trainers REALLY served (`train_blend`, i.e. runs/*/served.jsonl): the
pretraining tokens per reasoning corpus (the general corpus only fills the budget), and the SFT
tokens per corpus. An SFT run finds its pretraining run through its summary's `model` path
(runs/<pretrain run>/hf). The score is the evaluation metric (summary.json of evals/*), averaged
over the tasks of each category, with `avg` the mean of the category means. No CSV by hand.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from frontload.errors import InputError, StageNotReady
from frontload.workspace import Catalog, Workspace

LOWER_IS_BETTER = ("bpb", "loss", "perplexity", "ppl")
COLUMNS = (
    "run",
    "point",
    "seed",
    "stage",
    "pretrain",
    "sft",
    "pretrain_budget",
    "category",
    "metric",
    "score",
    "eval",
    "tasks",
)


def higher_is_better(metric: str) -> bool:
    """Direction of a metric: bits per byte and losses go down as models get better."""
    return not any(word in metric.lower() for word in LOWER_IS_BETTER)


def _rows(catalog: Catalog, view: str, glob: str) -> list[dict]:
    """All rows of a catalog view (read from its files when the view does not exist yet)."""
    views = catalog.refresh()
    if view in views:
        return catalog.query(f'SELECT * FROM "{view}"').to_pylist()
    if not any(catalog.workspace.root.glob(glob)):
        return []
    pattern = str(catalog.workspace.root / glob).replace("'", "''")
    sql = f"SELECT * FROM read_json_auto('{pattern}', union_by_name = true, filename = true)"
    return catalog.query(sql).to_pylist()


def _parent_run(ws: Workspace, run: str) -> str | None:
    """The run an SFT run started from: its summary's model is runs/<parent>/hf."""
    summary = ws.runs_dir / run / "summary.json"
    if not summary.is_file():
        return None
    model = Path(str(json.loads(summary.read_text(encoding="utf-8")).get("model") or ""))
    parts = model.parts
    if "runs" in parts and parts.index("runs") + 1 < len(parts):
        return parts[parts.index("runs") + 1]
    return None


def _trained_run(row: dict, runs: set[str]) -> str | None:
    """The training run an evaluation scored: `train_run`, the runs/<run>/ of its model, or `run`."""
    if row.get("train_run") in runs:
        return row["train_run"]
    parts = Path(str(row.get("model") or "")).parts
    if "runs" in parts and parts.index("runs") + 1 < len(parts):
        name = parts[parts.index("runs") + 1]
        if name in runs:
            return name
    return row.get("run") if row.get("run") in runs else None


def _seed(ws: Workspace, run: str) -> int | None:
    from frontload.config import read_yaml

    recipe = ws.runs_dir / run / "recipe.yaml"
    if recipe.is_file():
        data = read_yaml(recipe)
        if isinstance(data, dict) and isinstance(data.get("seed"), int):
            return data["seed"]
    return None


def _alloc_text(tokens: dict[str, float]) -> str:
    return "+".join(f"{c}:{int(round(t))}" for c, t in sorted(tokens.items()) if t > 0)


def build_table(
    ws: Workspace, metric: str = "score", stage: str = "sft", general: str = "general"
) -> list[dict]:
    """Rows of the experiments table (see module doc); errors name what is missing or mismatched."""
    with Catalog(ws) as catalog:
        served = _rows(catalog, "train_blend", "runs/*/served.jsonl")
        evals = _rows(catalog, "eval_summary", "evals/*/summary.json")
    if not served:
        raise StageNotReady(
            f"workspace {ws.root} has no finished runs (no runs/*/served.jsonl)",
            "train a sweep first: fl allocate design, then fl run SWEEP.yaml",
        )
    blend: dict[str, dict] = defaultdict(lambda: {"pretrain": {}, "sft": {}, "plan": None})
    for row in served:
        entry = blend[row["run"]]
        phase = "sft" if row["stage"] == "sft" else "pretrain"
        entry[phase][row["corpus"]] = entry[phase].get(row["corpus"], 0.0) + float(row["tokens"])
        entry["plan"] = row.get("plan") or entry["plan"]
    finals = {}
    for run, entry in blend.items():
        is_sft = bool(entry["sft"])
        if (stage == "sft") != is_sft:
            continue
        pretrain = entry["pretrain"]
        parent = _parent_run(ws, run) if is_sft else None
        if is_sft and not pretrain:
            if parent is None or parent not in blend:
                continue  # an SFT run whose pretraining run is not in the workspace
            pretrain = blend[parent]["pretrain"]
        finals[run] = {
            "pretrain": {c: t for c, t in pretrain.items() if c != general},
            "budget": sum(pretrain.values()),
            "sft": entry["sft"],
            "point": entry["plan"] or _alloc_text(pretrain) + "|" + _alloc_text(entry["sft"]),
            "seed": _seed(ws, run) if _seed(ws, run) is not None else _seed(ws, parent or run),
        }
    by_model: dict[str, dict[str, dict]] = defaultdict(dict)  # run -> task -> summary row
    for row in sorted(evals, key=lambda r: str(r.get("created") or "")):
        run = _trained_run(row, set(finals))
        if run is not None:
            by_model[run][row["task"]] = row
    if not by_model:
        raise StageNotReady(
            f"workspace {ws.root} has no finished {stage} runs with an evaluation",
            f"{len(finals)} {stage} runs trained; evaluate them (fl evaluate run) or finish `fl run`",
        )
    _check_same_tasks(by_model, metric)
    out = []
    for run, tasks in sorted(by_model.items()):
        info = finals[run]
        per_cat: dict[str, list[float]] = defaultdict(list)
        for row in tasks.values():
            per_cat[row.get("category") or "all"].append(float(row[metric]))
        means = {c: sum(v) / len(v) for c, v in per_cat.items()}
        means["avg"] = sum(means.values()) / len(means)
        for category, value in sorted(means.items()):
            out.append(
                {
                    "run": run,
                    "point": info["point"],
                    "seed": info["seed"],
                    "stage": stage,
                    "pretrain": _alloc_text(info["pretrain"]),
                    "sft": _alloc_text(info["sft"]),
                    "pretrain_budget": info["budget"],
                    "category": category,
                    "metric": metric,
                    "score": value,
                    "eval": ",".join(sorted({str(r.get("run")) for r in tasks.values()})),
                    "tasks": ",".join(sorted(tasks)),
                }
            )
    return out


def _check_same_tasks(by_model: dict[str, dict[str, dict]], metric: str) -> None:
    """Every model scored on the same tasks, each with the metric: else the rows are not comparable."""
    first_run, first = next(iter(sorted(by_model.items())))
    for run, tasks in sorted(by_model.items()):
        if set(tasks) != set(first):
            raise InputError(
                f"runs evaluated on different task sets: {first_run} on "
                f"{','.join(sorted(first))}, {run} on {','.join(sorted(tasks))}",
                "evaluate every run on the same tasks (or remove the odd evals/ folder)",
            )
        for task, row in tasks.items():
            if row.get(metric) is None:
                have = sorted(
                    k
                    for k, v in row.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                )
                raise InputError(
                    f"run {run}, task {task}: no metric '{metric}' (evaluated with other metrics)",
                    f"metrics present: {', '.join(have)}; re-evaluate or pick one of them",
                )


def write_csv(rows: list[dict], path: str | Path) -> Path:
    """The table as CSV; `fl allocate fit runs.csv` reads it back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path
