"""Corpus rules: SQL over the whole pool in DuckDB -> `corpora/<name>/part-*.parquet` + manifest.

A rule selects ids (a `where` predicate over the pool or over another corpus, a full `sql` query,
unions of corpora, a sample of a corpus), then applies token caps. Placeholders in SQL are resolved
over the whole (clean) pool first: `{quality:p90}` is the pool's 90th percentile of `quality`,
`{dshq_min_answer_tokens}` a threshold from this config. Rebuilding takes seconds, not a pipeline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from frontload.config import StrictModel, read_yaml, validate
from frontload.errors import ConfigError
from frontload.workspace import Workspace

DEFAULT_ORDER = "quality DESC NULLS LAST, id"
RULES_FILE = "rules.yaml"  # the rules of the last build, reused by `fl curate corpora`
PLACEHOLDER = re.compile(r"\{(\w+)(?::p(-?[0-9.]+))?\}")


class SampleSpec(StrictModel):
    """A deterministic sample of another corpus (by a seeded hash of the id)."""

    corpus: str = Field(description="corpus to sample from")
    fraction: float | None = Field(None, gt=0, le=1, description="fraction of its records")
    records: int | None = Field(None, ge=0, description="number of its records")
    seed: int = Field(0, description="seed of the hash order")

    @model_validator(mode="after")
    def _one_size(self) -> SampleSpec:
        if (self.fraction is None) == (self.records is None):
            raise ValueError("give exactly one of fraction or records")
        return self


class CorpusRule(StrictModel):
    """One corpus: which records (where/sql/within/union/sample), then optional token caps."""

    description: str = Field("", description="what the corpus is, for the manifest")
    where: str | None = Field(None, description="SQL predicate over the pool (or over `within`)")
    within: str | None = Field(None, description="apply `where` to this corpus instead of the pool")
    sql: str | None = Field(
        None, description="full query returning an `id` column; may read `pool` and earlier corpora"
    )
    union: list[str] = Field(default_factory=list, description="corpora whose records are added")
    sample: SampleSpec | None = Field(None, description="add a sample of another corpus")
    max_tokens: int | None = Field(None, gt=0, description="cap on total_tokens, best first")
    domain_max_tokens: dict[str, int] = Field(
        default_factory=dict, description="per-domain caps on total_tokens, best first"
    )
    order_by: str = Field(DEFAULT_ORDER, description="what 'best first' means for the caps")
    enabled: bool = Field(True, description="build this corpus")

    @model_validator(mode="after")
    def _has_selection(self) -> CorpusRule:
        if self.where is None and self.sql is None and not self.union and self.sample is None:
            raise ValueError("a corpus rule needs where, sql, union or sample")
        if self.sql is not None and (self.where is not None or self.within is not None):
            raise ValueError("give either sql or where/within, not both")
        return self

    def depends_on(self, names: set[str]) -> set[str]:
        """Corpora this rule reads (union, within, sample, names used in its SQL)."""
        found = set(self.union)
        if self.within:
            found.add(self.within)
        if self.sample:
            found.add(self.sample.corpus)
        if self.sql:
            found |= {n for n in names if re.search(rf"\b{re.escape(n)}\b", self.sql)}
        return found


def default_rules(dshq_tag: str | None = "curated") -> dict[str, CorpusRule]:
    """The study's corpora (design.md section 4) in terms of this config's thresholds; DSHQ comes
    from the sources tagged `dshq_tag`, or from every source (scored as such) when it is None."""
    source = f"list_contains(tags, '{dshq_tag}') AND " if dshq_tag else ""
    return {
        "dldq": CorpusRule(
            description="every clean record of the sources tagged diverse",
            where="list_contains(tags, 'diverse')",
        ),
        "dshq": CorpusRule(
            description="top-quality, long, verified-where-possible records",
            where=f"{source}quality >= {{quality:p{{quality_percentile}}}} "
            "AND answer_tokens >= {dshq_min_answer_tokens} AND verified IS NOT false",
        ),
        "dlmq": CorpusRule(description="DLDQ union DSHQ", union=["dldq", "dshq"]),
        "dalf": CorpusRule(
            description="DLMQ records with long answers",
            within="dlmq",
            where="answer_tokens > {dalf_min_answer_tokens}",
        ),
        "dalf_plus": CorpusRule(
            description="DALF plus a sample of DSHQ",
            union=["dalf"],
            sample=SampleSpec(corpus="dshq", fraction=0.5),
            enabled=False,
        ),
        "general": CorpusRule(
            description="every clean record of the sources tagged general (pretraining filler)",
            where="list_contains(tags, 'general')",
        ),
    }


class CorporaConfig(StrictModel):
    """Corpus rules of a recipe: `rules` override or extend the defaults by name."""

    quality_percentile: float = Field(
        90, ge=0, le=100, description="DSHQ quality floor: this percentile of the pool's quality"
    )
    dshq_min_answer_tokens: int = Field(1024, ge=0, description="DSHQ answer_tokens floor")
    dshq_tag: str | None = Field(
        "curated",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="DSHQ draws from sources with this tag; null: every source, by score alone",
    )
    dalf_min_answer_tokens: int = Field(4096, ge=0, description="DALF keeps answer_tokens > this")
    dalf_plus_fraction: float | None = Field(
        None, gt=0, le=1, description="build dalf_plus with this fraction of DSHQ (off if unset)"
    )
    contaminated: Literal["exclude", "keep"] = Field(
        "exclude", description="exclude records flagged as contaminated, or keep them (flag mode)"
    )
    rules: dict[str, CorpusRule] = Field(
        default_factory=dict, description="corpus rules by name, overriding the defaults"
    )
    shard_records: int = Field(100_000, gt=0, description="records per parquet part")
    threads: int | None = Field(None, ge=1, description="DuckDB threads (default: all cores)")

    @model_validator(mode="after")
    def _names(self) -> CorporaConfig:
        for name in self.rules:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"corpus name {name!r}: use lower case letters, digits and _")
        return self

    def all_rules(self) -> dict[str, CorpusRule]:
        """Defaults, then the recipe's rules; dalf_plus switched on by `dalf_plus_fraction`."""
        rules = default_rules(self.dshq_tag)
        if self.dalf_plus_fraction is not None:
            sample = SampleSpec(corpus="dshq", fraction=self.dalf_plus_fraction)
            rules["dalf_plus"] = rules["dalf_plus"].model_copy(
                update={"enabled": True, "sample": sample}
            )
        rules.update(self.rules)
        return rules

    def params(self) -> dict[str, Any]:
        return {
            "quality_percentile": self.quality_percentile,
            "dshq_min_answer_tokens": self.dshq_min_answer_tokens,
            "dalf_min_answer_tokens": self.dalf_min_answer_tokens,
        }


