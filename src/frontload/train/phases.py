"""Staged pretraining data: each phase its own blend, switched exactly at its step boundary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontload.errors import ConfigError, StageNotReady
from frontload.train.recipe import PretrainRecipe, SourceSpec
from frontload.workspace import Workspace


@dataclass(frozen=True)
class Phase:
    """Steps [start_step, end_step) read corpora at these weights (summing to 1)."""

    name: str
    start_step: int
    end_step: int
    weights: dict[str, float]
    max_epochs: dict[str, float | None]


def plan_tokens(recipe: PretrainRecipe, plan: Any | None) -> int | None:
    """Tokens the plan's pretraining phases (pretrain, then midtrain) train, after checking that
    nothing in the recipe contradicts the plan: the plan sets the blend, the phases and the budget,
    so a recipe setting those too is an error naming both, never a silent override."""
    if plan is None:
        return None
    phases = _plan_phases(plan)
    total = sum(phase.budget_tokens for phase in phases)
    data, where = recipe.data, f"recipe {recipe.name}"
    conflicts = []
    if recipe.total_tokens is not None and recipe.total_tokens != total:
        conflicts.append(f"total_tokens: {recipe.total_tokens:,} (the plan trains {total:,})")
    if data.reasoning:
        names = ", ".join(s.corpus for s in data.reasoning)
        conflicts.append(f"data.reasoning: [{names}] (the plan's corpora replace them)")
    planned = sum(e.tokens for phase in phases for e in phase.entries)
    if "reasoning" in data.model_fields_set and not data.reasoning and planned:
        conflicts.append(
            f"data.reasoning: [] (no reasoning; the plan puts {planned:,} reasoning tokens "
            "into pretraining)"
        )
    if data.reasoning_fraction is not None:
        conflicts.append(f"data.reasoning_fraction: {data.reasoning_fraction} (the plan sets it)")
    if data.phases:
        names = ", ".join(p.name for p in data.phases)
        conflicts.append(f"data.phases: [{names}] (the plan's phases are its own)")
    general = {p.general_corpus for p in phases if p.general_corpus and p.general_tokens}
    if "general" in data.model_fields_set and general and general != {data.general}:
        conflicts.append(f"data.general: {data.general} (the plan fills with {', '.join(general)})")
    if conflicts:
        raise ConfigError(
            f"{where} contradicts plan {plan.name}: " + "; ".join(conflicts),
            "drop those keys from the recipe (the plan decides the blend), or train without --plan",
        )
    for phase in phases:
        if phase.budget_tokens % recipe.global_batch_tokens:
            whole = max(1, round(phase.budget_tokens / recipe.global_batch_tokens))
            raise ConfigError(
                f"plan {plan.name}: phase {phase.name} budget {phase.budget_tokens:,} tokens is not a "
                f"whole number of global batches of {recipe.global_batch_tokens:,} tokens "
                f"({recipe.name}), so the run could not serve the plan's tokens exactly",
                f"re-solve with budgets.{phase.name}.tokens: "
                f"{whole * recipe.global_batch_tokens}, or set global_batch_tokens to a divisor "
                "of the budget",
            )
    return total


def run_recipe(recipe: PretrainRecipe, plan: Any | None) -> dict:
    """The recipe as the run folder keeps it. With a plan, the blend keys the plan decides
    (data.reasoning, reasoning_fraction, phases) are left out: the folder's plan.yaml is the blend,
    and the kept recipe trains again with that plan without contradicting it."""
    payload = recipe.model_dump(mode="json")
    if plan is not None:
        for key in ("reasoning", "reasoning_fraction", "phases"):
            payload["data"].pop(key, None)
    return payload


def _plan_phases(plan: Any) -> list:
    phases = [p for p in plan.phases if p.name in ("pretrain", "midtrain") and p.budget_tokens > 0]
    if not phases:
        plan.require_phase("pretrain")  # the error that names the phases the plan has
        raise ConfigError(f"plan {plan.name}: its pretraining budget is 0", "re-solve the plan")
    return phases


def plan_phases(recipe: PretrainRecipe, total_steps: int, plan: Any | None = None) -> list[Phase]:
    """Step ranges with blend weights: the plan's phases (each at its budget) when given, else the
    recipe's phases (fractions of all tokens)."""
    if plan is not None:
        return _from_plan(recipe, plan)
    data = recipe.data
    general, reasoning, default_share = data.general, data.reasoning, data.reasoning_fraction
    if default_share is None and not reasoning:
        default_share = 0.0
    if default_share is None and general is None:
        default_share = 1.0
    needs_default = any(spec.reasoning_fraction is None for spec in data.phases) or not data.phases
    if default_share is None and needs_default:
        raise ConfigError(
            "data.reasoning_fraction is not set and no plan gives it",
            "set data.reasoning_fraction (e.g. 0.2 for 80/20), or pass --plan",
        )
    specs = data.phases or [None]
    phases, start = [], 0
    for spec in specs:
        name = spec.name if spec else "pretrain"
        end = round(spec.until * total_steps) if spec else total_steps
        if end <= start:
            raise ConfigError(
                f"data.phases: phase {name!r} gets no optimizer step "
                f"({total_steps} steps in all at this batch size)",
                "widen the phase, raise total_tokens or lower global_batch_tokens",
            )
        share = spec.reasoning_fraction if spec and spec.reasoning_fraction is not None else None
        if share is None:
            share = default_share or 0.0
        phases.append(Phase(name, start, end, *_weights(general, reasoning, share, name)))
        start = end
    return phases


