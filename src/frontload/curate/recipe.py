"""The curation recipe: sources, cleaning, dedup and decontamination settings, and the executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from frontload.config import StrictModel, load_yaml
from frontload.curate.corpora import CorporaConfig

Format = Literal["auto", "jsonl", "jsonl.gz", "parquet", "hf_disk"]
Preset = Literal[
    "prompt_response",
    "question_answer",
    "gsm8k",
    "math",
    "chat",
    "text",
    "sharegpt",
    "numina_cot",
    "openmathreasoning",
    "s1k",
    "limo",
    "openr1_math",
    "openthoughts",
    "bespoke_stratos",
]
ReferenceRule = Literal["field", "gsm8k", "boxed", "none"]
Siblings = Literal["verified", "all", "dedup"]

# ShareGPT role names (and the usual chat ones) -> the schema's roles.
DEFAULT_ROLES: dict[str, str] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}
THINK_TAGS = ("<think>", "</think>")
_SHAREGPT = {"messages": "conversations", "role_key": "from", "content_key": "value"}
_OPENTHOUGHTS = {
    **_SHAREGPT,
    "system": "system",
    "think_tags": ["<|begin_of_thought|>", "<|end_of_thought|>"],
    "answer_tags": ["<|begin_of_solution|>", "<|end_of_solution|>"],
}

# Named mappings: raw GSM8K, MATH, chat, plain-text dumps and the public long-CoT sets load by
# naming the preset alone (field names from the sets' published schemas; docs/readme/curate.md).
PRESETS: dict[str, dict[str, Any]] = {
    "prompt_response": {"prompt": "prompt", "response": "response"},
    "question_answer": {"prompt": "question", "response": "answer"},
    "gsm8k": {"prompt": "question", "response": "answer", "reference_rule": "gsm8k"},
    "math": {"prompt": "problem", "response": "solution", "reference_rule": "boxed"},
    "chat": {"messages": "messages"},
    "text": {"text": "text"},
    "sharegpt": _SHAREGPT,
    "numina_cot": {
        "prompt": "problem",
        "response": "solution",
        "messages": "messages",
        "reference_rule": "boxed",
    },
    "openmathreasoning": {
        "prompt": "problem",
        "response": "generated_solution",
        "reference": "expected_answer",
        "reference_rule": "field",
    },
    "s1k": {"prompt": "question", "reasoning": "thinking_trajectories", "response": "attempt"},
    "limo": {
        "prompt": "question",
        "response": "solution",
        "reference": "answer",
        "reference_rule": "field",
    },
    "openr1_math": {
        "prompt": "problem",
        "response": "generations",
        "explode": "generations",
        "labels": "correctness_math_verify",
        "reference": "answer",
        "reference_rule": "field",
        "id": "uuid",
    },
    "openthoughts": _OPENTHOUGHTS,
    "bespoke_stratos": _OPENTHOUGHTS,
}


class FieldMap(StrictModel):
    """Which raw field fills which schema column; set prompt+response, messages, or text
    (messages may come with prompt+response, as in NuminaMath-CoT)."""

    prompt: str | None = Field(None, description="raw field holding the question / instruction")
    response: str | None = Field(None, description="raw field holding the answer (with its CoT)")
    text: str | None = Field(None, description="raw field holding plain text")
    messages: str | None = Field(
        None, description="raw field holding chat turns ([{role, content}], ShareGPT, ...)"
    )
    role_key: str = Field("role", description="key of a chat turn holding its role ('from')")
    content_key: str = Field("content", description="key of a chat turn holding its text")
    roles: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ROLES),
        description="raw role name -> user / assistant / system (human -> user, gpt -> assistant)",
    )
    system: str | None = Field(None, description="raw field holding a system prompt (chat)")
    reasoning: str | None = Field(
        None, description="raw field holding the reasoning trace (text or list of texts)"
    )
    think_tags: tuple[str, str] = Field(
        THINK_TAGS, description="tags around a reasoning trace inside the response"
    )
    answer_tags: tuple[str, str] | None = Field(
        None, description="tags around the final answer after the trace (unwrapped when present)"
    )
    reference: str | None = Field(None, description="raw field holding the reference final answer")
    reference_rule: ReferenceRule | None = Field(
        None,
        description="how to get the reference: a field, text after '####' (gsm8k), last \\boxed{}",
    )
    id: str | None = Field(None, description="raw field holding the source's own id (-> meta.id)")
    explode: str | None = Field(
        None, description="raw list field: one record per element (e.g. generations)"
    )
    labels: str | None = Field(
        None, description="raw list of per-element booleans beside `explode` (e.g. verified)"
    )

    def raw_fields(self) -> list[str]:
        """Every raw field this mapping reads (to check a file before work)."""
        names = [self.prompt, self.response, self.text, self.messages, self.system]
        names += [self.reasoning, self.id, self.explode, self.labels]
        if self.reference_rule == "field":
            names.append(self.reference)
        return list(dict.fromkeys(name for name in names if name))


class SourceConfig(StrictModel):
    """One raw dump: where it is, how to read it, how its fields map to the record schema."""

    name: str = Field(description="source name, stored in every record's `source`")
    path: str | list[str] = Field(
        description="file, folder or glob (or a list); relative to the current directory; "
        "'{workspace}' expands to the workspace folder and $VARS to environment variables; "
        "URLs (hf://datasets/ORG/NAME/..., s3://...) are read with fsspec"
    )
    format: Format = Field("auto", description="jsonl, jsonl.gz, parquet, hf_disk or auto")
    preset: Preset | None = Field(None, description="named field mapping (gsm8k, math, chat, ...)")
    fields: FieldMap = Field(default_factory=FieldMap, description="explicit field mapping")
    explode: str | None = Field(
        None, description="raw list field: one record per element (same as fields.explode)"
    )
    labels: str | None = Field(
        None, description="raw list of per-element booleans (same as fields.labels)"
    )
    siblings: Siblings = Field(
        "verified",
        description="exploded records of one row: `verified` keeps those labelled true (all "
        "without labels), `all` keeps every one; both never merge siblings in dedup; `dedup` "
        "keeps every one and lets dedup merge them like any records",
    )
    keep: list[str] = Field(
        default_factory=list, description="raw fields copied into the record's `meta` column"
    )
    domain: str = Field("general", description="math / code / science / general")
    tags: list[str] = Field(default_factory=list, description="e.g. diverse, curated, general")

    def mapping(self) -> FieldMap:
        """The preset overlaid with the explicit fields (and the top-level explode/labels)."""
        merged: dict[str, Any] = dict(PRESETS.get(self.preset or "", {}))
        merged.update(self.fields.model_dump(exclude_unset=True))
        if self.fields.reference and not self.fields.reference_rule:
            merged["reference_rule"] = "field"  # an explicit reference field wins over a preset
        for key in ("explode", "labels"):
            if getattr(self, key):
                merged[key] = getattr(self, key)
        return FieldMap(**merged)

    @model_validator(mode="after")
    def _check_mapping(self) -> SourceConfig:
        m = self.mapping()
        qa = bool(m.prompt and m.response)
        kinds = [qa or bool(m.messages), bool(m.text)]
        if sum(kinds) != 1 or (bool(m.prompt) != bool(m.response)):
            raise ValueError(
                f"source {self.name!r}: map exactly one of prompt+response, messages or text "
                "(set `preset` or `fields`)"
            )
        if m.reference_rule == "field" and not m.reference:
            raise ValueError(f"source {self.name!r}: reference_rule 'field' needs fields.reference")
        if m.labels and not m.explode:
            raise ValueError(
                f"source {self.name!r}: `labels` needs `explode` (the list they label)"
            )
        bad = sorted(r for r in set(m.roles.values()) if r not in ("user", "assistant", "system"))
        if bad:
            raise ValueError(f"source {self.name!r}: roles map to {bad}; use user/assistant/system")
        return self


class NormaliseConfig(StrictModel):
    """Unicode and whitespace normalisation, applied to prompt, response and text."""

    unicode_form: Literal["NFC", "NFKC", "none"] = Field("NFC", description="unicode normal form")
    collapse_blank_lines: bool = Field(True, description="at most one empty line in a row")


class CleanConfig(StrictModel):
    """Heuristics for QA/reasoning data; a threshold of null turns that check off."""

    enabled: bool = Field(True, description="run the cleaning step")
    min_response_chars: int | None = Field(2, description="shorter responses are `too_short`")
    min_text_chars: int | None = Field(20, description="shorter plain texts are `too_short`")
    max_chars: int | None = Field(400_000, description="longer records are `too_long`")
    truncation: bool = Field(True, description="drop responses cut mid-way (`truncated`)")
    max_duplicate_line_fraction: float | None = Field(
        0.3, description="share of characters in repeated lines above which it is `repetition`"
    )
    max_top_ngram_fraction: float | None = Field(
        0.3, description="share of words covered by the most frequent word 4-gram (`repetition`)"
    )
    language_model: Path | None = Field(
        None, description="local fastText language-id model (lid.176.bin); off when unset"
    )
    languages: list[str] = Field(default_factory=lambda: ["en"], description="languages to keep")
    min_language_score: float = Field(0.5, description="minimum language-id probability")


class ExactDedupConfig(StrictModel):
    """Exact dedup over the normalised text (keeps the first copy in input order)."""

    enabled: bool = Field(True, description="run exact dedup")


class NearDedupConfig(StrictModel):
    """MinHash near-dedup; numbers are kept so problems that differ only in numbers never merge."""

    enabled: bool = Field(True, description="run MinHash near-dedup")
    n_grams: int = Field(5, ge=1, description="word shingle size")
    num_buckets: int = Field(20, ge=1, description="LSH bands")
    hashes_per_bucket: int = Field(8, ge=1, description="rows per band (threshold ~0.69 at 20x8)")
    seed: int = Field(1, description="hash seed")


class BenchmarkFile(StrictModel):
    """Benchmark file(s) whose questions must not leak into training data."""

    name: str | None = Field(None, description="benchmark name (default: the file stem)")
    path: str = Field(description="file or glob (jsonl, jsonl.gz, json list, csv)")
    prompt_fields: list[str] = Field(
        default_factory=lambda: ["question", "problem", "prompt"],
        description="fields holding the question (the first present); csv: the first column",
    )
    answer_fields: list[str] = Field(
        default_factory=lambda: ["answer", "solution", "canonical_solution", "code"],
        description="fields holding answers, indexed together with the question",
    )


class DecontamConfig(StrictModel):
    """Word n-gram overlap with benchmark prompts (and their answers)."""

    enabled: bool = Field(True, description="run decontamination when benchmarks are given")
    benchmarks: list[BenchmarkFile] = Field(default_factory=list, description="benchmark files")
    n: int = Field(13, ge=3, description="n-gram size (questions+answers, long questions)")
    short_n: int = Field(8, ge=3, description="n-gram size for questions under short_below words")
    short_below: int = Field(40, ge=1, description="word count under which short_n is used")
    min_matches: int = Field(1, ge=1, description="shared n-grams needed to flag a record")
    action: Literal["flag", "drop"] = Field("flag", description="flag in `contaminated` or drop")


class SlurmConfig(StrictModel):
    """Passed to datatrove's SlurmPipelineExecutor."""

    partition: str = Field(description="Slurm partition")
    time: str = Field("04:00:00", description="time limit per job")
    cpus_per_task: int = Field(1, ge=1, description="CPUs per task")
    mem_per_cpu_gb: int = Field(2, ge=1, description="memory per CPU")
    job_name: str = Field("fl-curate", description="job name prefix")
    qos: str | None = Field(None, description="Slurm QOS (default: the partition's)")
    venv_path: str | None = Field(
        None, description="activate script sourced in the job (default: this interpreter's bin/)"
    )
    poll_seconds: float = Field(
        15, gt=0, description="seconds between looks at the queue while `fl curate run` waits"
    )
    sbatch_args: dict[str, Any] = Field(default_factory=dict, description="extra sbatch options")


