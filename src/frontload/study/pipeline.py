"""`fl run PIPELINE.yaml`: the whole study as one resumable job.

Each stage gets a key: the hash of its configuration (recipe text plus overrides) and the keys of
the stages it reads from (raw inputs are hashed by content). A stage whose key and outputs are
already recorded in <workspace>/pipeline/<name>/state.json is skipped; a stage whose key changed
is redone from scratch; a stage interrupted with the same key resumes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frontload.config import read_yaml, validate
from frontload.errors import ConfigError, InputError
from frontload.evaluate.tasks.sources import store_folder
from frontload.progress import console
from frontload.study.config import Arm, PipelineConfig, SFTArm, load_pipeline
from frontload.study.guard import check_workspace
from frontload.study.html_report import write_html
from frontload.workspace import Workspace


def digest(material: Any) -> str:
    """Stable short hash of JSON-able material."""
    blob = json.dumps(material, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def files_digest(paths: list[Path]) -> str:
    """Content hash of files (sorted by path)."""
    hasher = hashlib.sha256()
    for path in sorted(paths):
        hasher.update(str(path.name).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
    return hasher.hexdigest()[:16]


class StageState:
    """state.json: finished stage -> key, started stage -> key (to tell resume from redo)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "state.json"
        folder.mkdir(parents=True, exist_ok=True)
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.data.setdefault("done", {})
        self.data.setdefault("started", {})
        self.ran: list[str] = []
        self.skipped: list[str] = []

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)

    def run(
        self,
        stage: str,
        key: str,
        work: Callable[[bool], None],
        outputs: list[Path],
    ) -> str:
        """Skip when up to date; else wipe stale outputs (or resume) and run `work(resume)`."""
        if self.data["done"].get(stage) == key and all(p.exists() for p in outputs):
            self.skipped.append(stage)
            console.print(f"[dim]skip {stage} (up to date)[/dim]")
            return key
        resume = self.data["started"].get(stage) == key
        if not resume:
            for path in outputs:
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        self.data["started"][stage] = key
        self.data["done"].pop(stage, None)
        self._save()
        console.print(f"[bold]{stage}[/bold]" + (" (resuming)" if resume else ""))
        work(resume)
        self.data["done"][stage] = key
        self._save()
        self.ran.append(stage)
        return key


def recipe_material(base: Path, path: str, overrides: dict) -> dict:
    """A recipe file's parsed content plus overrides: what decides its stage's output."""
    return {"recipe": read_yaml(base / path), "overrides": overrides}


def merged(base: Path, path: str, overrides: dict, model, extra: dict | None = None):
    """Load a recipe file, apply overrides (top-level keys), validate as `model`."""
    data = read_yaml(base / path) or {}
    data = {**data, **overrides, **(extra or {})}
    return validate(model, data, f"{base / path} (with pipeline overrides)")


