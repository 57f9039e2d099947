"""The SFT mixture: which conversations each corpus serves, held-out conversations, and the rows
`served.jsonl` records.

With a plan each corpus serves its sft-phase tokens within one example (whole examples, epoch after
reshuffled epoch); without one, the recipe's corpora are repeated by their epochs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from frontload.data.tokenizer import with_reasoning
from frontload.errors import ConfigError, DataError, StageNotReady
from frontload.plan import Plan
from frontload.train.posttrain.recipe import SFTRecipe
from frontload.workspace import Workspace


def record_messages(row: dict) -> list[dict] | None:
    """The chat form of a record: its messages, else prompt/response, a reasoning trace in the
    last assistant turn's `reasoning_content` (rendered once the tokenizer is known, see
    `fit_reasoning`); None without an answer."""
    messages = row.get("messages") or []
    if messages:
        turns = [{"role": m["role"], "content": m["content"] or ""} for m in messages]
    elif row.get("prompt") and row.get("response"):
        turns = [
            {"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": row["response"]},
        ]
    else:
        return None
    if not any(t["role"] == "assistant" and t["content"].strip() for t in turns):
        return None
    return with_reasoning(turns, row.get("reasoning"), None)


@dataclass
class SFTData:
    """Train and held-out conversations plus what each corpus contributes to the train set."""

    train: list = field(default_factory=list)
    held_out: list = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the corpus of each train conversation


def _records(workspace: Workspace, corpus: str) -> list[tuple[list[dict], int]]:
    """(conversation, tokens) per usable record of a corpus, in file order; tokens are the
    record's `total_tokens`, the measure the allocation plan counts in."""
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


def check_sft_recipe(recipe: SFTRecipe, plan: Plan) -> None:
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


def sft_data(workspace: Workspace, recipe: SFTRecipe, plan: Plan | None) -> SFTData:
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
    data: SFTData, lengths: list[int], max_length: int, recipe: str, plan: Plan | None
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