class RayConfig(StrictModel):
    """Passed to datatrove's RayPipelineExecutor."""

    address: str | None = Field(
        None,
        description="HOST:PORT of a running Ray cluster (default: $RAY_ADDRESS, else start a local one)",
    )
    cpus_per_task: int = Field(1, ge=1, description="CPUs per task")
    mem_per_cpu_gb: float = Field(2, gt=0, description="memory per CPU")


class ExecutorConfig(StrictModel):
    """Where the datatrove pipeline runs."""

    kind: Literal["local", "slurm", "ray"] = Field("local", description="local, slurm or ray")
    tasks: int = Field(4, ge=1, description="shards of the input (fixed for a resumable run)")
    workers: int = Field(2, ge=1, description="tasks running at once (local executor)")
    slurm: SlurmConfig | None = Field(None, description="Slurm settings (kind: slurm)")
    ray: RayConfig | None = Field(None, description="Ray settings (kind: ray)")

    @model_validator(mode="after")
    def _check_kind(self) -> ExecutorConfig:
        if self.kind == "slurm" and self.slurm is None:
            raise ValueError("executor.kind slurm needs an executor.slurm section (partition, ...)")
        return self


class LengthConfig(StrictModel):
    """Which tokenizer counts tokens, and how a missing one is trained."""

    tokenizer: Path | None = Field(
        None,
        description="tokenizer.json or a tokenizer folder (default: the workspace tokenizer, "
        "trained on a sample of the records if the workspace has none)",
    )
    vocab_size: int = Field(8192, ge=256, description="vocabulary of a tokenizer trained here")
    sample_records: int = Field(
        20_000, gt=0, description="records sampled to train a missing tokenizer"
    )
    batch_size: int = Field(1024, gt=0, description="records per encode_batch call")