def build_order(rules: dict[str, CorpusRule]) -> list[str]:
    """Enabled corpora, each after the corpora it reads; clear errors for unknown names/cycles."""
    enabled = {name: rule for name, rule in rules.items() if rule.enabled}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name not in rules:
            raise ConfigError(f"corpus rule {path[-1]}: refers to unknown corpus {name!r}")
        if name not in enabled:
            raise ConfigError(f"corpus rule {path[-1]}: needs {name}, which is disabled")
        if name in visiting:
            raise ConfigError(f"corpus rules form a cycle: {' -> '.join((*path, name))}")
        visiting.add(name)
        for dependency in sorted(enabled[name].depends_on(set(rules) - {name})):
            visit(dependency, (*path, name))
        visiting.discard(name)
        order.append(name)

    for name in enabled:
        visit(name, (name,))
    return order


def split_conjuncts(predicate: str) -> list[str]:
    """Top-level AND parts of a predicate (parentheses and quotes respected), for diagnostics."""
    parts, depth, quote, start = [], 0, None, 0
    index = 0
    while index < len(predicate):
        char = predicate[index]
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and re.match(r"\sAND\s", predicate[index : index + 5], re.IGNORECASE):
            parts.append(predicate[start:index].strip())
            start = index + 5
            index += 4
        index += 1
    parts.append(predicate[start:].strip())
    return [p for p in parts if p]


def load_rules(
    workspace: Workspace, recipe: Path | None = None, overrides: dict[str, Any] | None = None
) -> CorporaConfig:
    """The recipe's `corpora:` section, else the rules of the last build, else the defaults."""

    saved = workspace.corpora_dir / RULES_FILE
    if recipe is not None:
        document = read_yaml(recipe) or {}
        if not isinstance(document, dict):
            raise ConfigError(f"{recipe}: expected a mapping with a `corpora:` section")
        section = document.get("corpora") or {}
        config = validate(CorporaConfig, section, f"{recipe}: corpora")
    elif saved.is_file():
        config = validate(CorporaConfig, read_yaml(saved), str(saved))
    else:
        config = CorporaConfig()
    if overrides:
        data = {**config.model_dump(mode="json", exclude_unset=True), **overrides}
        config = validate(CorporaConfig, data, "options")
    return config
