"""What a training run actually served, kept beside it: the plan it followed and `served.jsonl`.

A run folder trained with a plan keeps `plan.yaml` (the plan as the run read it) and `plan.sha256`
(sha256 of those bytes). Every pretraining and SFT run writes `served.jsonl`, one row per (phase,
corpus) with the tokens the trainer really served, so allocations can be fitted on what was
trained (catalog view `train_blend`) rather than on what was asked for.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontload.errors import ConfigError, DataError

SERVED_FILE = "served.jsonl"
PLAN_FILE = "plan.yaml"
PLAN_HASH_FILE = "plan.sha256"


def record_plan(run_dir: Path, plan: Any | None) -> str | None:
    """Write the plan and its hash into the run folder; returns the hash (None without a plan,
    and then a plan left there by an earlier run of that name is removed)."""
    if plan is None:
        for name in (PLAN_FILE, PLAN_HASH_FILE):
            (run_dir / name).unlink(missing_ok=True)
        return None
    from frontload.plan import plan_text

    data = plan_text(plan).encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(run_dir / PLAN_FILE, data)
    _atomic_write(run_dir / PLAN_HASH_FILE, (digest + "\n").encode())
    return digest


def check_resume_plan(run_dir: Path, plan: Any | None) -> None:
    """A run resumes on the plan it started with: another plan (or none, or one where it had none)
    would change the blend mid-run without a word, so it is an error naming both."""
    kept = run_dir / PLAN_HASH_FILE
    before = kept.read_text().strip() if kept.is_file() else None
    now = None
    if plan is not None:
        from frontload.plan import plan_text

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
    run_dir: Path, run: str, stage: str, rows: list[dict], plan: Any | None = None
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


def read_served(run_dir: Path) -> list[dict]:
    path = run_dir / SERVED_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def pretrain_rows(served: list[dict], plan: Any | None) -> list[dict]:
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


# SFT: examples chosen so that each corpus serves its plan tokens within one example.


@dataclass
class SFTData:
    """Train and held-out conversations plus what each corpus contributes to the train set."""

    train: list = field(default_factory=list)
    held_out: list = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the corpus of each train conversation


def _records(workspace, corpus: str) -> list[tuple[list[dict], int]]:
    """(conversation, tokens) per usable record of a corpus, in file order; tokens are the
    record's `total_tokens`, the measure the allocation plan counts in."""
    import pyarrow.parquet as pq

    from frontload.errors import StageNotReady
    from frontload.train.posttrain.sft import record_messages

    parts = sorted(workspace.corpus_dir(corpus).glob("*.parquet"))
    if not parts:
        raise StageNotReady(
            f"corpus {corpus!r} has no parquet files in {workspace.corpus_dir(corpus)}",
            "fl curate corpora",
        )
    out = []
    for part in parts:
        table = pq.read_table(part)
        columns = [
            c
            for c in ("messages", "prompt", "response", "reasoning", "total_tokens")
            if c in table.column_names
        ]
        for row in table.select(columns).to_pylist():
            turns = record_messages(row)
            if turns is not None:
                out.append((turns, int(row.get("total_tokens") or 0)))
    if not out:
        raise DataError(
            f"corpus {corpus!r} has no records with an assistant turn",
            "SFT needs chat or prompt/response records; check the corpus rule",
        )
    return out


def _split(records: list, rng: random.Random, eval_fraction: float) -> tuple[list, list]:
    rng.shuffle(records)
    n_eval = int(len(records) * eval_fraction)
    if eval_fraction and len(records) >= 2:
        n_eval = max(1, n_eval)
    return records[n_eval:], records[:n_eval]


def check_sft_recipe(recipe: Any, plan: Any) -> None:
    """A recipe setting that contradicts the plan's SFT phase is an error naming both."""
    conflicts = []
    if recipe.corpora:
        names = ", ".join(c.name for c in recipe.corpora)
        conflicts.append(f"corpora: [{names}] (the plan's sft entries replace them)")
    if recipe.max_steps != -1:
        conflicts.append(
            f"max_steps: {recipe.max_steps} (it would stop before the plan's tokens are served)"
        )
    if conflicts:
        raise ConfigError(
            f"recipe {recipe.name} contradicts plan {plan.name}: " + "; ".join(conflicts),
            "drop those keys from the recipe (the plan decides the mixture), or train without --plan",
        )