class QualityTrainConfig(StrictModel):
    """How to train the classifier: positive (high-quality) and negative (ordinary) examples."""

    positive: list[str] = Field(
        default_factory=list, description="specs of high-quality examples: paths, globs or sql:"
    )
    negative: list[str] = Field(
        default_factory=list, description="specs of ordinary examples: paths, globs or sql:"
    )
    out: Path | None = Field(
        None, description="where to write the model (default: <workspace>/models/quality.bin)"
    )
    text_field: str = Field("text", description="field holding the text in jsonl/parquet files")
    max_per_class: int = Field(200_000, gt=0, description="cap on examples per class")
    holdout: float = Field(0.1, gt=0, lt=1, description="fraction held out for the metrics")
    bucket: int = Field(200_000, gt=0, description="hash buckets for word n-grams (x dim floats)")
    dim: int = Field(64, gt=0, description="embedding size")
    epochs: int = Field(5, gt=0, description="training epochs")
    lr: float = Field(0.1, gt=0, description="learning rate")
    word_ngrams: int = Field(2, ge=1, description="word n-grams (2 = bigrams, as in DCLM)")
    min_count: int = Field(1, ge=1, description="minimum word count to enter the vocabulary")
    threads: int = Field(
        1,
        ge=1,
        description="fastText training threads (more than 1 is faster but not reproducible)",
    )
    seed: int = Field(0, description="seed for balancing and the held-out split")


