"""`fl run LOOP.yaml`: design -> run every point x seed -> fit -> solve -> verify, resumably.

The data stages (sample, curate, tokenizer, tokenize) and evaluation are the study pipeline's own
(`frontload.study.pipeline.Study`); each point x seed is a pretraining run on the point's plan, an
SFT run on the same plan, and an evaluation, every one a stage of the same state file, so a rerun
skips finished points and resumes the one that was interrupted. The trainers record what they
really served (runs/*/served.jsonl); the fit reads that, never the plans' intent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from frontload.config import StrictModel, load_yaml, read_yaml
from frontload.progress import console
from frontload.study.config import EvalStage, SampleStage, TokenizerStage
from frontload.study.html_report import write_html
from frontload.study.pipeline import Study, digest, files_digest, merged
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
    verify: bool = Field(True, description="Train the solved plan against its baselines.")
    evaluate: EvalStage = Field(default_factory=EvalStage, description="Evaluation of every run.")


def is_loop(path: str | Path) -> bool:
    """A pipeline file with a `sweep:` section is a loop, not a study."""
    data = read_yaml(path)
    return isinstance(data, dict) and "sweep" in data


class Loop:
    """Runs one loop file against one workspace; stage timings go to timings.json."""

    def __init__(self, config: LoopConfig, base: Path, workspace: Workspace) -> None:
        from frontload.study.config import PipelineConfig

        data = config.model_dump(include={"name", "sample", "curate", "tokenizer", "tokenize"})
        pipeline = PipelineConfig(**data, arms=[], evaluate=config.evaluate)
        self.config, self.base = config, base
        self.study = Study(pipeline, base, workspace)
        self.ws, self.folder, self.state = self.study.ws, self.study.folder, self.study.state
        self.timings: dict[str, float] = {}
        self.fit_result = None
        self.verify_rows: list[dict] = []
        self.html: Path | None = None  # reports/report.html, written at the end of a run

    def timed(self, label: str, work) -> Any:
        start = time.perf_counter()
        try:
            return work()
        finally:
            self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - start
            (self.folder / "timings.json").write_text(json.dumps(self.timings, indent=2))

    def design(self, data_key: str) -> tuple[str, Path]:
        from frontload.allocate.design import write_sweep

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
        """Pretrain and fine-tune on one plan with one seed, then evaluate; returns the SFT run."""
        from frontload.plan import load_plan
        from frontload.train.posttrain.recipe import SFTRecipe
        from frontload.train.posttrain.sft import sft
        from frontload.train.pretrain import pretrain
        from frontload.train.recipe import PretrainRecipe

        cfg = self.config.sweep
        plan = load_plan(plan_path)
        pt_name = f"{plan.name}_s{seed}".lower().replace("-", "_")  # plan names hold the loop's
        sft_name = f"{pt_name}_sft"
        pt = merged(
            self.base,
            cfg.pretrain,
            cfg.pretrain_overrides,
            PretrainRecipe,
            {"name": pt_name, "seed": seed},
        )
        ft = merged(
            self.base,
            cfg.sft,
            cfg.sft_overrides,
            SFTRecipe,
            {"name": sft_name, "seed": seed, "model": f"runs/{pt_name}/hf"},
        )
        plan_key = files_digest([plan_path])
        key = digest([upstream, plan_key, pt.model_dump(mode="json")])
        key = self.state.run(
            f"{stage}/pretrain/{pt_name}",
            key,
            lambda resume: pretrain(pt, self.ws, plan=plan, resume=resume),
            [self.ws.runs_dir / pt_name],
        )
        key = digest([key, ft.model_dump(mode="json")])
        key = self.state.run(
            f"{stage}/sft/{sft_name}",
            key,
            lambda resume: sft(ft, self.ws, plan=plan_path, resume=resume),
            [self.ws.runs_dir / sft_name],
        )
        self.study.evaluate(sft_name, self.ws.runs_dir / sft_name / "hf", "chat", key)
        return sft_name

    def run_sweep(self, sweep_path: Path, key: str) -> list[str]:
        from frontload.allocate.design import load_sweep

        sweep, base = load_sweep(sweep_path)
        runs = []
        total = len(sweep.points) * len(self.config.sweep.seeds)
        for point in sweep.points:
            for seed in self.config.sweep.seeds:
                console.print(f"[dim]sweep point {len(runs) + 1}/{total}: {point.name} seed {seed}")
                runs.append(self.train_point("sweep", base / point.plan, seed, key))
        return runs

    def fit(self, key: str) -> tuple[str, Path]:
        from frontload.allocate.experiments import build_table, write_csv
        from frontload.allocate.ladder import fit_runs, write_ladder
        from frontload.allocate.solve import load_config, resolve_pools
        from frontload.config import dump_yaml

        out = self.folder / "model.yaml"
        cfg = self.config.fit

        def work(_: bool) -> None:
            rows = build_table(self.ws, cfg.metric)
            write_csv(rows, self.folder / "experiments.csv")
            pools = resolve_pools(load_config(self.base / self.config.sweep.allocate), self.ws)
            result = fit_runs(rows, pools, cfg.metric, cfg.bootstrap)
            dump_yaml(result.model, out)
            write_ladder(result.ladder, self.folder / "ladder.json")

        key = self.state.run(
            "fit", digest([key, cfg.model_dump()]), work, [out, self.folder / "ladder.json"]
        )
        return key, out

    def solve(self, key: str, model: Path) -> tuple[str, Path]:
        from frontload.allocate.solve import load_config, solve_plan
        from frontload.plan import save_plan

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
        key, model = self.timed("fit", lambda: self.fit(key))
        key, plan = self.timed("solve", lambda: self.solve(key, model))
        if self.config.verify:
            from frontload.allocate.verify import verify_plan

            # keyed on the data and the plan's content (not the fit), as `fl allocate verify` is
            self.verify_rows = self.timed(
                "verify", lambda: verify_plan(plan, model, self, data_key, self.config.fit.metric)
            )
            # the verify table as data, for `fl report html` (study.html_results.verify_section)
            verify_json = json.dumps(self.verify_rows, indent=2, allow_nan=True)
            (self.folder / "verify.json").write_text(verify_json + "\n")
        self.html = write_html(self.ws)
        return self.folder

    def summary(self) -> str:
        """What the loop did: stage times, the fit's comparison, the verify table."""
        lines = [
            f"loop {self.config.name}: ran {len(self.state.ran)} stages, "
            f"skipped {len(self.state.skipped)} up to date"
        ]
        lines += [f"  {stage:<8}{seconds:8.1f} s" for stage, seconds in self.timings.items()]
        model = self.folder / "model.yaml"
        if model.is_file():
            from frontload.allocate.ladder import format_ladder
            from frontload.allocate.model import load_model

            fitted = load_model(model)
            if fitted.ladder is not None:
                lines.append(format_ladder(fitted.ladder))
        if self.verify_rows:
            from frontload.allocate.verify import format_table

            lines.append(format_table(self.verify_rows, self.config.fit.metric))
        report = "\n".join(lines)
        (self.folder / "loop.txt").write_text(report + "\n")
        return report


def run_loop(path: str | Path, workspace: Workspace, force: bool = False) -> Loop:
    """Load LOOP.yaml and run it; finished stages and points are skipped."""
    from frontload.study.guard import check_workspace

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