def sft_data(workspace, recipe: Any, plan: Any | None) -> SFTData:
    """The SFT mixture: from the plan's sft phase (each corpus within one example of its tokens),
    else the recipe's corpora repeated by their epochs."""
    rng = random.Random(recipe.seed)
    out = SFTData()
    if plan is None:
        if not recipe.corpora:
            raise ConfigError(
                "the SFT recipe lists no corpora and no plan was given", "add corpora:"
            )
        for share in recipe.corpora:
            records = _records(workspace, share.name)
            if share.max_records:
                records = records[: share.max_records]
            corpus_tokens = sum(t for _, t in records)
            unique, held = _split(records, rng, recipe.eval_fraction)
            whole, fraction = divmod(share.epochs, 1)
            chosen = unique * int(whole) + unique[: int(len(unique) * fraction)]
            out.train += [c for c, _ in chosen]
            out.sources += [share.name] * len(chosen)
            out.held_out += [c for c, _ in held]
            out.rows.append(_row(share.name, chosen, corpus_tokens))
    else:
        check_sft_recipe(recipe, plan)
        phase = plan.require_phase("sft")
        for entry in phase.entries:
            if entry.tokens <= 0:
                continue
            records = _records(workspace, entry.corpus)
            corpus_tokens = sum(t for _, t in records)
            unique, held = _split(records, rng, recipe.eval_fraction)
            if not unique:
                raise DataError(f"corpus {entry.corpus!r}: nothing left after the held-out share")
            chosen = _take_tokens(unique, entry.tokens, rng)
            out.train += [c for c, _ in chosen]
            out.sources += [entry.corpus] * len(chosen)
            out.held_out += [c for c, _ in held]
            out.rows.append(_row(entry.corpus, chosen, corpus_tokens))
    pairs = list(zip(out.train, out.sources, strict=True))
    rng.shuffle(pairs)
    out.train, out.sources = [p[0] for p in pairs], [p[1] for p in pairs]
    if not out.train:
        raise DataError("the SFT mixture is empty after holding out the evaluation share")
    return out


def chat_tokens(tokenizer: Any, messages: list[dict]) -> int:
    """Tokens of a conversation as the SFT trainer sees it (the tokenizer's chat template)."""
    ids = tokenizer.apply_chat_template(messages, tokenize=True)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def cut_at_max_length(
    data: SFTData, lengths: list[int], max_length: int, recipe: str, plan: Any | None
) -> None:
    """The SFT trainer cuts every conversation longer than `max_length` tokens (`lengths`: each
    train conversation's tokens). With a plan that is a contradiction, since the plan's tokens would
    not be served: an error naming both. Without one, each corpus's served tokens are scaled to the
    share of its tokens that survive the cut, so served.jsonl never counts what was cut."""
    full: dict[str, int] = {}
    kept: dict[str, int] = {}
    cut: dict[str, list[int]] = {}
    for corpus, n in zip(data.sources, lengths, strict=True):
        full[corpus] = full.get(corpus, 0) + n
        kept[corpus] = kept.get(corpus, 0) + min(n, max_length)
        cut.setdefault(corpus, []).append(n > max_length)
    over = [c for c in full if any(cut[c])]
    if not over:
        return
    if plan is not None:
        detail = "; ".join(
            f"{c} {sum(cut[c])} of {len(cut[c])} examples ({1 - kept[c] / full[c]:.0%} of its "
            "tokens)"
            for c in over
        )
        raise ConfigError(
            f"recipe {recipe} max_length: {max_length} contradicts plan {plan.name}: the trainer "
            f"would cut {detail}, so it would not serve the plan's tokens",
            f"raise max_length to {max(lengths)} (the longest planned example), or re-solve the "
            "plan without those corpora",
        )
    for row in data.rows:
        if full.get(row["corpus"]):
            row["tokens"] = round(row["tokens"] * kept[row["corpus"]] / full[row["corpus"]])


def _take_tokens(records: list, target: int, rng: random.Random) -> list:
    """Whole examples, epoch after reshuffled epoch, until `target` tokens are reached: the total
    ends less than one example past the target."""
    if sum(t for _, t in records) <= 0:
        raise DataError("SFT records carry no total_tokens; re-run `fl curate corpora`")
    chosen, served, order = [], 0, list(records)
    while served < target:
        for record in order:
            if served >= target:
                break
            chosen.append(record)
            served += record[1]
        rng.shuffle(order)
    return chosen


def _row(corpus: str, chosen: list, corpus_tokens: int) -> dict:
    return {
        "phase": "sft",
        "corpus": corpus,
        "tokens": sum(t for _, t in chosen),
        "examples": len(chosen),
        "corpus_tokens": corpus_tokens,
    }


def sft_rows(data: SFTData, epoch_done: float) -> list[dict]:
    """Rows of what the trainer got through: exactly the mixture after its one full pass (always the
    case with a plan). A run without a plan whose `max_steps` ends inside a pass, or cycles the data
    more than once, served `epoch_done` passes of its shuffled examples: counted as that multiple
    (whole passes exactly, the partial one in expectation)."""
    if abs(epoch_done - 1.0) < 1e-6:
        return data.rows
    return [
        {
            **row,
            "tokens": round(row["tokens"] * epoch_done),
            "examples": round(row["examples"] * epoch_done),
        }
        for row in data.rows
    ]
