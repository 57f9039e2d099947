"""`fl run TRANSFER.yaml --source NANO_WS`: a loop's arms trained again at a second scale.

A decision made with proxy runs is only worth something if it holds at a larger scale. A transfer
file names the loop whose workspace (`--source`) holds the arms, and larger recipes: the arms are
the loop's study arms (the study's 8 arms, their base models and the doubled low-quality SFT arm),
its solved plan and the best design point its sweep observed (optionally its proportional and
UniMax anchors). Every arm's plan is scaled to the transfer's pretraining budget (its recipe's
`total_tokens`), the SFT phase by the same factor, and trained here with the transfer's seeds, on
the source workspace's own data (tokenizer, corpora and token shards copied, so both scales train
on identical data). `models.json` lets `fl report study` judge the four findings at this scale;
`arms.json` maps each arm to its evaluations; `fl report transfer` compares the two scales.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from frontload.allocate.design import load_sweep
from frontload.config import StrictModel, load_yaml, read_yaml
from frontload.errors import ConfigError, StageNotReady
from frontload.plan import Plan, load_plan, save_plan
from frontload.progress import console
from frontload.study.config import EvalStage, PipelineConfig, ReportStage
from frontload.study.guard import check_workspace
from frontload.study.html_report import write_html
from frontload.study.pipeline import Study, files_digest, merged
from frontload.study.points import PointTrainer, doubled_sft
from frontload.study.sweep import LoopConfig
from frontload.study.transfer_report import transfer as compare_scales
from frontload.workspace import Workspace

ARM_KINDS = ("study", "plan", "best_observed", "proportional", "unimax")


class TransferConfig(StrictModel):
    """A loop's arms at another scale (see module doc)."""

    name: str = Field(description="Transfer name; state in <workspace>/pipeline/<name>/.")
    source: str = Field(description="The loop file whose arms are trained (relative to this file).")
    arms: list[Literal["study", "plan", "best_observed", "proportional", "unimax"]] = Field(
        default_factory=lambda: ["study", "plan", "best_observed"],
        description="Which of the loop's arms to train.",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2], min_length=3, description="Seeds of every arm."
    )
    pretrain: str = Field(description="Pretraining recipe: its total_tokens sets the scale.")
    sft: str = Field(description="SFT recipe; each arm's plan sets the mixture.")
    pretrain_overrides: dict[str, Any] = Field(default_factory=dict, description="Keys replaced.")
    sft_overrides: dict[str, Any] = Field(default_factory=dict, description="Keys replaced.")
    evaluate: EvalStage = Field(default_factory=EvalStage, description="Evaluation of every run.")
    report: ReportStage = Field(default_factory=ReportStage, description="Metric of the verdicts.")

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds repeat: {value}")
        return value


def is_transfer(path: str | Path) -> bool:
    """A pipeline file with a `source:` loop is a scale transfer."""
    data = read_yaml(path)
    return isinstance(data, dict) and "source" in data and "sweep" not in data


def loop_folder(workspace: Workspace, name: str) -> Path:
    """The finished loop `name` in `workspace` (its design, plan and findings must be there)."""
    folder = workspace.root / "pipeline" / name
    missing = [
        p for p in ("design/sweep.yaml", "plan.yaml", "models.json") if not (folder / p).is_file()
    ]
    if missing:
        raise StageNotReady(
            f"loop {name!r} in {workspace.root} is not finished: no {', '.join(missing)}",
            f"run it first: fl run LOOP.yaml -w {workspace.root}",
        )
    return folder


def scaled(plan: Plan, factor: float, name: str) -> Plan:
    """Every phase's tokens times `factor` (the shares of each phase stay)."""
    phases = []
    for phase in plan.phases:
        budget = int(round(phase.budget_tokens * factor))
        entries = [
            e.model_copy(
                update={"tokens": int(round(e.tokens * factor)), "epochs": e.epochs * factor}
            )
            for e in phase.entries
        ]
        used = sum(e.tokens for e in entries)
        update: dict[str, Any] = {"budget_tokens": budget, "entries": entries}
        if phase.name != "sft":
            update["general_tokens"] = max(0, budget - used)
        phases.append(phase.model_copy(update=update))
    note = f"every phase scaled by {factor:g} from {plan.name} (same shares)"
    return plan.model_copy(update={"name": name, "phases": phases, "notes": [*plan.notes, note]})


