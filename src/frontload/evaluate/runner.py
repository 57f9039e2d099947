"""`fl evaluate run`: generate (or score choices), grade, and write samples and a summary per run.

Work is cut into fixed chunks of (problem, sample) pairs; each finished chunk is written as a parquet
part under `parts/` before the next starts, so an interrupted run resumes where it stopped and, with
per-chunk seeds, produces the same completions it would have produced without the interruption.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from frontload.config import StrictModel
from frontload.errors import ConfigError, InputError
from frontload.evaluate import likelihood, metrics
from frontload.evaluate.likelihood import Gold
from frontload.evaluate.tasks import parse_tasks
from frontload.evaluate.tasks.base import Graded, Sample, Task, file_hash
from frontload.evaluate.tasks.files import apply_limits, check_task_names, load_task_records
from frontload.evaluate.tasks.sources import BenchFiles
from frontload.grading.sandbox import sandbox_mode

SAMPLE_COLUMNS = (
    "task",
    "problem",
    "sample",
    "prompt",
    "completion",
    "answer",
    "reference",
    "verdict",
    "rule",
    "detail",
    *metrics.LIKELIHOOD_METRICS,
)
FLOAT_COLUMNS = frozenset(metrics.LIKELIHOOD_METRICS)


class EvalSettings(StrictModel):
    """Everything that determines an evaluation run's results (written into its summary)."""

    model: str = Field(description="Local Hugging Face model folder (config.json + tokenizer).")
    tasks: list[str] = Field(description="Task names, e.g. [gsm8k, math500].")
    mode: Literal["base", "chat"] = Field(
        "base", description="base (few-shot, log-likelihood) or chat (chat template)."
    )
    samples: int = Field(1, ge=1, description="Completions per problem (k of avg@k / pass@k).")
    temperature: float = Field(0.0, ge=0.0, description="Sampling temperature; 0 means greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling threshold.")
    max_new_tokens: int | None = Field(
        None, ge=1, description="Cap on generated tokens (default: per task)."
    )
    seed: int = Field(
        0, description="Base seed; each chunk is seeded from it, the task and the chunk index."
    )
    batch_size: int = Field(8, ge=1, description="Prompts per generation batch (one chunk).")
    limit: int | None = Field(
        None, ge=1, description="Evaluate only the first N problems of each task."
    )
    task_limits: dict[str, int] = Field(
        default_factory=dict, description="Per task, a `limit` of its own (e.g. {gsm8k: 64})."
    )
    draw_seed: int | None = Field(
        None,
        description="With `limit`: N problems per task drawn at random with this seed instead of "
        "the first N (the first N of a file are often one topic or one author).",
    )
    shots: int | None = Field(
        None, ge=0, description="Few-shot examples (default: the study's per task)."
    )
    data_dir: str | None = Field(
        None, description="Folder with benchmark files, searched before the others."
    )
    benchmark_store: str | None = Field(
        None,
        description="The workspace's benchmark store (`fl evaluate add-benchmark`), searched "
        "after data_dir and before $FL_BENCH_DIR and the files shipped with fl.",
    )
    hub: bool = Field(
        False, description="Load each task's dataset from the hub (hf: names) instead."
    )
    workers: int = Field(2, ge=1, description="Grading processes (Math-Verify, code sandbox).")
    task_files: dict[str, str] = Field(
        default_factory=dict, description="Per task, a file to read instead of its default."
    )
    fields: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per task, field mapping {task field: file field} (dotted paths allowed).",
    )
    sandbox_limits: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per code task, sandbox limits to override (timeout_s, memory_mb, ...).",
    )

    @model_validator(mode="after")
    def _sampling_needs_temperature(self) -> EvalSettings:
        # k greedy completions are k copies: avg@k and pass@k would silently equal avg@1
        if self.samples > 1 and self.temperature == 0:
            raise ValueError(
                f"samples {self.samples} with temperature 0 gives identical greedy completions; "
                "set --temperature (e.g. 0.6) or --samples 1"
            )
        return self


