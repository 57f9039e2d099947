"""The experiments table, straight from the catalog: realized allocations joined to evaluations.

A row is one trained model (its last run: SFT when there is one), one score category and one metric.
Its allocation is what the trainers REALLY served (`train_blend`, i.e. runs/*/served.jsonl): the
pretraining tokens per reasoning corpus (the general corpus only fills the budget), and the SFT
tokens per corpus. An SFT run finds its pretraining run through its summary's `model` path
(runs/<pretrain run>/hf). The score is the evaluation metric (summary.json of evals/*), averaged
over the tasks of each category, with `avg` the mean of the category means. No CSV by hand.

Runs are grouped by what was trained, not by the plan they followed: `allocation_digest` is a hash
of the realized allocation (pretraining budget, reasoning tokens per corpus in pretraining and in
SFT), so two plans that served the same tokens are one design point. `same_as` names the first
plan (in sorted order) that trained the same allocation when a row's own plan is another one.
`kind` is the design's word for the plan (`anchor` or `design`): `fl allocate design` writes it
into each point's plan notes (DESIGN_KIND_NOTE), so it travels with the plan into every run that
trained it (`runs/<run>/plan.yaml`), wherever the sweep was written; plans designed before that
note existed are looked up in the loops' sweeps (`pipeline/*/design/sweep.yaml`, or the sweep
files given).

The CSV (`write_csv`) carries everything the ladder reads, so `fl allocate fit runs.csv` fits it
anywhere: the columns above, and beside it a pools file (`runs.pools.yaml`, `pools_path`) with
the corpora's disjoint pools as read from the workspace (the structured features need them).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path

from frontload.allocate.fit import parse_allocation
from frontload.allocate.pools import Pools, pools_from_workspace, save_pools
from frontload.catalog import Catalog
from frontload.config import read_yaml
from frontload.errors import InputError, StageNotReady
from frontload.workspace import Workspace

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
    "allocation_digest",
    "same_as",
    "kind",
)
DESIGN_KIND_NOTE = "design kind: "  # + anchor/design: the note `fl allocate design` writes
KINDS = ("anchor", "design")


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

    recipe = ws.runs_dir / run / "recipe.yaml"
    if recipe.is_file():
        data = read_yaml(recipe)
        if isinstance(data, dict) and isinstance(data.get("seed"), int):
            return data["seed"]
    return None


def _alloc_text(tokens: dict[str, float]) -> str:
    return "+".join(f"{c}:{int(round(t))}" for c, t in sorted(tokens.items()) if t > 0)


def allocation_digest(pretrain: str, sft: str, budget: float) -> str:
    """What a run trained, as a short hash: the pretraining budget and the `corpus:tokens` cells
    of both phases (the general corpus fills the rest of the budget, so it is implied)."""
    text = f"{int(round(float(budget)))}|{pretrain}|{sft}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def mark_same_allocations(rows: list[dict]) -> list[dict]:
    """Fill `allocation_digest` and `same_as` (the first plan, in sorted order, with the same
    digest, when it is not the row's own) on experiments rows, in place; returns them."""
    first: dict[str, str] = {}
    for row in rows:
        row["allocation_digest"] = allocation_digest(
            row["pretrain"], row["sft"], row["pretrain_budget"]
        )
    for row in sorted(rows, key=lambda r: str(r.get("point") or r["run"])):
        first.setdefault(row["allocation_digest"], str(row.get("point") or row["run"]))
    for row in rows:
        same = first[row["allocation_digest"]]
        row["same_as"] = same if same != str(row.get("point") or row["run"]) else ""
    return rows


def design_kind_note(kind: str) -> str:
    """The plan note that marks a design point's kind (anchor or design)."""
    return f"{DESIGN_KIND_NOTE}{kind}"


def plan_kind(ws: Workspace, run: str | None) -> str | None:
    """anchor/design, from the design note of the plan the run kept (None without one)."""
    path = ws.runs_dir / run / "plan.yaml" if run else None
    if path is None or not path.is_file():
        return None
    data = read_yaml(path)
    notes = data.get("notes") if isinstance(data, dict) else None
    for note in map(str, notes or []):
        kind = note.removeprefix(DESIGN_KIND_NOTE).strip()
        if note.startswith(DESIGN_KIND_NOTE) and kind in KINDS:
            return kind
    return None


def design_kinds(ws: Workspace, sweeps: list[Path] | None = None) -> dict[str, str]:
    """Plan name -> anchor/design, from the loops' sweeps in the workspace and `sweeps` (plans
    written before the design noted their kind)."""
    out: dict[str, str] = {}
    for path in sorted(ws.root.glob("pipeline/*/design/sweep.yaml")) + list(sweeps or []):
        data = read_yaml(path)
        for point in (data or {}).get("points", []) if isinstance(data, dict) else []:
            if isinstance(point, dict) and "name" in point and "kind" in point:
                out[str(point["name"])] = str(point["kind"])
    return out


def build_table(
    ws: Workspace,
    metric: str = "score",
    stage: str = "sft",
    general: str = "general",
    sweeps: list[Path] | None = None,
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
            "kind": plan_kind(ws, run) or plan_kind(ws, parent),
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
    kinds = design_kinds(ws, sweeps)
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
                    "kind": info["kind"] or kinds.get(str(info["point"]), ""),
                }
            )
    return mark_same_allocations(out)


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


def table_corpora(rows: list[dict]) -> list[str]:
    """The reasoning corpora the rows trained on, sorted."""
    return sorted(
        {
            c
            for r in rows
            for col in ("pretrain", "sft")
            for a in parse_allocation(r[col])
            for c in a
        }
    )


def workspace_pools(ws: Workspace, rows: list[dict]) -> Pools:
    """The pools of the corpora the rows read, from the workspace's records."""
    names = table_corpora(rows)
    missing = [n for n in names if not ws.corpus_dir(n).is_dir()]
    if missing:
        raise InputError(
            f"runs read corpus '{missing[0]}', which is not in workspace {ws.root}/corpora",
            "describe the corpora with --corpora YAML",
        )
    return pools_from_workspace({n: ws.corpus_dir(n) for n in names})


def pools_path(table: str | Path) -> Path:
    """The pools file beside an experiments CSV: runs.csv -> runs.pools.yaml."""
    return Path(table).with_suffix(".pools.yaml")


def write_csv(rows: list[dict], path: str | Path, pools: Pools | None = None) -> Path:
    """The table as CSV, and `pools` (the corpora's pools) beside it, so `fl allocate fit
    runs.csv` fits the ladder from these two files alone. Without pools, a pools file left by an
    earlier export is removed (it would describe other corpora)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    if pools is None:
        pools_path(path).unlink(missing_ok=True)
    else:
        save_pools(pools, pools_path(path))
    return path
