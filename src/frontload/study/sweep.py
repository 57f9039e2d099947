"""`fl run LOOP.yaml`: design -> run every point x seed -> findings -> fit -> solve -> verify.

The data stages (sample, curate, tokenizer, tokenize) and evaluation are the study pipeline's own
(`frontload.study.pipeline.Study`); each point x seed is a pretraining run, an SFT run on the
point's plan, and an evaluation, every one a stage of the same state file, so a rerun skips
finished points and resumes the one that was interrupted. Points whose pretraining allocations are
equal share one pretraining run per seed (the study's arms fine-tuned on SHQ and on LDQ start from
the same model, as in the study). The trainers record what they really served
(runs/*/served.jsonl); the fit reads that, never the plans' intent. The design's study arms also
answer the study's four findings: their base models are evaluated and the doubled low-quality SFT
arm (the study's T6) is trained, and `models.json` lets `fl report study` judge them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from frontload.allocate.design import load_sweep, write_sweep
from frontload.allocate.experiments import build_table, write_csv
from frontload.allocate.ladder import fit_runs, write_ladder
from frontload.allocate.solve import load_config, resolve_pools, solve_plan
from frontload.allocate.verify import verify_plan
from frontload.config import StrictModel, dump_yaml, load_yaml, read_yaml
from frontload.plan import load_plan, save_plan
from frontload.progress import console
from frontload.study.config import (
    EvalStage,
    PipelineConfig,
    ReportStage,
    SampleStage,
    TokenizerStage,
)
from frontload.study.guard import check_workspace
from frontload.study.html_report import write_html
from frontload.study.loop_report import loop_report
from frontload.study.pipeline import Study, digest, files_digest, merged
from frontload.study.points import PointTrainer, doubled_sft
from frontload.workspace import Workspace


class SweepStage(StrictModel):
    """Design and train a sweep of two-phase allocations."""

    allocate: str = Field(description="Allocate config the design is drawn from (and solved).")
    runs: int = Field(12, ge=1, description="Design points (anchors included).")
    criterion: str = Field("space-filling", description="space-filling or d-optimal.")
    design_seed: int = Field(0, description="Seed of the design's random candidates.")
    seeds: list[int] = Field(default_factory=lambda: [0], description="Training seeds per point.")
    pretrain: str = Field(description="Pretraining recipe; the point's plan sets the blend.")
    sft: str = Field(description="SFT recipe; the point's plan sets the mixture.")
    pretrain_overrides: dict[str, Any] = Field(default_factory=dict, description="Keys replaced.")
    sft_overrides: dict[str, Any] = Field(default_factory=dict, description="Keys replaced.")


class FitStage(StrictModel):
    """Fit the response model on the sweep's runs."""

    metric: str = Field("bpb", description="Summary metric to fit (bpb, score, answer_logprob).")
    bootstrap: int = Field(20, ge=0, description="Bootstrap draws (settings re-selected).")
    repeats: int = Field(
        20, ge=1, description="Repeated grouped CV: fold seeds behind the ladder's intervals."
    )


class VerifyStage(StrictModel):
    """Train the solved plan against its baselines on fresh seeds."""

    enabled: bool = Field(True, description="Run verification after the solve.")
    seeds: int = Field(3, ge=3, description="Verify seeds (t interval over their paired diffs).")
    seed_offset: int = Field(
        1000, ge=0, description="First verify seed; the seeds must not overlap the sweep's."
    )