def _chunk_seed(seed: int, task: str, chunk: int) -> int:
    digest = hashlib.sha256(f"{seed}/{task}/{chunk}".encode()).hexdigest()
    return int(digest[:8], 16)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("frontload", "torch", "transformers", "math-verify", "tokenizers"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def _part_done(path: Path, rows: int) -> bool:
    """A chunk counts as done when its part exists with all its rows (a longer --limit refills
    the previously last, shorter chunk)."""
    import pyarrow.parquet as pq

    if not path.exists():
        return False
    try:
        found = pq.ParquetFile(path)
        # parts written before the likelihood columns existed are redone, not mixed in
        return found.metadata.num_rows == rows and set(SAMPLE_COLUMNS) <= set(found.schema.names)
    except Exception:  # noqa: BLE001 - a damaged part is simply redone
        return False


def write_part(rows: list[dict], path: Path) -> None:
    """Sample rows as parquet with a fixed schema, written atomically (write, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"sample": pa.int64()} | {name: pa.float64() for name in FLOAT_COLUMNS}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in SAMPLE_COLUMNS])
    columns = {
        name: [
            row.get(name) if name in types or row.get(name) is None else str(row[name])
            for row in rows
        ]
        for name in SAMPLE_COLUMNS
    }
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(columns, schema=schema), tmp)
    tmp.replace(path)


def grade_rows(
    task: Task,
    items: list[tuple[Sample, int]],
    prompts: list[str],
    completions: list[str],
    workers: int,
    by_index: bool = False,
) -> list[dict]:
    """Grade one chunk; a grader crash becomes an `error` verdict on its rows, never a crashed run."""
    samples = [sample for sample, _ in items]
    try:
        if by_index:
            graded = [
                task.grade_index(s, int(c)) for s, c in zip(samples, completions, strict=True)
            ]
        else:
            graded = task.grade(samples, completions, workers=workers)
    except Exception as error:  # noqa: BLE001 - recorded per sample, the run goes on
        graded = [Graded(None, "error", "grader", f"{type(error).__name__}: {error}")] * len(
            samples
        )
    return [
        {
            "task": task.name,
            "problem": sample.id,
            "sample": index,
            "prompt": prompt,
            "completion": completion,
            "answer": g.answer,
            "reference": sample.reference if isinstance(sample.reference, (str, int)) else None,
            "verdict": g.verdict,
            "rule": g.rule,
            "detail": g.detail[:2000],
        }
        for (sample, index), prompt, completion, g in zip(
            items, prompts, completions, graded, strict=True
        )
    ]


class Evaluator:
    """Holds the model once for all tasks of a run."""

    def __init__(self, settings: EvalSettings, out_dir: Path) -> None:
        self.settings = settings
        self.out_dir = out_dir
        self.parts = out_dir / "parts"
        self._model = None

    def model(self):
        if self._model is None:
            from frontload.evaluate.generation import load_model

            self._model = load_model(self.settings.model)
        return self._model

    def uses_loglik(self, task: Task) -> bool:
        return task.chat_loglik or (task.loglik and self.settings.mode == "base")

    def run_task(
        self,
        task: Task,
        samples: list[Sample],
        progress,
        bar,
        golds: dict[str, Gold | None] | None = None,
    ) -> list[Path]:
        """Generate/score, grade and measure likelihoods of every chunk not already on disk;
        returns the task's parts."""
        from frontload.evaluate import generation

        k = 1 if self.uses_loglik(task) else self.settings.samples
        items = [(sample, j) for sample in samples for j in range(k)]
        size = self.settings.batch_size
        chat = self.settings.mode == "chat"
        golds = golds or {}
        paths = []
        for chunk, start in enumerate(range(0, len(items), size)):
            path = self.parts / f"{task.name}-{chunk:06d}.parquet"
            paths.append(path)
            batch = items[start : start + size]
            if not _part_done(path, len(batch)):
                model, tokenizer = self.model()
                chunk_samples = [s for s, _ in batch]
                prompts = [
                    generation.render_prompt(tokenizer, s.prompt, chat) for s in chunk_samples
                ]
                choice_scores = None
                if self.uses_loglik(task):
                    completions, choice_scores = self._choose(
                        model, tokenizer, task, chunk_samples, prompts
                    )
                else:
                    completions = generation.generate(
                        model,
                        tokenizer,
                        prompts,
                        max_new_tokens=self.settings.max_new_tokens or task.max_new_tokens,
                        temperature=self.settings.temperature,
                        top_p=self.settings.top_p,
                        seed=_chunk_seed(self.settings.seed, task.name, chunk),
                        stop=task.stop if not chat else (),
                    )
                rows = grade_rows(
                    task,
                    batch,
                    prompts,
                    completions,
                    self.settings.workers,
                    by_index=self.uses_loglik(task),
                )
                # one teacher-forced pass per problem, stored on its sample-0 row
                first = [i for i, (_, j) in enumerate(batch) if j == 0]
                measured = likelihood.score_samples(
                    model,
                    tokenizer,
                    task,
                    [chunk_samples[i] for i in first],
                    [prompts[i] for i in first],
                    [golds.get(chunk_samples[i].id) for i in first],
                    chat,
                    self.settings.batch_size,
                    [choice_scores[i] for i in first] if choice_scores is not None else None,
                )
                by_problem = {chunk_samples[i].id: m for i, m in zip(first, measured, strict=True)}
                for row in rows:
                    if row["sample"] == 0:
                        row.update(by_problem.get(row["problem"], {}))
                write_part(rows, path)
            progress.advance(bar, len(batch))
        return paths

    def _choose(
        self, model, tokenizer, task: Task, samples: list[Sample], prompts: list[str]
    ) -> tuple[list[str], list[list[float]]]:
        """The chosen option of each sample (as its index) and every option's log-likelihood."""
        from frontload.evaluate.generation import loglik

        pairs, owners = [], []
        for i, (sample, prompt) in enumerate(zip(samples, prompts, strict=True)):
            contexts = sample.meta.get("contexts") or [prompt] * len(sample.choices or [])
            for context, choice in zip(contexts, sample.choices or [], strict=True):
                pairs.append((context, choice))
                owners.append(i)
        scores = loglik(model, tokenizer, pairs, batch_size=self.settings.batch_size)
        best: dict[int, tuple[float, int]] = {}
        raw: list[list[float]] = [[] for _ in samples]
        for (_, choice), owner, score in zip(pairs, owners, scores, strict=True):
            index = len(raw[owner])
            raw[owner].append(score)
            value = score / max(1, len(choice)) if getattr(task, "normalize", False) else score
            if owner not in best or value > best[owner][0]:
                best[owner] = (value, index)
        return [str(best[i][1]) for i in range(len(samples))], raw


def run_evaluation(settings: EvalSettings, out_dir: Path) -> list[dict]:
    """Evaluate every task; write samples.parquet and summary.json; return the summary rows."""
    from frontload.progress import make_progress

    tasks = parse_tasks(",".join(settings.tasks))
    check_task_names(
        [task.name for task in tasks],
        task_file=settings.task_files,
        field=settings.fields,
        sandbox_limit=settings.sandbox_limits,
        task_limit=settings.task_limits,
    )
    if not (Path(settings.model) / "config.json").is_file():
        raise InputError(
            f"{settings.model} is not a model folder (no config.json)",
            hint="pass --model pointing at an exported checkpoint (runs/<run>/hf/)",
        )
    files = BenchFiles.for_run(settings.data_dir, settings.benchmark_store)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_same_settings(settings, out_dir)
    evaluator = Evaluator(settings, out_dir)
    evaluator.parts.mkdir(exist_ok=True)
    prepared = []
    for task in tasks:
        source = hub_source(task) if settings.hub else None
        apply_limits(task, settings.sandbox_limits.get(task.name, {}))
        if task.category == "code":
            sandbox_mode()  # no sandbox and no opt-in: refuse before generating anything
        location, records = load_task_records(
            task, files, source, settings.task_files, settings.fields
        )
        limit = settings.task_limits.get(task.name, settings.limit)
        records = pick_problems(records, limit, settings.draw_seed)
        samples = task.build(records, settings.mode, settings.shots, files)
        golds = gold_solutions(task, samples, records, settings.mode)
        prepared.append((task, samples, location, golds))
    total = sum(
        len(s) * (1 if evaluator.uses_loglik(t) else settings.samples) for t, s, _, _ in prepared
    )
    started = time.monotonic()
    parts: list[Path] = []
    with make_progress() as progress:
        bar = progress.add_task("evaluating", total=total, status="")
        for task, samples, _, golds in prepared:
            progress.update(bar, status=task.name)
            parts += evaluator.run_task(task, samples, progress, bar, golds)
    rows = summarise(settings, out_dir, prepared, parts, time.monotonic() - started)
    return rows


def pick_problems(records: list[dict], limit: int | None, seed: int | None) -> list[dict]:
    """The first `limit` records, or `limit` drawn at random with `seed` (kept in file order)."""
    if not limit or limit >= len(records):
        return records
    if seed is None:
        return records[:limit]
    import random

    chosen = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in chosen]


