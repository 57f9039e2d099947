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


def _sources(
    recipe: PretrainRecipe, plan: Any | None
) -> tuple[str | None, list[SourceSpec], float]:
    """General corpus, reasoning sources and the default reasoning share, from the plan if given."""
    data = recipe.data
    if plan is None:
        general, reasoning, share = data.general, data.reasoning, data.reasoning_fraction
        if share is None and not reasoning:
            share = 0.0
        if share is None and general is None:
            share = 1.0
    else:
        phase = plan.require_phase("pretrain")
        entries = [entry for entry in phase.entries if entry.weight > 0]
        reasoning = [SourceSpec(corpus=entry.corpus, weight=entry.weight) for entry in entries]
        general = phase.general_corpus or data.general
        share = data.reasoning_fraction
        if share is None:
            share = sum(entry.weight for entry in entries)
    needs_default = any(spec.reasoning_fraction is None for spec in data.phases) or not data.phases
    if share is None and needs_default:
        raise ConfigError(
            "data.reasoning_fraction is not set and no plan gives it",
            "set data.reasoning_fraction (e.g. 0.2 for 80/20), or pass --plan",
        )
    return general, reasoning, share or 0.0


def plan_phases(recipe: PretrainRecipe, total_steps: int, plan: Any | None = None) -> list[Phase]:
    """Turn the recipe's phases (fractions of all tokens) into step ranges with blend weights."""
    general, reasoning, default_share = _sources(recipe, plan)
    specs = recipe.data.phases or [None]
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
        share = default_share if share is None else share
        phases.append(Phase(name, start, end, *_weights(general, reasoning, share, name)))
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

    def phase_index(self, step: int) -> int:
        return next(i for i, phase in enumerate(self.phases) if step < phase.end_step)

    def batch(self, step: int, rows: int) -> dict:
        """`rows` sequences of this process's share of `step`'s data: input_ids, labels, seq_idx."""
        index = self.phase_index(step)
        if index != self.index:
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

    def state_dict(self) -> dict:
        return {"phase": self.index, "blend": self.blend.state_dict() if self.blend else None}

    def load_state_dict(self, state: dict) -> None:
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
