"""Training one two-phase allocation (a plan) with one seed: pretraining, SFT, evaluation.

The loop's sweep, its verification and the scale transfer all train plans this way. Plans whose
pretraining allocations are equal share one pretraining run per seed (the study's arms fine-tuned
on SHQ and on LDQ start from the same model, as in the study), named by a digest of that
allocation; every run is a stage of the pipeline's state file, so a rerun skips it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frontload.plan import Plan, load_plan
from frontload.study.pipeline import Study, digest, files_digest, merged


def pretraining_part(plan: Plan) -> list[dict]:
    """What a plan's pretraining trains (its phases before SFT), without names: plans with equal
    parts share one pretraining run per seed."""
    return [
        phase.model_dump(mode="json", exclude={"name"}) | {"phase": phase.name}
        for phase in plan.phases
        if phase.name != "sft"
    ]


def doubled_sft(plan: Plan, name: str) -> Plan:
    """The plan with twice its SFT tokens (and epochs): the study's T6 arm, 2x the SFT data."""
    phases = []
    for phase in plan.phases:
        if phase.name == "sft":
            entries = [
                e.model_copy(update={"tokens": 2 * e.tokens, "epochs": 2 * e.epochs})
                for e in phase.entries
            ]
            phase = phase.model_copy(
                update={"entries": entries, "budget_tokens": 2 * phase.budget_tokens}
            )
        phases.append(phase)
    note = "the study's T6: twice the SFT data of " + plan.name
    return plan.model_copy(update={"name": name, "phases": phases, "notes": [*plan.notes, note]})


class PointTrainer:
    """Trains plans with the pipeline's pretraining and SFT recipes (paths relative to `base`)."""

    def __init__(
        self,
        study: Study,
        prefix: str,
        pretrain: str,
        sft: str,
        pretrain_overrides: dict[str, Any] | None = None,
        sft_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.study, self.prefix = study, prefix
        self.pretrain, self.sft = pretrain, sft
        self.pretrain_overrides = pretrain_overrides or {}
        self.sft_overrides = sft_overrides or {}

    def pretrain_point(self, plan: Plan, seed: int, upstream: str) -> tuple[str, str]:
        """The pretraining run of `plan`'s pretraining allocation with `seed` (shared by every plan
        with the same allocation); returns its name and stage key."""
        from frontload.train.pretrain import pretrain
        from frontload.train.recipe import PretrainRecipe

        study = self.study
        part = pretraining_part(plan)
        name = f"{self.prefix}_pt_{digest(part)[:8]}_s{seed}".lower().replace("-", "_")
        extra = {"name": name, "seed": seed}
        recipe = merged(study.base, self.pretrain, self.pretrain_overrides, PretrainRecipe, extra)
        key = digest([upstream, part, recipe.model_dump(mode="json")])
        return name, study.state.run(  # one stage per run, whoever asks for it first
            f"pretrain/{name}",
            key,
            lambda resume: pretrain(recipe, study.ws, plan=plan, resume=resume),
            [study.ws.runs_dir / name],
        )

    def evaluate_base(self, plan: Plan, seed: int, upstream: str) -> str:
        """Evaluate the pretraining run of `plan` with `seed` as a base model; returns the eval."""
        name, key = self.pretrain_point(plan, seed, upstream)
        self.study.evaluate(f"{name}-base", self.study.ws.runs_dir / name / "hf", "base", key)
        return f"{name}-base"

    def train_point(self, stage: str, plan_path: Path, seed: int, upstream: str) -> str:
        """Pretrain (or reuse the shared pretraining run) and fine-tune on one plan with one seed,
        then evaluate; returns the SFT run (its evaluation has the same name)."""
        from frontload.train.posttrain.recipe import SFTRecipe
        from frontload.train.posttrain.sft import sft

        study = self.study
        plan = load_plan(plan_path)
        pt_name, pt_key = self.pretrain_point(plan, seed, upstream)
        name = f"{plan.name}_s{seed}_sft".lower().replace("-", "_")
        extra = {"name": name, "seed": seed, "model": f"runs/{pt_name}/hf"}
        recipe = merged(study.base, self.sft, self.sft_overrides, SFTRecipe, extra)
        key = digest([pt_key, files_digest([plan_path]), recipe.model_dump(mode="json")])
        key = study.state.run(
            f"{stage}/sft/{name}",
            key,
            lambda resume: sft(recipe, study.ws, plan=plan, resume=resume),
            [study.ws.runs_dir / name],
        )
        study.evaluate(name, study.ws.runs_dir / name / "hf", "chat", key)
        return name