def gold_solutions(
    task: Task, samples: list[Sample], records: list[dict], mode: str
) -> dict[str, Gold | None]:
    """Problem id -> gold solution. Tasks build one sample per record, in order; a task that does
    not (its count differs) gets no solution metrics rather than misaligned ones."""
    if len(samples) != len(records):
        return {}
    return {
        sample.id: likelihood.gold_solution(task, sample, record, mode)
        for sample, record in zip(samples, records, strict=True)
    }


def hub_source(task: Task) -> str:
    """`hf:<name>` for tasks published on the hub; the others need local files."""
    if not task.hf_name:
        raise InputError(
            f"task {task.name} has no hub dataset", hint="pass its file with --data-dir instead"
        )
    return f"hf:{task.hf_name}"


def _check_same_settings(settings: EvalSettings, out_dir: Path) -> None:
    """Resuming with different settings would mix incomparable samples: refuse."""
    saved = out_dir / "settings.json"
    current = settings.model_dump(mode="json")
    if saved.exists():
        previous = json.loads(saved.read_text())
        changed = sorted(
            key
            for key in current
            if key not in ("tasks", "limit", "workers") and previous.get(key) != current[key]
        )
        if changed:
            raise ConfigError(
                f"{out_dir} holds a run with different settings ({', '.join(changed)})",
                hint="use a new --out folder, or the same settings to resume",
            )
    saved.write_text(json.dumps(current, indent=2))