class Study:
    """Runs the stages of one pipeline file against one workspace."""

    def __init__(self, config: PipelineConfig, base: Path, workspace: Workspace) -> None:
        self.config, self.base, self.ws = config, base, workspace.ensure()
        self.folder = workspace.root / "pipeline" / config.name
        self.state = StageState(self.folder)
        self.models: list[dict] = []
        self.report: tuple[Path, Path, dict] | None = None
        self.html: Path | None = None  # reports/report.html, written at the end of a run
        self.seed: int | None = None  # the seed being trained; None: the recipes' own seeds

    @property
    def many_seeds(self) -> bool:
        return len(self.config.seeds) > 1

    def run_name(self, *parts: str) -> str:
        """Run folder name; with several seeds each seed's runs get an `_s<seed>` suffix."""
        seed = [f"s{self.seed}"] if self.many_seeds else []
        return "_".join([self.config.name, *parts, *seed]).lower().replace("-", "_")

    def stage_name(self, *parts: str) -> str:
        seed = [f"seed{self.seed}"] if self.many_seeds else []
        return "/".join([*parts, *seed])

    def seeded(self, overrides: dict) -> dict:
        """Overrides plus the seed under way (the pipeline's `seeds:` set it for every run)."""
        if "seeds" not in self.config.model_fields_set:
            return overrides
        return {**overrides, "seed": self.seed}

    def tags(self) -> dict:
        return {"seed": self.seed}

    def record_model(self, model: dict) -> None:
        """Add a trained model to models.json at once, so `fl report study` works on the models
        finished so far while a long study is still running (or was stopped)."""
        self.models.append(model)
        (self.folder / "models.json").write_text(json.dumps(self.models, indent=2))

    # Data
    def data_stages(self) -> str:
        cfg, ws = self.config, self.ws
        key = digest({"sample": cfg.sample.model_dump() if cfg.sample else None})
        if cfg.sample:
            from frontload.quickstart.sample import generate_sample

            sample = cfg.sample
            key = self.state.run(
                "sample",
                key,
                lambda _: generate_sample(ws.root / "sample", sample.records, sample.seed),
                [ws.root / "sample"],
            )
        raw = [p for p in (ws.root / "sample").rglob("*") if p.is_file()] if cfg.sample else []
        key = digest([key, files_digest(raw), recipe_material(self.base, cfg.curate, {})])
        key = self.state.run(
            "curate", key, self._curate, [ws.pool_dir, ws.corpora_dir, ws.curate_state_dir]
        )
        tok_key = digest([key, cfg.tokenizer.model_dump()])
        self.state.run("tokenizer", tok_key, self._tokenizer, [])
        key = digest([key, tok_key, cfg.tokenize])
        return self.state.run("tokenize", key, self._tokenize, [ws.tokens_dir])

    def _curate(self, resume: bool) -> None:
        from frontload.curate.pipeline import run_curation
        from frontload.curate.recipe import load_recipe

        run_curation(load_recipe(self.base / self.config.curate), self.ws)

    def _tokenizer(self, resume: bool) -> None:
        """Keep the workspace tokenizer when it was trained for this vocab size (curation trains
        one for answer lengths); else train one of `tokenizer.vocab_size` on corpus text."""
        import pyarrow.parquet as pq

        from frontload.data.tokenizer import train_tokenizer, training_record

        record = training_record(self.ws.tokenizer_dir)
        if record and record.get("vocab_size_asked") == self.config.tokenizer.vocab_size:
            return
        texts = (
            text
            for name in self.config.tokenizer.corpora
            for part in sorted(self.ws.corpus_dir(name).glob("*.parquet"))
            for text in pq.read_table(part, columns=["text"]).column("text").to_pylist()
        )
        train_tokenizer(texts, self.config.tokenizer.vocab_size, self.ws.tokenizer_dir)

    def _tokenize(self, resume: bool) -> None:
        from frontload.data.tokenize import tokenize_corpus

        for corpus in self.config.tokenize:
            tokenize_corpus(self.ws, corpus, self.ws.tokenizer_dir, progress=False)

    # Allocation and training
    def plan_stage(self, data_key: str) -> tuple[str, Path | None]:
        if not self.config.allocate:
            return data_key, None
        from frontload.allocate.solve import solve_file

        path = self.base / self.config.allocate
        out = self.folder / "plan.yaml"
        key = digest([data_key, recipe_material(self.base, self.config.allocate, {})])
        key = self.state.run("allocate", key, lambda _: solve_file(path, self.ws, out=out), [out])
        return key, out

    def pretrain_arm(self, arm: Arm, data_key: str, plan_key: str, plan: Path | None) -> str:
        from frontload.train.launch import launch_pretraining
        from frontload.train.recipe import PretrainRecipe

        name = self.run_name(arm.name)
        overrides = self.seeded({**self.config.pretrain_overrides, **arm.overrides})
        recipe = merged(self.base, arm.pretrain, overrides, PretrainRecipe, {"name": name})
        use_plan = plan if arm.use_plan else None
        if arm.use_plan and plan is None:
            raise ConfigError(f"arm {arm.name} uses the plan but the pipeline has no allocate:")

        def work(resume: bool) -> None:
            from frontload.plan import load_plan, scaled_plan

            loaded = load_plan(use_plan) if use_plan else None
            if loaded is not None and recipe.total_tokens:  # the arms' budget: the plan's shares
                loaded = scaled_plan(loaded, recipe.total_tokens)
            # torchrun when the recipe asks for several processes
            launch_pretraining(recipe, self.ws, plan=loaded, resume=resume)

        material = [data_key, plan_key if use_plan else None, recipe.model_dump(mode="json")]
        key = self.state.run(
            self.stage_name("pretrain", arm.name), digest(material), work, [self.ws.runs_dir / name]
        )
        self.evaluate(f"{name}-base", self.ws.runs_dir / name / "hf", "base", key)
        self.record_model(
            {"model": arm.name, "pt_reasoning": arm.pt_reasoning, "sft_data": "", "rl": 0}
            | {"stage": "base", "run": name, "eval": f"{name}-base", "arm": arm.name}
            | {"sft_scale": 0, **self.tags()}
        )
        return key

    def sft_arm(self, arm: Arm, sft_arm: SFTArm, pt_key: str) -> str:
        from frontload.train.posttrain.recipe import SFTRecipe
        from frontload.train.posttrain.sft import sft

        name = self.run_name(arm.name, "sft", sft_arm.label)
        model = f"runs/{self.run_name(arm.name)}/hf"
        overrides = self.seeded(sft_arm.overrides)
        recipe = merged(
            self.base, sft_arm.recipe, overrides, SFTRecipe, {"name": name, "model": model}
        )
        key = digest([pt_key, recipe.model_dump(mode="json")])
        key = self.state.run(
            self.stage_name("sft", arm.name, sft_arm.label),
            key,
            lambda resume: sft(recipe, self.ws, resume=resume),
            [self.ws.runs_dir / name],
        )
        self.evaluate(name, self.ws.runs_dir / name / "hf", "chat", key)
        self.record_model(
            {"model": f"{arm.name}+SFT_{sft_arm.label}", "pt_reasoning": arm.pt_reasoning}
            | {"sft_data": sft_arm.name, "rl": 0, "stage": "sft", "run": name, "eval": name}
            | {"arm": arm.name, "sft_scale": sft_arm.scale, **self.tags()}
        )
        return key

    def rl_arm(self, arm: Arm, sft_key: str) -> None:
        from frontload.train.posttrain.recipe import RLRecipe
        from frontload.train.posttrain.rl import rl

        stage = self.config.rl
        name = self.run_name(arm.name, "sft", stage.sft, "rl")
        model = f"runs/{self.run_name(arm.name, 'sft', stage.sft)}/hf"
        recipe = merged(
            self.base,
            stage.recipe,
            self.seeded(stage.overrides),
            RLRecipe,
            {"name": name, "model": model},
        )
        key = digest([sft_key, recipe.model_dump(mode="json")])
        key = self.state.run(
            self.stage_name("rl", arm.name),
            key,
            lambda resume: rl(recipe, self.ws, resume=resume),
            [self.ws.runs_dir / name],
        )
        self.evaluate(name, self.ws.runs_dir / name / "hf", "chat", key)
        self.record_model(
            {"model": f"{arm.name}+SFT_{stage.sft}+RL", "pt_reasoning": arm.pt_reasoning}
            | {"sft_data": stage.sft, "rl": 1, "stage": "rl", "run": name, "eval": name}
            | {"arm": arm.name, "sft_scale": 1, **self.tags()}
        )

    def evaluate(self, run: str, model_dir: Path, mode: str, upstream: str) -> None:
        from frontload.evaluate.runner import EvalSettings, run_evaluation

        cfg = self.config.evaluate
        tasks = cfg.base_tasks if mode == "base" else cfg.chat_tasks
        settings = EvalSettings(
            model=str(model_dir),
            tasks=tasks,
            mode=mode,
            limit=cfg.limit,
            task_limits={t: n for t, n in cfg.task_limits.items() if t in tasks},
            draw_seed=cfg.draw_seed,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
            shots=cfg.shots,
            data_dir=self.bench_dir(),
            benchmark_store=str(store_folder(self.ws.root)),
            workers=1,
        )
        out = self.ws.evals_dir / run
        key = digest([upstream, settings.model_dump(mode="json")])
        self.state.run(f"evaluate/{run}", key, lambda _: run_evaluation(settings, out), [out])

    def bench_dir(self) -> str | None:
        """evaluate.data_dir (relative to the pipeline file), searched before the workspace store,
        $FL_BENCH_DIR and the files shipped with fl; None when the pipeline names none."""
        given = self.config.evaluate.data_dir
        if given is None:
            return None
        folder = self.base / given
        if not folder.is_dir():
            raise InputError(
                f"benchmark folder not found: evaluate.data_dir {given!r} (from {self.base})",
                hint="fix the path, or drop evaluate.data_dir to use the workspace store, "
                "$FL_BENCH_DIR or the files shipped with fl",
            )
        return str(folder.resolve())

    def run(self) -> Path:
        """All stages in order; returns the pipeline folder (input of `fl report study`)."""
        self.bench_dir()  # a named benchmark folder that is missing stops the study now
        data_key = self.data_stages()
        plan_key, plan = self.plan_stage(data_key)
        # Every base model (all arms, all seeds) first, then post-training: a study stopped early
        # already compares the arms' base models with their seed noise measured.
        pt_keys = {}
        for seed in self.config.seeds:
            self.seed = seed
            for arm in self.config.arms:
                pt_keys[seed, arm.name] = self.pretrain_arm(arm, data_key, plan_key, plan)
        for seed in self.config.seeds:
            self.seed = seed
            for arm in self.config.arms:
                sft_keys = {
                    s.label: self.sft_arm(arm, s, pt_keys[seed, arm.name])
                    for s in self.config.sft
                    if s.arms is None or arm.name in s.arms
                }
                if self.config.rl and arm.name in self.config.rl.arms:
                    self.rl_arm(arm, sft_keys[self.config.rl.sft])
        (self.folder / "models.json").write_text(json.dumps(self.models, indent=2))
        report_json = json.dumps(self.config.report.model_dump(mode="json"), indent=2)
        (self.folder / "report.json").write_text(report_json)
        from frontload.study.report import write_report

        self.report = write_report(self.folder, self.ws)
        self.html = write_html(self.ws)
        return self.folder