def source_arms(folder: Path, kinds: list[str]) -> dict[str, dict[str, Any]]:
    """label -> {plan, kind, and for study arms pt_reasoning/sft_data/sft_scale} from a loop."""

    sweep, base = load_sweep(folder / "design")
    out: dict[str, dict[str, Any]] = {}
    if "study" in kinds:
        for point in sweep.points:
            if point.pt_reasoning and point.sft_data:
                arm = "M_base" if point.pt_reasoning == "none" else f"M_{point.pt_reasoning}"
                plan = load_plan(base / point.plan)
                study = {"kind": "study", "arm": arm, "pt_reasoning": point.pt_reasoning}
                out[f"{arm}+SFT_{point.sft_data}"] = study | {
                    "plan": plan,
                    "sft_data": point.sft_data,
                    "sft_scale": 1,
                }
                if (point.pt_reasoning, point.sft_data) == ("LDQ", "LDQ"):
                    doubled = doubled_sft(plan, f"{plan.name}-2x")
                    out[f"{arm}+SFT_2xLDQ"] = study | {
                        "plan": doubled,
                        "sft_data": "LDQ",
                        "sft_scale": 2,
                    }
    verify = folder / "verify.json"
    named = {}
    if verify.is_file():
        named = {a["arm"]: a["plan_file"] for a in json.loads(verify.read_text())["arms"]}
    for kind in kinds:
        if kind == "study":
            continue
        if kind not in named:
            raise StageNotReady(
                f"loop {folder.name} has no verified {kind} arm (verify.json)",
                "run the loop with verify enabled first",
            )
        out[kind] = {"kind": kind, "plan": load_plan(folder / named[kind])}
    return out


