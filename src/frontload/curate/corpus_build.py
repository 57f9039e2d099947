"""Runs corpus rules in one DuckDB connection over the pool and writes each corpus atomically.

Each built corpus is a temp table of ids plus a view of its records named after the corpus, so
later rules (`within`, `union`, `sample`, `sql`) read earlier ones. Files are staged, then swapped
in, so a failed rebuild leaves the previous corpora in place.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

from loguru import logger

from frontload.catalog import Catalog
from frontload.config import dump_yaml
from frontload.curate.corpora import (
    PLACEHOLDER,
    RULES_FILE,
    CorporaConfig,
    CorpusRule,
    build_order,
    split_conjuncts,
)
from frontload.curate.manifest import (
    VOCAB_SAMPLE,
    corpus_stats,
    make_manifest,
    pool_version,
    quality_model,
    write_manifest,
)
from frontload.curate.schema import COLUMNS, RECORD_SCHEMA
from frontload.errors import ConfigError, DataError, StageNotReady
from frontload.filecheck import check_files
from frontload.workspace import Workspace

RESERVED = {"pool", "pool_all"}
NUMERIC = ("quality", "answer_tokens", "total_tokens")
COMPARISON = re.compile(
    r"\b(quality|answer_tokens|total_tokens)\s*(>=|<=|>|<|=)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)"
)


def _ids(name: str) -> str:
    return f'"__ids_{name}"'


class CorpusBuilder:
    """Owns the DuckDB connection over the pool for one rebuild."""

    def __init__(self, config: CorporaConfig, workspace: Workspace) -> None:
        import duckdb

        self.duckdb = duckdb
        self.config = config
        self.workspace = workspace
        parts = sorted(workspace.pool_dir.glob("*.parquet"))
        check_files(parts)
        if not parts:
            raise StageNotReady(
                f"no pool in {workspace.pool_dir}", "run `fl curate run RECIPE.yaml` first"
            )
        self.connection = duckdb.connect()
        if config.threads:
            self.connection.execute(f"SET threads = {int(config.threads)}")
        pattern = str(workspace.pool_dir / "*.parquet").replace("'", "''")
        self.connection.execute(
            f"CREATE VIEW pool_all AS SELECT * FROM read_parquet('{pattern}', union_by_name=true)"
        )
        self.columns = [r[0] for r in self.connection.execute("DESCRIBE pool_all").fetchall()]
        missing = [c for c in COLUMNS if c not in self.columns]
        if missing:
            raise DataError(
                f"pool in {workspace.pool_dir} lacks columns {', '.join(missing)}",
                "rerun `fl curate run` to rebuild the pool with the current schema",
            )
        keep = "TRUE" if config.contaminated == "keep" else "coalesce(len(contaminated), 0) = 0"
        self.connection.execute(f"CREATE VIEW pool AS SELECT * FROM pool_all WHERE {keep}")
        # Manifests read only these columns: one copy in memory instead of a pool scan per figure.
        self.connection.execute(
            "CREATE TEMP TABLE __meta AS SELECT id, domain, quality, answer_tokens, total_tokens, "
            "dup_cluster FROM pool"
        )
        self.pool_records, self.clean_records = self.connection.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {keep}) FROM pool_all"
        ).fetchall()[0]
        bounds = ", ".join(f"min({column}), max({column})" for column in NUMERIC)
        (row,) = self.connection.execute(f"SELECT {bounds} FROM __meta").fetchall()
        self.ranges = {column: row[2 * i : 2 * i + 2] for i, column in enumerate(NUMERIC)}
        self.version = pool_version(workspace)
        self.staging = workspace.corpora_dir / f".staging-{os.getpid()}"
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)

    def __enter__(self) -> CorpusBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    # -- SQL helpers -----------------------------------------------------------------------------

    def _sql(self, name: str, sql: str) -> list[tuple]:
        """Run SQL for rule `name` and fetch every row; DuckDB errors name the rule."""
        try:
            return self.connection.execute(sql).fetchall()
        except self.duckdb.Error as error:
            message = str(error).splitlines()[0]
            raise ConfigError(
                f"corpus rule {name}: {message}",
                f"pool columns: {', '.join(self.columns)}; corpora built so far can be read by name",
            ) from error

    def resolve(self, name: str, text: str, thresholds: dict[str, Any]) -> str:
        """Fill config params, then pool percentiles (`{quality:p90}`) into a rule's SQL."""
        params = self.config.params()

        def param(match: re.Match) -> str:
            key = match.group(1)
            if key not in params:
                raise ConfigError(
                    f"corpus rule {name}: unknown placeholder {{{key}}}",
                    f"known: {', '.join(params)}, or {{column:pNN}} for a pool percentile",
                )
            return f"{params[key]:g}" if isinstance(params[key], float) else str(params[key])

        text = re.sub(r"\{(\w+)\}", param, text)

        def percentile(match: re.Match) -> str:
            column, value = match.group(1), float(match.group(2))
            if column not in self.columns:
                raise ConfigError(f"corpus rule {name}: {match.group(0)}: no pool column {column}")
            if not 0 <= value <= 100:
                raise ConfigError(f"corpus rule {name}: {match.group(0)}: percentile not in 0..100")
            (result,) = self._sql(name, f"SELECT quantile_cont({column}, {value / 100}) FROM pool")[
                0
            ]
            thresholds[match.group(0)] = result
            if result is None:
                logger.warning(
                    f"corpus rule {name}: {column} is null in every pool record, so "
                    f"{match.group(0)} is NULL and selects nothing (was the pool scored?)"
                )
            return "NULL" if result is None else repr(float(result))

        return PLACEHOLDER.sub(percentile, text)

    def check_thresholds(self, name: str, predicate: str) -> None:
        """A quality threshold outside 0..1 is an error; a length outside the pool's range a warning."""
        for column, _, raw in COMPARISON.findall(predicate):
            value = float(raw)
            if column == "quality" and not 0 <= value <= 1:
                raise ConfigError(
                    f"corpus rule {name}: quality compared with {raw}, but quality is 0..1"
                )
            low, high = self.ranges[column]
            if low is not None and not low <= value <= high:
                logger.warning(
                    f"corpus rule {name}: {column} threshold {raw} is outside the pool's range "
                    f"{low}..{high}"
                )

    # -- building --------------------------------------------------------------------------------

    def build(self, name: str, rule: CorpusRule) -> dict[str, Any]:
        if name in RESERVED:
            raise ConfigError(f"corpus name {name!r} is reserved", "pick another name")
        thresholds: dict[str, Any] = {}
        parts: list[str] = []
        where = sql = None
        if rule.where is not None:
            where = self.resolve(name, rule.where, thresholds)
            self.check_thresholds(name, where)
            source = f'"{rule.within}"' if rule.within else "pool"
            parts.append(f"SELECT id FROM {source} WHERE ({where})")
        elif rule.within:
            parts.append(f'SELECT id FROM "{rule.within}"')
        if rule.sql is not None:
            sql = self.resolve(name, rule.sql, thresholds)
            parts.append(f"SELECT id FROM ({sql})")
        parts += [f"SELECT id FROM {_ids(other)}" for other in rule.union]
        if rule.sample is not None:
            parts.append(self._sample_sql(name, rule))
        union = " UNION ALL ".join(f"({part})" for part in parts)
        self._sql(
            name, f"CREATE OR REPLACE TEMP TABLE {_ids(name)} AS SELECT DISTINCT id FROM ({union})"
        )
        self._apply_caps(name, rule)
        self._sql(
            name,
            f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM pool '
            f"WHERE id IN (SELECT id FROM {_ids(name)})",
        )
        ids = _ids(name)
        stats = corpus_stats(
            self.connection,
            f"(SELECT * FROM __meta SEMI JOIN {ids} USING (id))",
            f"(SELECT text FROM pool WHERE id IN "
            f"(SELECT id FROM {ids} ORDER BY hash(id), id LIMIT {VOCAB_SAMPLE}))",
        )
        if not stats["records"]:
            logger.warning(f"corpus {name} is empty: {self.explain(name, rule, where)}")
        self._write(name)
        resolved = {"where": where} if where is not None else {}
        if sql is not None:
            resolved["sql"] = sql
        manifest = make_manifest(
            name,
            {**rule.model_dump(mode="json", exclude_defaults=True), "resolved": resolved},
            stats,
            self.version,
            thresholds=thresholds,
            contaminated=self.config.contaminated,
            pool_records=int(self.pool_records),
            pool_clean_records=int(self.clean_records),
            quality_model=quality_model(self.workspace),
        )
        write_manifest(self.staging / name / "manifest.json", manifest)
        return manifest

    def _sample_sql(self, name: str, rule: CorpusRule) -> str:
        sample = rule.sample
        (available,) = self._sql(name, f"SELECT count(*) FROM {_ids(sample.corpus)}")[0]
        size = sample.records if sample.records is not None else round(sample.fraction * available)
        return (
            f"SELECT id FROM {_ids(sample.corpus)} "
            f"ORDER BY hash(id || '{int(sample.seed)}'), id LIMIT {int(size)}"
        )

    def _apply_caps(self, name: str, rule: CorpusRule) -> None:
        """Per-domain token caps first, then the total cap, best records first."""
        ids = _ids(name)
        window = f"ORDER BY {rule.order_by}, id ROWS UNBOUNDED PRECEDING"
        if rule.domain_max_tokens:
            cases = " ".join(
                f"WHEN '{d.replace(chr(39), chr(39) * 2)}' THEN {int(cap)}"
                for d, cap in rule.domain_max_tokens.items()
            )
            self._sql(
                name,
                f"CREATE OR REPLACE TEMP TABLE {ids} AS SELECT id FROM (SELECT id, domain, "
                f"sum(coalesce(total_tokens, 0)) OVER (PARTITION BY domain {window}) AS running "
                f"FROM pool WHERE id IN (SELECT id FROM {ids})) "
                f"WHERE running <= CASE domain {cases} ELSE running END",
            )
        if rule.max_tokens:
            self._sql(
                name,
                f"CREATE OR REPLACE TEMP TABLE {ids} AS SELECT id FROM (SELECT id, "
                f"sum(coalesce(total_tokens, 0)) OVER ({window}) AS running "
                f"FROM pool WHERE id IN (SELECT id FROM {ids})) WHERE running <= {int(rule.max_tokens)}",
            )

    def explain(self, name: str, rule: CorpusRule, where: str | None) -> str:
        """The counts that led to an empty corpus: each condition alone, then together."""
        if where is None:
            inputs = [*rule.union, *([rule.sample.corpus] if rule.sample else [])]
            counts = [
                f"{other}: {self.connection.execute(f'SELECT count(*) FROM {_ids(other)}').fetchall()[0][0]}"
                for other in inputs
            ]
            return "its inputs have " + ", ".join(counts or ["no records"])
        source = f'"{rule.within}"' if rule.within else "pool"
        (total,) = self.connection.execute(f"SELECT count(*) FROM {source}").fetchall()[0]
        lines = [f"{total} records in {rule.within or 'the clean pool'}"]
        if source == "pool" and self.pool_records != self.clean_records:
            lines[0] += f" ({self.pool_records - self.clean_records} contaminated excluded)"
        for part in split_conjuncts(where):
            (count,) = self.connection.execute(
                f"SELECT count(*) FROM {source} WHERE ({part})"
            ).fetchall()[0]
            lines.append(f"{part}: {count} pass")
        for column, (low, high) in self.ranges.items():
            if column in where:
                lines.append(f"pool {column} range {low}..{high}")
        return "; ".join(lines)

    def _write(self, name: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = self.staging / name
        folder.mkdir(parents=True)
        columns = ", ".join(f'"{c}"' for c in COLUMNS)
        reader = self.connection.sql(f'SELECT {columns} FROM "{name}" ORDER BY id').to_arrow_reader(
            min(self.config.shard_records, 50_000)
        )
        shard, rows, writer = 0, 0, None
        for batch in reader:
            table = pa.Table.from_batches([batch]).cast(RECORD_SCHEMA)
            if writer is None or rows + table.num_rows > self.config.shard_records:
                if writer is not None:
                    writer.close()
                    shard += 1
                writer = pq.ParquetWriter(folder / f"part-{shard:05d}.parquet", RECORD_SCHEMA)
                rows = 0
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:
            pq.write_table(RECORD_SCHEMA.empty_table(), folder / "part-00000.parquet")
        else:
            writer.close()

    def publish(self, manifests: dict[str, dict]) -> None:
        """Swap the staged corpora in (one rename each), then refresh the catalog views."""
        for name in manifests:
            target = self.workspace.corpus_dir(name)
            old = target.with_name(f".old-{name}-{os.getpid()}")
            if target.exists():
                target.rename(old)
            (self.staging / name).rename(target)
            shutil.rmtree(old, ignore_errors=True)
        try:
            with Catalog(self.workspace) as catalog:
                catalog.refresh()
        except self.duckdb.Error as error:
            logger.warning(f"catalog not refreshed ({error}); run `fl stats rebuild`")


def build_corpora(
    config: CorporaConfig | None, workspace: Workspace, names: list[str] | None = None
) -> dict[str, dict]:
    """Build every enabled corpus (or `names` and what they need) from the pool; name -> manifest."""
    config = config or CorporaConfig()
    rules = config.all_rules()
    order = build_order(rules)
    if names:
        unknown = sorted(set(names) - set(rules))
        if unknown:
            raise ConfigError(
                f"unknown corpus {', '.join(unknown)}", f"known: {', '.join(sorted(rules))}"
            )
        disabled = sorted(name for name in names if not rules[name].enabled)
        if disabled:
            raise ConfigError(
                f"corpus {', '.join(disabled)} is disabled",
                "enable its rule (dalf_plus: set dalf_plus_fraction, or pass --dalf-plus-fraction)",
            )
        wanted = set(names)
        changed = True
        while changed:
            before = len(wanted)
            for name in list(wanted):
                wanted |= rules[name].depends_on(set(rules) - {name})
            changed = len(wanted) != before
        order = [name for name in order if name in wanted]
    with CorpusBuilder(config, workspace) as builder:
        manifests = {name: builder.build(name, rules[name]) for name in order}
        builder.publish(manifests)
    dump_yaml(
        config.model_dump(mode="json", exclude_unset=True), workspace.corpora_dir / RULES_FILE
    )
    empty = [name for name, manifest in manifests.items() if not manifest["records"]]
    if empty:
        logger.warning(f"empty corpora: {', '.join(empty)} (see the warnings above for why)")
    return manifests
