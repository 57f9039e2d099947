"""Corpus rules over a synthetic pool: the study's invariants, manifests, caps and bad input."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from loguru import logger

from frontload.curate.corpora import CorporaConfig, CorpusRule, load_rules
from frontload.curate.corpus_build import build_corpora
from frontload.curate.schema import RECORD_SCHEMA
from frontload.errors import ConfigError, DataError, StageNotReady

from .conftest import make_records, write_pool


def corpus_table(workspace, name: str):
    parts = sorted(workspace.corpus_dir(name).glob("part-*.parquet"))
    return pa.concat_tables(pq.read_table(part) for part in parts)


def corpus_rows(workspace, name: str) -> list[dict]:
    return corpus_table(workspace, name).to_pylist()


def ids(workspace, name: str) -> set[str]:
    return {row["id"] for row in corpus_rows(workspace, name)}


@pytest.fixture
def warnings():
    messages: list[str] = []
    handle = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    yield messages
    logger.remove(handle)


def test_default_corpora_obey_their_rules(workspace, pool):
    manifests = build_corpora(CorporaConfig(dalf_plus_fraction=0.5), workspace)
    assert set(manifests) == {"dldq", "dshq", "dlmq", "dalf", "dalf_plus", "general"}
    clean = [r for r in pool if not r["contaminated"]]
    assert ids(workspace, "dldq") == {r["id"] for r in clean if "diverse" in r["tags"]}
    assert ids(workspace, "general") == {r["id"] for r in clean if "general" in r["tags"]}
    assert ids(workspace, "dlmq") == ids(workspace, "dldq") | ids(workspace, "dshq")
    dalf = corpus_rows(workspace, "dalf")
    assert dalf and all(row["answer_tokens"] > 4096 for row in dalf)
    assert {row["id"] for row in dalf} == {
        row["id"] for row in corpus_rows(workspace, "dlmq") if row["answer_tokens"] > 4096
    }
    p90 = duckdb.sql(
        "SELECT quantile_cont(q, 0.9) FROM (SELECT unnest($1) AS q)",
        params=[[r["quality"] for r in clean]],
    ).fetchall()[0][0]
    dshq = corpus_rows(workspace, "dshq")
    assert dshq
    for row in dshq:
        assert "curated" in row["tags"] and row["quality"] >= p90 - 1e-6
        assert row["answer_tokens"] >= 1024 and row["verified"] is not False
    expected_dshq = {
        r["id"]
        for r in clean
        if "curated" in r["tags"]
        and r["quality"] >= p90 + 1e-6
        and r["answer_tokens"] >= 1024
        and r["verified"] is not False
    }
    assert expected_dshq <= {row["id"] for row in dshq}
    dshq_ids = ids(workspace, "dshq")
    extra = ids(workspace, "dalf_plus") - ids(workspace, "dalf")
    assert ids(workspace, "dalf") <= ids(workspace, "dalf_plus") and extra <= dshq_ids
    for name in manifests:
        assert all(not row["contaminated"] for row in corpus_rows(workspace, name))


def test_dshq_from_every_source_when_untagged(workspace, pool):
    build_corpora(
        CorporaConfig(dshq_tag=None, dshq_min_answer_tokens=100, quality_percentile=50), workspace
    )
    sources = {row["source"] for row in corpus_rows(workspace, "dshq")}
    assert "curated_source" in sources and "diverse_source" in sources


def test_keep_contaminated_mode_keeps_flagged_records(workspace, pool):
    build_corpora(CorporaConfig(contaminated="keep"), workspace)
    flagged = {r["id"] for r in pool if r["contaminated"] and "diverse" in r["tags"]}
    assert flagged and flagged <= ids(workspace, "dldq")


def test_manifest_matches_the_corpus_files(workspace, pool):
    manifest = build_corpora(None, workspace)["dlmq"]
    on_disk = json.loads((workspace.corpus_dir("dlmq") / "manifest.json").read_text())
    assert on_disk["records"] == manifest["records"]
    rows = corpus_rows(workspace, "dlmq")
    assert manifest["records"] == len(rows)
    assert manifest["tokens"] == sum(r["total_tokens"] for r in rows)
    assert manifest["answer_tokens"] == sum(r["answer_tokens"] for r in rows)
    domains = {r["domain"] for r in rows}
    assert set(manifest["domain_mix"]) == domains
    assert sum(manifest["domain_mix"].values()) == pytest.approx(1, abs=1e-4)
    for domain in domains:
        assert manifest["domain_tokens"][domain] == sum(
            r["total_tokens"] for r in rows if r["domain"] == domain
        )
    clusters = {r["dup_cluster"] or r["id"] for r in rows}
    assert manifest["diversity"]["clusters_per_1k"] == pytest.approx(
        1000 * len(clusters) / len(rows), abs=1e-3
    )
    q = manifest["quality_quantiles"]
    assert q["p10"] <= q["p50"] <= q["p90"]
    for key in ("rule", "pool_version", "created", "answer_tokens_quantiles"):
        assert key in manifest
    schema = pq.read_schema(next(workspace.corpus_dir("dlmq").glob("part-*.parquet")))
    assert schema.equals(RECORD_SCHEMA)


def test_rebuild_with_a_new_threshold_and_saved_rules(workspace, pool):
    build_corpora(CorporaConfig(dalf_min_answer_tokens=2000), workspace)
    wide = ids(workspace, "dalf")
    config = load_rules(workspace, overrides={"dalf_min_answer_tokens": 6000})
    assert config.dalf_min_answer_tokens == 6000
    build_corpora(config, workspace, names=["dalf"])
    narrow = corpus_rows(workspace, "dalf")
    assert {r["id"] for r in narrow} < wide
    assert all(r["answer_tokens"] > 6000 for r in narrow)
    assert load_rules(workspace).dalf_min_answer_tokens == 6000


def test_token_caps_keep_the_best_records(workspace, pool):
    rules = {
        "capped": CorpusRule(where="domain <> 'general'", max_tokens=20_000),
        "math_capped": CorpusRule(where="domain <> 'general'", domain_max_tokens={"math": 5_000}),
    }
    build_corpora(CorporaConfig(rules=rules), workspace, names=["capped", "math_capped"])
    capped = corpus_rows(workspace, "capped")
    assert 0 < sum(r["total_tokens"] for r in capped) <= 20_000
    kept_worst = min(r["quality"] for r in capped)
    others = [r for r in pool if r["domain"] != "general" and not r["contaminated"]]
    dropped = [r for r in others if r["id"] not in {c["id"] for c in capped}]
    assert all(r["quality"] <= kept_worst for r in dropped)
    math_rows = [r for r in corpus_rows(workspace, "math_capped") if r["domain"] == "math"]
    assert 0 < sum(r["total_tokens"] for r in math_rows) <= 5_000
    code_rows = [r for r in corpus_rows(workspace, "math_capped") if r["domain"] == "code"]
    assert len(code_rows) == sum(1 for r in others if r["domain"] == "code")


def test_sql_rule_can_read_earlier_corpora(workspace, pool):
    rules = {"top_dldq": CorpusRule(sql="SELECT id FROM dldq ORDER BY quality DESC LIMIT 10")}
    build_corpora(CorporaConfig(rules=rules), workspace, names=["top_dldq"])
    top = corpus_rows(workspace, "top_dldq")
    assert len(top) == 10 and ids(workspace, "top_dldq") <= ids(workspace, "dldq")


def test_missing_column_names_the_rule(workspace, pool):
    rules = {"dldq": CorpusRule(where="list_contains(tags, 'diverse') AND nonsense > 3")}
    with pytest.raises(ConfigError, match="corpus rule dldq.*nonsense"):
        build_corpora(CorporaConfig(rules=rules), workspace)


def test_empty_corpus_warns_with_counts(workspace, pool, warnings):
    manifests = build_corpora(CorporaConfig(dshq_min_answer_tokens=10**6), workspace)
    assert manifests["dshq"]["records"] == 0
    assert manifests["dlmq"]["records"] == manifests["dldq"]["records"]
    text = "\n".join(warnings)
    assert "corpus dshq is empty" in text
    assert "answer_tokens >= 1000000: 0 pass" in text
    assert "outside the pool's range" in text
    assert corpus_table(workspace, "dshq").num_rows == 0


def test_bad_thresholds_and_references_are_config_errors(workspace, pool):
    with pytest.raises(ConfigError, match="quality is 0..1"):
        build_corpora(CorporaConfig(rules={"x": CorpusRule(where="quality > 1.5")}), workspace)
    with pytest.raises(ConfigError, match="percentile not in 0..100"):
        build_corpora(
            CorporaConfig(rules={"x": CorpusRule(where="quality > {quality:p150}")}), workspace
        )
    with pytest.raises(ConfigError, match="unknown placeholder"):
        build_corpora(CorporaConfig(rules={"x": CorpusRule(where="quality > {nope}")}), workspace)
    with pytest.raises(ConfigError, match="unknown corpus 'missing'"):
        build_corpora(CorporaConfig(rules={"x": CorpusRule(union=["missing"])}), workspace)
    cycle = {"a": CorpusRule(union=["b"]), "b": CorpusRule(union=["a"])}
    with pytest.raises(ConfigError, match="cycle"):
        build_corpora(CorporaConfig(rules=cycle), workspace)
    with pytest.raises(ValueError):
        CorpusRule()
    with pytest.raises(ConfigError, match="dalf_plus is disabled"):
        build_corpora(CorporaConfig(), workspace, names=["dalf_plus"])


def test_recipe_that_is_not_a_mapping_is_a_config_error(workspace, tmp_path):
    recipe = tmp_path / "list.yaml"
    recipe.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_rules(workspace, recipe)


def test_no_pool_and_old_pool_are_clear_errors(workspace):
    with pytest.raises(StageNotReady, match="no pool"):
        build_corpora(None, workspace)
    records = make_records(30)
    write_pool(workspace, records, parts=1)
    table = pq.read_table(workspace.pool_dir).drop_columns(["quality"])
    for part in workspace.pool_dir.glob("*.parquet"):
        part.unlink()
    pq.write_table(table, workspace.pool_dir / "part-00000.parquet")
    with pytest.raises(DataError, match="lacks columns quality"):
        build_corpora(None, workspace)


def test_unscored_pool_explains_the_empty_dshq(workspace, warnings):
    records = make_records(60)
    for record in records:
        record["quality"] = None
    write_pool(workspace, records, parts=1)
    manifests = build_corpora(None, workspace)
    assert manifests["dshq"]["records"] == 0 and manifests["dldq"]["records"] > 0
    assert manifests["dldq"]["quality_quantiles"] == {"p10": None, "p50": None, "p90": None}
    assert any("quality is null in every pool record" in w for w in warnings)