class Transfer:
    """Trains a loop's arms at this file's scale in this workspace (see module doc)."""

    def __init__(self, config: TransferConfig, base: Path, workspace: Workspace, source: Workspace):

        self.config, self.base, self.source = config, base, source
        loop_file = base / config.source
        self.loop_config = load_yaml(loop_file, LoopConfig)
        self.source_folder = loop_folder(source, self.loop_config.name)
        pipeline = PipelineConfig(
            name=config.name, curate=str(loop_file), arms=[], evaluate=config.evaluate
        )
        self.study = Study(pipeline, base, workspace)
        self.ws, self.folder, self.state = self.study.ws, self.study.folder, self.study.state
        self.trainer = PointTrainer(
            self.study,
            config.name,
            config.pretrain,
            config.sft,
            config.pretrain_overrides,
            config.sft_overrides,
        )
        self.timings: dict[str, float] = {}
        self.report: dict[str, Any] = {}  # the transfer table, once run
        self.html: Path | None = None  # reports/report.html

    def copy_data(self) -> str:
        """The source workspace's tokenizer, corpora and token shards: identical data."""
        src = self.source
        parts = [(src.tokenizer_dir, self.ws.tokenizer_dir)]
        parts += [(src.corpora_dir, self.ws.corpora_dir), (src.tokens_dir, self.ws.tokens_dir)]
        manifests = sorted(src.tokens_dir.glob("*/manifest.json"))
        if not manifests:
            raise StageNotReady(f"source workspace {src.root} has no token datasets")
        key = files_digest([*manifests, src.tokenizer_dir / "tokenizer.json"])

        def work(_: bool) -> None:
            for origin, target in parts:
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(origin, target)

        return self.state.run("data", key, work, [target for _, target in parts])

    def factor(self) -> float:
        from frontload.train.recipe import PretrainRecipe

        recipe = merged(
            self.base,
            self.config.pretrain,
            self.config.pretrain_overrides,
            PretrainRecipe,
            {"name": "check"},
        )
        plan = load_plan(self.source_folder / "plan.yaml")
        nano = sum(p.budget_tokens for p in plan.phases if p.name != "sft")
        if not recipe.total_tokens:
            raise ConfigError(f"{self.config.pretrain}: set total_tokens (it sets the scale)")
        return recipe.total_tokens / nano

    def run(self) -> Path:
        start = time.perf_counter()
        arms = source_arms(self.source_folder, self.config.arms)  # before any work
        factor = self.factor()
        key = self.copy_data()
        plans: dict[str, Path] = {}
        for label, arm in arms.items():
            name = f"{self.config.name}-{label}".lower().replace("+", "-").replace("_", "-")
            plans[label] = save_plan(
                scaled(arm["plan"], factor, name), self.folder / "arms" / f"{name}.yaml"
            )
        models, evals = [], {label: {} for label in arms}
        total = len(arms) * len(self.config.seeds)
        for seed in self.config.seeds:
            for label, arm in arms.items():
                console.print(f"[dim]transfer arm {label} seed {seed} ({total} in all)")
                run = self.trainer.train_point("transfer", plans[label], seed, key)
                evals[label][seed] = run
                if arm["kind"] != "study":
                    continue
                study = {"pt_reasoning": arm["pt_reasoning"], "rl": 0, "arm": arm["arm"]}
                models.append(
                    study
                    | {"model": label, "sft_data": arm["sft_data"], "stage": "sft", "run": run}
                    | {"eval": run, "sft_scale": arm["sft_scale"], "seed": seed}
                )
                if arm["sft_scale"] == 1 and arm["sft_data"] == "SHQ":  # one base per pt arm
                    base = self.trainer.evaluate_base(load_plan(plans[label]), seed, key)
                    models.append(
                        study
                        | {"model": arm["arm"], "sft_data": "", "stage": "base", "eval": base}
                        | {"run": base.removesuffix("-base"), "sft_scale": 0, "seed": seed}
                    )
        (self.folder / "models.json").write_text(json.dumps(models, indent=2))
        report = json.dumps(self.config.report.model_dump(mode="json"), indent=2)
        (self.folder / "report.json").write_text(report)
        info = {
            "source": str(self.source.root),
            "source_loop": self.loop_config.name,
            "factor": factor,
            "seeds": self.config.seeds,
            "arms": {label: {str(s): r for s, r in runs.items()} for label, runs in evals.items()},
        }
        (self.folder / "arms.json").write_text(json.dumps(info, indent=2))
        self.timings["total"] = time.perf_counter() - start
        return self.folder


def run_transfer(
    path: str | Path, workspace: Workspace, source: Workspace | None, force: bool = False
) -> Transfer:
    """Load TRANSFER.yaml and train the source loop's arms here; finished stages are skipped."""
    from frontload.train.posttrain.recipe import SFTRecipe
    from frontload.train.recipe import PretrainRecipe

    path = Path(path)
    config = load_yaml(path, TransferConfig)
    if source is None:
        raise ConfigError(
            f"{path} trains the arms of loop {config.source}: name the workspace it ran in",
            "fl run TRANSFER.yaml -w MICRO_WS --source NANO_WS",
        )
    if source.root.resolve() == workspace.root.resolve():
        raise ConfigError("--source is the workspace itself", "train the transfer in its own -w")
    base = path.resolve().parent
    merged(base, config.pretrain, config.pretrain_overrides, PretrainRecipe, {"name": "check"})
    merged(base, config.sft, config.sft_overrides, SFTRecipe, {"name": "c", "model": "c"})
    check_workspace(workspace, config.name, force)
    transfer = Transfer(config, base, workspace, source)
    transfer.run()
    transfer.report = compare_scales(source, workspace)  # reports/transfer.json
    transfer.html = write_html(workspace)
    return transfer
