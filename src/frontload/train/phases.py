"""Staged pretraining data: each phase its own blend, switched exactly at its boundary.

Phases are ranges of global sequences (seq_len tokens each, counted over all processes). A
recipe's phases end at optimizer-step boundaries. A plan's phases split the trained sequences by
their budgets (the nearest whole sequence), and each serves its corpora by the plan's tokens
(`Blend` sources given `tokens=`): a phase may end inside a global batch, whose rows then come from
both phases' blends, so a budget need not be a whole number of global batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from loguru import logger

from frontload.data.blend import Blend, BlendSource, holdout_start
from frontload.data.shards import TokenDataset, token_dir
from frontload.errors import ConfigError
from frontload.plan import PhasePlan, Plan
from frontload.train.recipe import PretrainRecipe, SourceSpec
from frontload.workspace import Workspace


@dataclass(frozen=True)
class Phase:
    """Global sequences [start, end) read corpora at these token shares (summing to 1); a plan's
    phase also carries the plan's tokens per corpus, which its blend serves."""

    name: str
    start: int
    end: int
    weights: dict[str, float]
    max_epochs: dict[str, float | None]
    tokens: dict[str, int] = field(default_factory=dict)


def plan_tokens(recipe: PretrainRecipe, plan: Plan | None) -> int | None:
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
    return total


def run_steps(recipe: PretrainRecipe, plan: Plan | None) -> int:
    """Optimizer steps of the run: the recipe's total_tokens over the global batch, or the plan's
    pretraining budget in the nearest whole number of global batches (at least one; the phases
    then split exactly those, see `_from_plan`)."""
    budget = plan_tokens(recipe, plan)
    if budget is None:
        return recipe.total_steps()
    return max(1, round(budget / recipe.global_batch_tokens))


def run_recipe(recipe: PretrainRecipe, plan: Plan | None) -> dict:
    """The recipe as the run folder keeps it. With a plan, the blend keys the plan decides
    (data.reasoning, reasoning_fraction, phases) are left out: the folder's plan.yaml is the blend,
    and the kept recipe trains again with that plan without contradicting it."""
    payload = recipe.model_dump(mode="json")
    if plan is not None:
        for key in ("reasoning", "reasoning_fraction", "phases"):
            payload["data"].pop(key, None)
    return payload


def _plan_phases(plan: Plan) -> list[PhasePlan]:
    phases = [p for p in plan.phases if p.name in ("pretrain", "midtrain") and p.budget_tokens > 0]
    if not phases:
        plan.require_phase("pretrain")  # the error that names the phases the plan has
        raise ConfigError(f"plan {plan.name}: its pretraining budget is 0", "re-solve the plan")
    return phases


def plan_phases(recipe: PretrainRecipe, total_steps: int, plan: Plan | None = None) -> list[Phase]:
    """Sequence ranges with blend weights: the plan's phases (each at its share of the trained
    tokens) when given, else the recipe's phases (fractions of all steps)."""
    rows = recipe.global_batch_tokens // recipe.seq_len  # global sequences per optimizer step
    if plan is not None:
        return _from_plan(plan, total_steps * rows, recipe.seq_len)
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
        weights, epochs = _weights(general, reasoning, share, name)
        phases.append(Phase(name, start * rows, end * rows, weights, epochs))
        start = end
    return phases


def _from_plan(plan: Plan, sequences: int, seq_len: int) -> list[Phase]:
    """One phase per plan phase. The run trains `sequences` global sequences (whole batches);
    phase boundaries fall at each phase's cumulative share of them (exactly its budget when the
    budgets add up to whole batches), and each phase serves its corpora by the plan's tokens, so
    every corpus lands within one sequence of its share of the phase."""
    phases = _plan_phases(plan)
    total = sum(phase.budget_tokens for phase in phases)
    if total != sequences * seq_len:
        logger.info(
            f"plan {plan.name}: {total:,} tokens are {total / seq_len:,.2f} sequences of "
            f"{seq_len}; training {sequences:,} (whole global batches), every phase and corpus "
            "at its share"
        )
    out, start, cumulative = [], 0, 0
    for phase in phases:
        cumulative += phase.budget_tokens
        end = round(cumulative * sequences / total)
        tokens = dict(phase.corpus_tokens())
        weights = phase.blend_weights()
        out.append(Phase(phase.name, start, end, weights, dict.fromkeys(weights), tokens))
        start = end
    return out


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


class StagedData:
    """The blend of the phase the next global sequence belongs to; a new blend opens exactly at
    a phase boundary, inside a global batch if that is where the boundary falls."""

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
        self.blend: Blend | None = None
        self.finished: list[dict] = []  # what each finished phase served (see `served`)

    @property
    def position(self) -> int:
        """Global sequences handed out so far (all processes)."""
        if self.blend is None:
            return 0
        return self.phases[self.index].start + self.blend.step

    def batch(self, step: int, rows: int) -> dict:
        """`rows` sequences of this process's share of the next global micro-batch (rows x
        world_size sequences, taken in order; `step` is the optimizer step they belong to):
        input_ids, labels, seq_idx."""
        count = rows * self.world_size
        mine = range(self.rank * rows, (self.rank + 1) * rows)
        start, parts = self.position, []
        while self.position < start + count:
            self._enter(self.position)
            phase = self.phases[self.index]
            done = self.position - start
            take = min(start + count, phase.end) - self.position
            part = range(max(mine.start, done) - done, min(mine.stop, done + take) - done)
            parts.append(self.blend.advance(take, part if part.start < part.stop else range(0)))
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def _enter(self, position: int) -> None:
        """Open the blend of the phase that holds global sequence `position`."""
        index = next((i for i, p in enumerate(self.phases) if position < p.end), None)
        if index is None:
            raise ConfigError(
                f"the run asks for sequence {position:,} but its phases end at "
                f"{self.phases[-1].end:,}",
                "the run's steps and its phases disagree; rerun with the same recipe and plan",
            )
        if index != self.index:
            if self.blend is not None:
                self.finished.append(self._served_now())
            self.blend = self._open(index)
            self.index = index

    def _open(self, index: int) -> Blend:
        phase = self.phases[index]
        sources = [
            BlendSource(
                token_dir(self.workspace, corpus),
                weight=None if phase.tokens else weight,
                tokens=phase.tokens.get(corpus),
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
    if tokens <= 0:
        return {}
    corpora = dict.fromkeys(corpus for phase in phases for corpus in phase.weights)
    rows = {}
    for corpus in corpora:
        dataset = TokenDataset.open(token_dir(workspace, corpus))
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
