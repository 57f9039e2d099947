"""Corpora and the disjoint pools (atoms) they are made of.

Corpora overlap (DLMQ = DLDQ union DSHQ; DALF is a subset of DLDQ), so repetition must be counted on
the data actually reused, not on corpus names. Each atom is a set of records with one membership
signature (the corpora containing it); reading a corpus reads its atoms in proportion to their size.
Atoms come either exactly from record ids (DuckDB over the workspace corpora) or from relations
declared by hand (`union`, `subset_of`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from frontload.config import StrictModel, dump_yaml, load_yaml
from frontload.errors import ConfigError, DataError, StageNotReady

LONG_COT_TOKENS = 4096.0  # answers this long count as fully long chain-of-thought
DIVERSE_TOKENS_PER_RECORD = 1000.0  # records this short (or shorter) count as fully diverse


class CorpusSpec(StrictModel):
    """A corpus given by hand (or the summary read from a workspace manifest)."""

    tokens: float | None = Field(default=None, gt=0, description="Total tokens (text).")
    records: float | None = Field(default=None, gt=0, description="Number of records.")
    quality: float = Field(default=0.5, ge=0, le=1, description="Median P(high quality).")
    answer_tokens: float = Field(default=500, ge=0, description="Mean answer tokens per record.")
    domains: dict[str, float] = Field(
        default_factory=lambda: {"math": 1.0}, description="Token share per domain."
    )
    diversity: float | None = Field(
        default=None, ge=0, le=1, description="Override of the 0..1 diversity index."
    )
    sft_value: float | None = Field(
        default=None, ge=0, le=1, description="Override of the 0..1 long-CoT quality index."
    )
    union: list[str] | None = Field(
        default=None, description="This corpus is the union of these (disjoint) corpora."
    )
    subset_of: str | None = Field(default=None, description="This corpus is carved from another.")


@dataclass
class Atom:
    """A disjoint pool of records: its size, its properties and the corpora containing it."""

    members: frozenset[str]
    tokens: float
    records: float
    quality: float
    answer_tokens: float
    domains: dict[str, float]
    diversity: float | None = None
    sft_value: float | None = None
    u: float = 0.0  # tokens in units of the pretraining budget, set by Pools.rescale

    @property
    def name(self) -> str:
        return "&".join(sorted(self.members))

    def diversity_index(self) -> float:
        """Short, many records per token: diverse. Long-answer corpora teach fewer distinct things."""
        if self.diversity is not None:
            return self.diversity
        per_record = self.tokens / max(self.records, 1.0)
        return min(1.0, math.sqrt(DIVERSE_TOKENS_PER_RECORD / max(per_record, 1.0)))

    def sft_index(self) -> float:
        """Long-CoT quality: classifier quality x answer length share (the study's SHQ vs LDQ)."""
        if self.sft_value is not None:
            return self.sft_value
        return self.quality * min(1.0, self.answer_tokens / LONG_COT_TOKENS)

    def low_quality_share(self) -> float:
        """SFT tokens counted as low quality: long-CoT index under 0.5, fully at 0."""
        return max(0.0, 1.0 - 2.0 * self.sft_index())

    def high_quality_share(self) -> float:
        """How far quality is above the classifier's midpoint (0 at 0.5 or below, 1 at 1.0)."""
        return min(1.0, max(0.0, (self.quality - 0.5) / 0.5))


@dataclass
class Pools:
    """Atoms plus each corpus's composition (fraction of its tokens in each atom)."""

    corpora: list[str]
    atoms: list[Atom]
    corpus_tokens: dict[str, float]
    corpus_records: dict[str, float]
    composition: dict[str, dict[int, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.corpora:
            total = self.corpus_tokens[name]
            self.composition[name] = {
                i: atom.tokens / total for i, atom in enumerate(self.atoms) if name in atom.members
            }

    def rescale(self, scale: float) -> None:
        """Express every atom's size in units of `scale` tokens (the pretraining budget)."""
        for atom in self.atoms:
            atom.u = atom.tokens / scale

    def tokens_per_record(self, corpus: str) -> float:
        return self.corpus_tokens[corpus] / max(self.corpus_records[corpus], 1.0)

    def corpus_index(self, corpus: str, attr: str) -> float:
        """Token-weighted mean of an atom index over a corpus."""
        return sum(
            share * getattr(self.atoms[i], attr)() for i, share in self.composition[corpus].items()
        )


def _check_names(specs: dict[str, CorpusSpec]) -> None:
    for name, spec in specs.items():
        refs = list(spec.union or []) + ([spec.subset_of] if spec.subset_of else [])
        for ref in refs:
            if ref not in specs:
                raise ConfigError(
                    f"corpora.{name}: refers to unknown corpus '{ref}'",
                    f"known corpora: {', '.join(sorted(specs))}",
                )
        if spec.union and spec.subset_of:
            raise ConfigError(f"corpora.{name}: give either union or subset_of, not both")
        if not spec.union and spec.tokens is None:
            raise ConfigError(f"corpora.{name}: tokens is required", "give its size in tokens")


def _records(spec: CorpusSpec) -> float:
    return spec.records or spec.tokens / max(spec.answer_tokens * 1.2, 1.0)


def pools_from_specs(specs: dict[str, CorpusSpec]) -> Pools:
    """Atoms from relations declared by hand; subsets split every atom of the parent evenly."""
    _check_names(specs)
    atoms: list[Atom] = []
    done: set[str] = set()
    for name, spec in specs.items():
        if not spec.union and not spec.subset_of:
            atoms.append(
                Atom(
                    frozenset([name]),
                    float(spec.tokens),
                    _records(spec),
                    spec.quality,
                    spec.answer_tokens,
                    dict(spec.domains),
                    spec.diversity,
                    spec.sft_value,
                )
            )
            done.add(name)
    pending = [n for n in specs if n not in done]
    while pending:
        ready = [
            n
            for n in pending
            if all(r in done for r in (specs[n].union or []))
            and specs[n].subset_of in done | {None}
        ]
        if not ready:
            raise ConfigError(f"corpora: circular union/subset_of among {', '.join(pending)}")
        for name in ready:
            spec = specs[name]
            if spec.union:
                for atom in atoms:
                    if atom.members & set(spec.union):
                        atom.members = atom.members | {name}
            else:
                atoms = _carve(atoms, name, spec)
            done.add(name)
            pending.remove(name)
    tokens = {n: sum(a.tokens for a in atoms if n in a.members) for n in specs}
    records = {n: sum(a.records for a in atoms if n in a.members) for n in specs}
    return Pools(list(specs), atoms, tokens, records)


def _carve(atoms: list[Atom], name: str, spec: CorpusSpec) -> list[Atom]:
    """Split the parent's atoms: a `tokens/parent` share of each becomes part of the subset."""
    parent_tokens = sum(a.tokens for a in atoms if spec.subset_of in a.members)
    share = float(spec.tokens) / parent_tokens
    if share > 1 + 1e-9:
        raise ConfigError(
            f"corpora.{name}: {spec.tokens:.3g} tokens but its parent {spec.subset_of} has "
            f"only {parent_tokens:.3g}",
            "a subset cannot be larger than its parent",
        )
    out = []
    for atom in atoms:
        if spec.subset_of not in atom.members:
            out.append(atom)
            continue
        records = _records(spec) * atom.tokens / parent_tokens
        out.append(
            Atom(
                atom.members | {name},
                atom.tokens * share,
                records,
                spec.quality,
                spec.answer_tokens,
                dict(spec.domains),
                spec.diversity,
                spec.sft_value,
            )
        )
        if share < 1 - 1e-9:
            rest = Atom(**{**atom.__dict__, "tokens": atom.tokens * (1 - share)})
            rest.records = max(atom.records - records, 1.0)
            out.append(rest)
    return out


def pools_from_workspace(corpus_dirs: dict[str, Path]) -> Pools:
    """Exact atoms from record ids: group records by the set of corpora that contain them."""
    import duckdb

    for name, folder in corpus_dirs.items():
        if not any(folder.glob("*.parquet")):
            raise StageNotReady(
                f"corpus {name}: no parquet files in {folder}",
                "run `fl curate corpora` first, or give the corpus by hand in the config",
            )
    con = duckdb.connect()
    parts = []
    for name, folder in corpus_dirs.items():
        pattern = str(folder / "*.parquet").replace("'", "''")
        parts.append(
            f"SELECT DISTINCT id, '{name}' AS corpus, quality, answer_tokens, total_tokens, domain "
            f"FROM read_parquet('{pattern}')"
        )
    sql = f"""
        WITH rows AS ({" UNION ALL ".join(parts)}),
        recs AS (
            SELECT id, list_sort(list(DISTINCT corpus)) AS sig, any_value(quality) AS quality,
                   any_value(answer_tokens) AS answer_tokens, any_value(total_tokens) AS tokens,
                   any_value(domain) AS domain
            FROM rows GROUP BY id)
        SELECT sig, domain, count(*) AS records, sum(tokens) AS tokens,
               sum(coalesce(quality, 0.5) * tokens) AS q_tokens,
               sum(coalesce(answer_tokens, 0)) AS answer_tokens
        FROM recs GROUP BY sig, domain ORDER BY sig, domain
    """
    try:
        rows = con.execute(sql).fetchall()
    except duckdb.Error as error:
        raise DataError(f"reading corpora records failed: {error}") from error
    finally:
        con.close()
    grouped: dict[tuple, list] = {}
    for sig, domain, records, tokens, q_tokens, answer in rows:
        grouped.setdefault(tuple(sig), []).append((domain, records, tokens, q_tokens, answer))
    atoms = []
    for sig, items in grouped.items():
        tokens = float(sum(i[2] for i in items))
        records = float(sum(i[1] for i in items))
        if tokens <= 0:
            continue
        atoms.append(
            Atom(
                frozenset(sig),
                tokens,
                records,
                sum(i[3] for i in items) / tokens,
                sum(i[4] for i in items) / records,
                {i[0]: i[2] / tokens for i in items},
            )
        )
    names = list(corpus_dirs)
    tokens = {n: sum(a.tokens for a in atoms if n in a.members) for n in names}
    for name, total in tokens.items():
        if total <= 0:
            raise DataError(f"corpus {name} has no tokens", "check its manifest and parquet files")
    records = {n: sum(a.records for a in atoms if n in a.members) for n in names}
    return Pools(names, atoms, tokens, records)


class AtomRecord(StrictModel):
    """One atom as a pools file keeps it (the fields of `Atom`, its size in tokens)."""

    members: list[str] = Field(description="The corpora containing these records.")
    tokens: float = Field(gt=0, description="Tokens of the records.")
    records: float = Field(gt=0, description="Number of records.")
    quality: float = Field(description="Token-weighted mean P(high quality).")
    answer_tokens: float = Field(description="Mean answer tokens per record.")
    domains: dict[str, float] = Field(description="Token share per domain.")
    diversity: float | None = Field(default=None, description="Override of the diversity index.")
    sft_value: float | None = Field(default=None, description="Override of the long-CoT index.")


class PoolsFile(StrictModel):
    """The pools of a table's corpora, exactly as read from a workspace: `fl allocate experiments`
    writes it beside its CSV, so the ladder can be fitted from the table alone (another machine,
    no corpora)."""

    corpora: list[str] = Field(description="Corpora, in the order the pools were read.")
    atoms: list[AtomRecord] = Field(description="Disjoint record sets, with their properties.")


def save_pools(pools: Pools, path: str | Path) -> Path:
    """Write `pools` (sizes in tokens, not rescaled) as a pools file."""
    atoms = [
        AtomRecord(
            members=sorted(atom.members),
            tokens=atom.tokens,
            records=atom.records,
            quality=atom.quality,
            answer_tokens=atom.answer_tokens,
            domains=dict(atom.domains),
            diversity=atom.diversity,
            sft_value=atom.sft_value,
        )
        for atom in pools.atoms
    ]
    dump_yaml(PoolsFile(corpora=list(pools.corpora), atoms=atoms), path)
    return Path(path)


def load_pools(path: str | Path) -> Pools:
    """The pools a pools file holds (the same numbers `save_pools` was given)."""
    data = load_yaml(path, PoolsFile)
    atoms = [
        Atom(
            frozenset(a.members),
            a.tokens,
            a.records,
            a.quality,
            a.answer_tokens,
            dict(a.domains),
            a.diversity,
            a.sft_value,
        )
        for a in data.atoms
    ]
    unknown = sorted({m for a in atoms for m in a.members} - set(data.corpora))
    if unknown:
        raise ConfigError(f"{path}: atom of unknown corpus '{unknown[0]}'", "list it in corpora")
    tokens = {n: sum(a.tokens for a in atoms if n in a.members) for n in data.corpora}
    empty = [n for n, total in tokens.items() if total <= 0]
    if empty:
        raise ConfigError(f"{path}: corpus {empty[0]} has no atoms", "list its records' atoms")
    records = {n: sum(a.records for a in atoms if n in a.members) for n in data.corpora}
    return Pools(list(data.corpora), atoms, tokens, records)


def read_manifest(folder: Path) -> dict:
    """A corpus manifest.json, with a clear error when it is missing."""
    path = folder / "manifest.json"
    if not path.is_file():
        raise StageNotReady(f"{path}: corpus manifest not found", "run `fl curate corpora` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: invalid JSON ({error.msg})") from error