def _from_plan(recipe: PretrainRecipe, plan: Any) -> list[Phase]:
    """One phase per plan phase, its steps its budget over the global batch, its weights the
    plan's tokens (general corpus included): the blend then serves each corpus within one
    sequence of the plan's tokens (`plan_tokens` checked that budgets are whole batches)."""
    phases, start = [], 0
    for phase in _plan_phases(plan):
        end = start + phase.budget_tokens // recipe.global_batch_tokens
        weights = phase.blend_weights()
        phases.append(Phase(phase.name, start, end, weights, dict.fromkeys(weights)))
        start = end
    return phases


def _weights(
    general: str | None, reasoning: list[SourceSpec], share: float, phase: str
) -> tuple[dict[str, float], dict[str, float | None]]:
    if share > 0 and not reasoning:
        raise ConfigError(
            f"phase {phase!r} asks for {share:.0%} reasoning tokens but no reasoning source is set",
            "list sources under data.reasoning, or pass --plan",
        )
    if share < 1 and general is None:
        raise ConfigError(
            f"phase {phase!r} needs {1 - share:.0%} general tokens but data.general is null",
            "set data.general to a token dataset, or reasoning_fraction to 1",
        )
    weights: dict[str, float] = {}
    epochs: dict[str, float | None] = {}
    if share < 1:
        weights[general] = 1 - share
        epochs[general] = None
    total = sum(source.weight for source in reasoning)
    for source in reasoning if share > 0 else []:
        weights[source.corpus] = weights.get(source.corpus, 0.0) + share * source.weight / total
        epochs[source.corpus] = source.max_epochs
    return weights, epochs


def corpus_path(workspace: Workspace, corpus: str) -> Path:
    """A name under workspace tokens/, or a path to a token folder."""
    candidate = Path(corpus).expanduser()
    path = candidate if candidate.is_absolute() or "/" in corpus else workspace.tokens_dir / corpus
    if not (path / "manifest.json").is_file():
        raise StageNotReady(
            f"token dataset {corpus!r} not found at {path}",
            f"run `fl data tokenize --corpus {candidate.name}` first, or fix the corpus name",
        )
    return path