def check_recipes(config: PipelineConfig, base: Path) -> None:
    """Validate every training recipe with its overrides now, not hours in when its stage starts."""
    from frontload.train.posttrain.recipe import RLRecipe, SFTRecipe
    from frontload.train.recipe import PretrainRecipe

    extra = {"name": "check", "model": "check"}
    for arm in config.arms:
        overrides = {**config.pretrain_overrides, **arm.overrides}
        merged(base, arm.pretrain, overrides, PretrainRecipe, {"name": "check"})
    for sft_arm in config.sft:
        merged(base, sft_arm.recipe, sft_arm.overrides, SFTRecipe, extra)
    if config.rl:
        merged(base, config.rl.recipe, config.rl.overrides, RLRecipe, extra)


def run_pipeline(path: str | Path, workspace: Workspace, force: bool = False) -> Study:
    """Load PIPELINE.yaml and run it; stages already up to date are skipped. A workspace holding
    another pipeline's results is refused unless `force`."""
    config, base = load_pipeline(path)
    unknown = sorted(
        {a for a in (config.rl.arms if config.rl else [])} - {a.name for a in config.arms}
    )
    if unknown:
        raise ConfigError(f"{path}: rl.arms names unknown arms {unknown}")
    if config.rl and config.rl.sft not in {s.label for s in config.sft}:
        raise ConfigError(f"{path}: rl.sft {config.rl.sft!r} is not one of the sft datasets")
    arm_names = {a.name for a in config.arms}
    for sft_arm in config.sft:
        strangers = sorted(set(sft_arm.arms or []) - arm_names)
        if strangers:
            raise ConfigError(
                f"{path}: sft {sft_arm.label}: arms {strangers} are not pretraining arms",
                hint=f"use arm names from arms: ({', '.join(sorted(arm_names))})",
            )
    labels = [s.label for s in config.sft]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{path}: sft datasets repeat ({labels}); give each a name or scale")
    check_recipes(config, base)
    check_workspace(workspace, config.name, force)
    study = Study(config, base, workspace)
    study.run()
    return study