class QualityConfig(StrictModel):
    """Quality scoring in the curation pipeline (and answer verification against references)."""

    model: Path | None = Field(
        None,
        description="fastText .bin to score with (default: <workspace>/models/quality.bin, "
        "trained first from `train` or, without it, from the source tags)",
    )
    train: QualityTrainConfig | None = Field(
        None, description="train the model first from these examples (skipped if already trained)"
    )
    positive_tags: list[str] = Field(
        default_factory=lambda: ["curated"],
        description="without a model or train spec: tags whose records are positive examples",
    )
    negative_tags: list[str] = Field(
        default_factory=lambda: ["diverse", "general"],
        description="without a model or train spec: tags whose records are negative examples",
    )
    bootstrap_records: int = Field(
        5_000, gt=0, description="examples per class for the tag-labelled model"
    )
    bootstrap: QualityTrainConfig = Field(
        # Tag-labelled sets are small: fewer epochs at lr 0.1 leave every score near 0.5.
        default_factory=lambda: QualityTrainConfig(bucket=100_000, dim=32, epochs=25, lr=0.5),
        description="training settings of the tag-labelled model (positive/negative ignored)",
    )
    batch_size: int = Field(1024, gt=0, description="records per fastText predict call")
    text_field: str = Field("text", description="record field to score (text, response, prompt)")
    verify: bool = Field(True, description="check responses against reference answers")
    verify_workers: int = Field(1, ge=1, description="processes grading answers (Math-Verify)")
    verify_timeout: float = Field(5.0, gt=0, description="seconds per answer check")


class CurateRecipe(StrictModel):
    """A whole curation run: raw sources -> pool (and, optionally, the corpora)."""

    name: str = Field("curate", description="recipe name")
    sources: list[SourceConfig] = Field(min_length=1, description="raw dumps to read")
    normalise: NormaliseConfig = Field(default_factory=NormaliseConfig, description="normalise")
    clean: CleanConfig = Field(default_factory=CleanConfig, description="heuristic cleaning")
    exact_dedup: ExactDedupConfig = Field(default_factory=ExactDedupConfig, description="exact")
    near_dedup: NearDedupConfig = Field(default_factory=NearDedupConfig, description="MinHash")
    decontam: DecontamConfig = Field(default_factory=DecontamConfig, description="decontam")
    quality: QualityConfig | None = Field(
        None, description="quality scoring (fastText, answer checks)"
    )
    length: LengthConfig = Field(default_factory=LengthConfig, description="token counts")
    corpora: CorporaConfig | None = Field(None, description="corpus rules run after the pool")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig, description="executor")

    @model_validator(mode="after")
    def _unique_names(self) -> CurateRecipe:
        names = [source.name for source in self.sources]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"source names must be unique: {', '.join(duplicated)}")
        return self


def load_recipe(path: str | Path) -> CurateRecipe:
    """Load and validate a curation recipe; errors name the file and key."""
    return load_yaml(path, CurateRecipe)
