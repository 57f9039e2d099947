"""What a training run actually served, kept beside it: the plan it followed and `served.jsonl`.

A run folder trained with a plan keeps `plan.yaml` (the plan as the run read it) and `plan.sha256`
(sha256 of those bytes). Every pretraining and SFT run writes `served.jsonl`, one row per (phase,
corpus) with the tokens the trainer really served, so allocations can be fitted on what was
trained (catalog view `train_blend`) rather than on what was asked for.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from frontload.errors import ConfigError
from frontload.plan import Plan, plan_text

SERVED_FILE = "served.jsonl"
PLAN_FILE = "plan.yaml"
PLAN_HASH_FILE = "plan.sha256"


def record_plan(run_dir: Path, plan: Plan | None) -> str | None:
    """Write the plan and its hash into the run folder; returns the hash (None without a plan,
    and then a plan left there by an earlier run of that name is removed)."""
    if plan is None:
        for name in (PLAN_FILE, PLAN_HASH_FILE):
            (run_dir / name).unlink(missing_ok=True)
        return None
    data = plan_text(plan).encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(run_dir / PLAN_FILE, data)
    _atomic_write(run_dir / PLAN_HASH_FILE, (digest + "\n").encode())
    return digest


def check_resume_plan(run_dir: Path, plan: Plan | None) -> None:
    """A run resumes on the plan it started with: another plan (or none, or one where it had none)
    would change the blend mid-run without a word, so it is an error naming both."""
    kept = run_dir / PLAN_HASH_FILE
    before = kept.read_text().strip() if kept.is_file() else None
    now = None
    if plan is not None:
        now = hashlib.sha256(plan_text(plan).encode("utf-8")).hexdigest()
    if before == now:
        return
    was = f"plan {before[:12]} ({run_dir / PLAN_FILE})" if before else "no plan"
    given = f"plan {plan.name} ({now[:12]})" if plan is not None else "no plan"
    raise ConfigError(
        f"run {run_dir.name} started with {was} and is resumed with {given}",
        f"resume with --plan {run_dir / PLAN_FILE}" if before else "resume without --plan",
    )


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_served(
    run_dir: Path, run: str, stage: str, rows: list[dict], plan: Plan | None = None
) -> Path:
    """`served.jsonl`: one row per (phase, corpus) in the shared contract's form."""
    digest = record_plan(run_dir, plan)
    lines = []
    for row in rows:
        corpus_tokens = row.get("corpus_tokens") or 0
        lines.append(
            {
                "run": run,
                "stage": stage,
                "phase": row["phase"],
                "corpus": row["corpus"],
                "tokens": int(row["tokens"]),
                "examples": None if row.get("examples") is None else int(row["examples"]),
                "epochs": row["tokens"] / corpus_tokens if corpus_tokens else 0.0,
                "plan": plan.name if plan is not None else None,
                "plan_sha256": digest,
            }
        )
    path = run_dir / SERVED_FILE
    _atomic_write(path, "".join(json.dumps(line) + "\n" for line in lines).encode())
    return path


def pretrain_rows(served: list[dict], plan: Plan | None) -> list[dict]:
    """StagedData's per-phase report as served rows. With a plan the phases are the plan's; the
    recipe's own stages (e.g. general-only then mixed) are all pretraining and add up into one."""
    totals: dict[tuple[str, str], dict] = {}
    for phase in served:
        name = phase["phase"] if plan is not None else "pretrain"
        for source in phase["sources"]:
            row = totals.setdefault(
                (name, source["corpus"]),
                {"phase": name, "corpus": source["corpus"], "tokens": 0, "examples": 0},
            )
            row["tokens"] += source["tokens"]
            row["examples"] += source["documents"]
            row["corpus_tokens"] = source["dataset_tokens"]
    return list(totals.values())