class StagedData:
    """The blend of the phase a step belongs to; a new blend opens exactly at a phase boundary."""

    def __init__(
        self,
        phases: list[Phase],
        workspace: Workspace,
        *,
        seq_len: int,
        seed: int,
        rank: int,
        world_size: int,
        tokenizer_hash: str | None,
        holdout_tokens: int = 0,
    ) -> None:
        self.phases = phases
        self.holdout_tokens = holdout_tokens  # per source, kept out for `validation_rows`
        self.workspace = workspace
        self.seq_len = seq_len
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.tokenizer_hash = tokenizer_hash
        self.index = -1
        self.blend = None
        self.finished: list[dict] = []  # what each finished phase served (see `served`)

    def phase_index(self, step: int) -> int:
        return next(i for i, phase in enumerate(self.phases) if step < phase.end_step)

    def batch(self, step: int, rows: int) -> dict:
        """`rows` sequences of this process's share of `step`'s data: input_ids, labels, seq_idx."""
        index = self.phase_index(step)
        if index != self.index:
            if self.blend is not None:
                self.finished.append(self._served_now())
            self.blend = self._open(index)
            self.index = index
        return self.blend.next_batch(rows)

    def _open(self, index: int):
        from frontload.data.blend import Blend, BlendSource

        phase = self.phases[index]
        sources = [
            BlendSource(
                corpus_path(self.workspace, corpus),
                weight=weight,
                max_epochs=phase.max_epochs.get(corpus),
                holdout_tokens=self.holdout_tokens,
            )
            for corpus, weight in phase.weights.items()
        ]
        return Blend(
            sources,
            seq_len=self.seq_len,
            seed=self.seed + index,
            rank=self.rank,
            world_size=self.world_size,
            expected_tokenizer_hash=self.tokenizer_hash,
        )

    def _served_now(self) -> dict:
        """Tokens and documents the current phase's blend has served so far, per corpus."""
        phase = self.phases[self.index]
        rows = self.blend.report()["sources"]
        return {
            "phase": phase.name,
            "sources": [
                {
                    "corpus": corpus,
                    "tokens": row["tokens_served"],
                    "documents": row["documents_served"],
                    "dataset_tokens": row["dataset_tokens"],
                }
                for corpus, row in zip(phase.weights, rows, strict=True)
            ],
        }

    def served(self) -> list[dict]:
        """Per phase reached so far: the tokens each corpus actually served (all ranks)."""
        return self.finished + ([self._served_now()] if self.blend is not None else [])

    def state_dict(self) -> dict:
        return {
            "phase": self.index,
            "blend": self.blend.state_dict() if self.blend else None,
            "finished": self.finished,
        }

    def load_state_dict(self, state: dict) -> None:
        self.finished = list(state.get("finished", []))
        self.index = state["phase"]
        self.blend = self._open(self.index) if self.index >= 0 else None
        if self.blend is not None:
            self.blend.load_state_dict(state["blend"])


def validation_rows(
    workspace: Workspace, phases: list[Phase], seq_len: int, tokens: int
) -> dict[str, dict]:
    """Per source, its held-out last documents (see `holdout_start`, never served by the blend)
    cut into rows of `seq_len`: input_ids, labels, seq_idx (R, T). The same rows every time."""
    import numpy as np

    from frontload.data.blend import holdout_start
    from frontload.data.shards import TokenDataset

    if tokens <= 0:
        return {}
    corpora = dict.fromkeys(corpus for phase in phases for corpus in phase.weights)
    rows = {}
    for corpus in corpora:
        dataset = TokenDataset.open(corpus_path(workspace, corpus))
        ids, docs = [], []
        for doc in range(dataset.num_documents - 1, holdout_start(dataset, tokens) - 1, -1):
            piece, _ = dataset.document(doc)
            ids.append(np.asarray(piece, dtype=np.int64))
            docs.append(np.full(len(piece), len(docs), dtype=np.int32))
        stream, owner = np.concatenate(ids), np.concatenate(docs)
        count = len(stream) // seq_len
        if count == 0:
            continue
        input_ids = stream[: count * seq_len].reshape(count, seq_len)
        seq_idx = owner[: count * seq_len].reshape(count, seq_len)
        seq_idx = seq_idx - seq_idx[:, :1]  # document index restarts in every row
        rows[corpus] = {"input_ids": input_ids, "labels": input_ids.copy(), "seq_idx": seq_idx}
    return rows
