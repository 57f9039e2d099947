"""Per-step statistics of a curation run: datatrove's per-task stats summed into one row per step
(kept, removed by reason, own seconds) in `curate/stats/<run>.jsonl` (catalog view `curate_steps`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from frontload.curate.stages import DROP_REASONS, RunFolders, StageLayout
from frontload.curate.timing import step_seconds
from frontload.workspace import Workspace


def collect_stats(
    stages: list[StageLayout], folders: RunFolders, run_id: str, workspace: Workspace
) -> None:
    """Sum datatrove's per-task stats into one row per step: curate/stats/<run>.jsonl. Steps that
    count documents get their counts; every step gets its own seconds (summed over tasks)."""
    rows: list[dict] = []
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    kept = 0
    for stage in stages:
        totals: list[dict[str, int]] = [{} for _ in stage.kinds]
        seconds = [0.0 for _ in stage.kinds]
        for path in sorted((folders.logs / stage.name / "stats").glob("*.json")):
            entries = json.loads(path.read_text())
            for position, step in enumerate(entries[0::2]):
                for key, value in step["stats"].items():
                    count = value["total"] if isinstance(value, dict) else value
                    totals[position][key] = totals[position].get(key, 0) + int(count)
            for position, spent in enumerate(step_seconds(entries)):
                seconds[position] += spent
        for index, (label, counts) in enumerate(zip(stage.labels, totals, strict=True)):
            if label is not None and counts:
                row = step_row(run_id, stage.name, label, counts, kept)
                kept = row["kept"]
            else:  # a step that counts nothing reports its time only
                row = {"run_id": run_id, "stage": stage.name, "step": timing_name(stage, index)}
            row["seconds"] = round(seconds[index], 3)
            rows.append({**row, "finished": finished, "position": len(rows)})
    path = workspace.curate_state_dir / "stats" / f"{run_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    tmp.replace(path)


TIMING_NAMES = {
    "RecordWriter": "stage_write",
    "StagedReader": "stage_read",
    "ExactDedupSignature": "exact_signature",
    "ExactFindDedups": "exact_find",
    "NumberAwareMinhashSignature": "minhash_signature",
    "MinhashDedupBuckets": "minhash_buckets",
    "MinhashClusterForEveryTask": "minhash_clusters",
    "ClusterLabel": "dup_cluster",
}


def timing_name(stage: StageLayout, index: int) -> str:
    """The name in curate_steps of a step that reports only its time."""
    kind = stage.kinds[index]
    return stage.labels[index] or TIMING_NAMES.get(kind, kind)


def step_row(run_id: str, stage: str, step: str, counts: dict[str, int], previous: int) -> dict:
    """One curate_steps row: kept, removed, and removals by reason. A step that does not count
    documents (token counting, scoring) passes on what the previous step kept."""
    removed = counts.get("dropped", 0)
    reasons = {
        key.removeprefix("dropped_"): value
        for key, value in counts.items()
        if key.startswith("dropped_")
    }
    if removed and not reasons:
        reasons = {DROP_REASONS.get(step, step): removed}
    seen = counts.get("total", counts.get("documents"))
    kept = counts.get("forwarded", previous if seen is None else seen - removed)
    return {
        "run_id": run_id,
        "stage": stage,
        "step": step,
        "input": kept + removed,
        "kept": kept,
        "removed": removed,
        "flagged": counts.get("contaminated", 0),
        "reasons": [{"reason": key, "count": value} for key, value in sorted(reasons.items())],
    }