class LoopConfig(StrictModel):
    """The whole loop in one file; data fields as in a study pipeline."""

    name: str = Field(description="Loop name; state in <workspace>/pipeline/<name>/.")
    sample: SampleStage | None = Field(None, description="Generate the sample dump first.")
    curate: str = Field(description="Curation recipe (builds the pool and the corpora).")
    tokenizer: TokenizerStage = Field(default_factory=TokenizerStage, description="Tokenizer.")
    tokenize: list[str] = Field(
        default_factory=lambda: ["general", "dldq", "dshq", "dlmq"], description="Corpora."
    )
    sweep: SweepStage = Field(description="Design and runs.")
    fit: FitStage = Field(default_factory=FitStage, description="Fit.")
    verify: VerifyStage = Field(
        default_factory=VerifyStage, description="Verification (true/false, or its settings)."
    )
    findings: bool = Field(
        True, description="Judge the study's four findings on the design's study arms."
    )
    evaluate: EvalStage = Field(default_factory=EvalStage, description="Evaluation of every run.")
    report: ReportStage = Field(default_factory=ReportStage, description="Findings' verdicts.")

    @field_validator("verify", mode="before")
    @classmethod
    def _verify_switch(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value


def is_loop(path: str | Path) -> bool:
    """A pipeline file with a `sweep:` section is a loop, not a study."""
    data = read_yaml(path)
    return isinstance(data, dict) and "sweep" in data


class Loop:
    """Runs one loop file against one workspace; stage timings go to timings.json."""

    def __init__(self, config: LoopConfig, base: Path, workspace: Workspace) -> None:

        data = config.model_dump(include={"name", "sample", "curate", "tokenizer", "tokenize"})
        pipeline = PipelineConfig(**data, arms=[], evaluate=config.evaluate)
        self.config, self.base = config, base
        self.study = Study(pipeline, base, workspace)
        self.ws, self.folder, self.state = self.study.ws, self.study.folder, self.study.state
        self.timings: dict[str, float] = {}
        self.verify_result = None
        self.models: list[dict] = []
        sweep = config.sweep
        self.trainer = PointTrainer(
            self.study,
            config.name,
            sweep.pretrain,
            sweep.sft,
            sweep.pretrain_overrides,
            sweep.sft_overrides,
        )
        self.html: Path | None = None  # reports/report.html, written at the end of a run

    def timed(self, label: str, work) -> Any:
        start = time.perf_counter()
        try:
            return work()
        finally:
            self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - start
            (self.folder / "timings.json").write_text(json.dumps(self.timings, indent=2))

    def design(self, data_key: str) -> tuple[str, Path]:

        cfg = self.config.sweep
        out = self.folder / "design"
        material = [data_key, read_yaml(self.base / cfg.allocate)]
        material += [cfg.runs, cfg.criterion, cfg.design_seed]
        key = self.state.run(
            "design",
            digest(material),
            lambda _: write_sweep(
                self.base / cfg.allocate, cfg.runs, out, self.ws, cfg.criterion, cfg.design_seed
            ),
            [out],
        )
        return key, out / "sweep.yaml"

    def train_point(self, stage: str, plan_path: Path, seed: int, upstream: str) -> str:
        """Pretrain (shared across equal pretraining allocations), fine-tune and evaluate one plan
        with one seed; returns the SFT run."""
        return self.trainer.train_point(stage, plan_path, seed, upstream)

    def run_sweep(self, sweep_path: Path, key: str) -> list[str]:

        sweep, base = load_sweep(sweep_path)
        runs = []
        total = len(sweep.points) * len(self.config.sweep.seeds)
        for point in sweep.points:
            for seed in self.config.sweep.seeds:
                console.print(f"[dim]sweep point {len(runs) + 1}/{total}: {point.name} seed {seed}")
                runs.append(self.train_point("sweep", base / point.plan, seed, key))
        return runs

    def findings(self, sweep_path: Path, key: str) -> list[dict]:
        """The study's arms of the design as the study's models: their base models evaluated, the
        doubled low-quality SFT arm (T6) trained on M_LDQ; writes models.json and report.json."""

        sweep, base = load_sweep(sweep_path)
        models: list[dict] = []
        based: set[str] = set()
        for point in (p for p in sweep.points if p.pt_reasoning and p.sft_data):
            plan = load_plan(base / point.plan)
            arm = "M_base" if point.pt_reasoning == "none" else f"M_{point.pt_reasoning}"
            study = {"pt_reasoning": point.pt_reasoning, "rl": 0, "arm": arm}
            for seed in self.config.sweep.seeds:
                eval_name = self.trainer.evaluate_base(plan, seed, key)
                if eval_name not in based:
                    based.add(eval_name)
                    pt_name = eval_name.removesuffix("-base")
                    models.append(
                        study
                        | {"model": arm, "sft_data": "", "stage": "base", "run": pt_name}
                        | {"eval": eval_name, "sft_scale": 0, "seed": seed}
                    )
                run = self.train_point("sweep", base / point.plan, seed, key)
                models.append(
                    study
                    | {"model": f"{arm}+SFT_{point.sft_data}", "sft_data": point.sft_data}
                    | {"stage": "sft", "run": run, "eval": run, "sft_scale": 1, "seed": seed}
                )
                if (point.pt_reasoning, point.sft_data) == ("LDQ", "LDQ"):
                    doubled = doubled_sft(plan, f"{plan.name}-2x")
                    path = save_plan(doubled, self.folder / "findings" / f"{doubled.name}.yaml")
                    run = self.train_point("findings", path, seed, key)
                    models.append(
                        study
                        | {"model": f"{arm}+SFT_2xLDQ", "sft_data": "LDQ", "stage": "sft"}
                        | {"run": run, "eval": run, "sft_scale": 2, "seed": seed}
                    )
        (self.folder / "models.json").write_text(json.dumps(models, indent=2))
        report = json.dumps(self.config.report.model_dump(mode="json"), indent=2)
        (self.folder / "report.json").write_text(report)
        return models

    def sweep_rows(self, metric: str) -> list[dict]:
        """The experiments table of the sweep's own runs: its design points on its seeds (not the
        findings' T6 arm, not verification runs)."""

        sweep, _ = load_sweep(self.folder / "design")
        names = {p.name for p in sweep.points}
        seeds = set(self.config.sweep.seeds)
        return [
            r for r in build_table(self.ws, metric) if r["point"] in names and r["seed"] in seeds
        ]

    def fit(self, key: str) -> tuple[str, Path]:

        out = self.folder / "model.yaml"
        cfg = self.config.fit

        def work(_: bool) -> None:
            rows = self.sweep_rows(cfg.metric)
            pools = resolve_pools(load_config(self.base / self.config.sweep.allocate), self.ws)
            write_csv(rows, self.folder / "experiments.csv", pools)  # + experiments.pools.yaml
            result = fit_runs(rows, pools, cfg.metric, cfg.bootstrap, repeats=cfg.repeats)
            dump_yaml(result.model, out)
            write_ladder(result.ladder, self.folder / "ladder.json")

        key = self.state.run(
            "fit", digest([key, cfg.model_dump()]), work, [out, self.folder / "ladder.json"]
        )
        return key, out

    def solve(self, key: str, model: Path) -> tuple[str, Path]:

        out = self.folder / "plan.yaml"
        config = load_config(self.base / self.config.sweep.allocate)
        config = config.model_copy(update={"model": str(model), "name": f"{self.config.name}-plan"})

        def work(_: bool) -> None:
            save_plan(solve_plan(config, self.ws, model_name=str(model)), out)

        return self.state.run("solve", digest([key, files_digest([model])]), work, [out]), out

    def run(self) -> Path:
        data_key = self.timed("data", self.study.data_stages)
        key, sweep_path = self.timed("design", lambda: self.design(data_key))
        self.timed("sweep", lambda: self.run_sweep(sweep_path, key))
        if self.config.findings:
            self.models = self.timed("findings", lambda: self.findings(sweep_path, key))
        fit_key, model = self.timed("fit", lambda: self.fit(key))
        _, plan = self.timed("solve", lambda: self.solve(fit_key, model))
        if self.config.verify.enabled:
            # keyed on the data and the plan's content (not the fit), as `fl allocate verify` is
            self.verify_result = self.timed(
                "verify", lambda: verify_plan(plan, model, self, data_key, self.config.fit.metric)
            )
        self.html = write_html(self.ws)
        return self.folder

    def summary(self) -> str:
        """What the loop did: stage times, the signal per phase, the fit's ladder, the findings'
        verdicts and the verify table; also written to loop.txt."""

        report = loop_report(self)
        (self.folder / "loop.txt").write_text(report + "\n")
        return report


def run_loop(path: str | Path, workspace: Workspace, force: bool = False) -> Loop:
    """Load LOOP.yaml and run it; finished stages and points are skipped."""

    path = Path(path)
    config = load_yaml(path, LoopConfig)
    check_workspace(workspace, config.name, force)
    base = path.resolve().parent
    from frontload.train.posttrain.recipe import SFTRecipe
    from frontload.train.recipe import PretrainRecipe

    sweep = config.sweep
    merged(base, sweep.pretrain, sweep.pretrain_overrides, PretrainRecipe, {"name": "check"})
    merged(base, sweep.sft, sweep.sft_overrides, SFTRecipe, {"name": "check", "model": "check"})
    loop = Loop(config, base, workspace)
    loop.run()
    return loop