def summarise(
    settings: EvalSettings, out_dir: Path, prepared, parts: list[Path], seconds: float
) -> list[dict]:
    """Merge the parts into samples.parquet and write one summary row per task."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from frontload.grading.sandbox import isolation_summary

    table = pa.concat_tables([pq.read_table(p) for p in parts]) if parts else None
    if table is not None:
        tmp = out_dir / "samples.parquet.tmp"
        pq.write_table(table, tmp)
        tmp.replace(out_dir / "samples.parquet")
    records = table.to_pylist() if table is not None else []
    versions = library_versions()
    rows = []
    for task, samples, location, _ in prepared:
        ids = {s.id for s in samples}
        mine = [r for r in records if r["task"] == task.name and r["problem"] in ids]
        per_problem = metrics.group_by_problem(
            (r["problem"], r["verdict"] == "passed") for r in mine
        )
        scores = metrics.task_scores(per_problem, ks=(1, settings.samples))
        once = [r for r in mine if r["sample"] == 0]  # likelihoods are per problem
        rows.append(
            {
                "run": out_dir.name,
                "train_run": training_run(settings.model),
                "model": settings.model,
                "model_name": Path(settings.model).name,
                "mode": settings.mode,
                "task": task.name,
                "task_version": task.version,
                "category": task.category,
                "data": location.path,
                "data_from": location.label,
                "data_hash": file_hash(location.path)
                if os.path.isfile(location.path)
                else location.path,
                "score": scores["avg_at_k"],
                **scores,
                **{
                    name: metrics.mean_defined(r.get(name) for r in once)
                    for name in metrics.LIKELIHOOD_METRICS
                },
                "settings": settings.model_dump(mode="json"),
                "versions": versions,
                "sandbox": isolation_summary() if task.category == "code" else None,
                "seconds": round(seconds, 2),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
    add_category_means(rows)
    tmp = out_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(rows, indent=2))
    tmp.replace(out_dir / "summary.json")
    return rows


def training_run(model: str) -> str | None:
    """The training run a checkpoint came from: `.../runs/<run>/hf` -> <run> (None otherwise)."""
    path = Path(model)
    if path.name == "hf" and path.parent.parent.name == "runs":
        return path.parent.name
    return None


def add_category_means(rows: list[dict]) -> None:
    """Each row gets `category_means`: its category's mean score and likelihood metrics over the
    run's tasks of that category (rows stay one per task, as the catalog view expects)."""
    for row in rows:
        peers = [r for r in rows if r["category"] == row["category"]]
        row["category_means"] = {
            name: metrics.mean_defined(r.get(name) for r in peers)
            for name in ("score", *metrics.LIKELIHOOD_METRICS)
        }
