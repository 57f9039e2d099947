"""Curation statistics from the catalog: per-step counts, per-source/domain counts, token quantiles."""

from __future__ import annotations

from dataclasses import dataclass

from frontload.catalog import Catalog
from frontload.curate.publish import published_run
from frontload.errors import StageNotReady
from frontload.workspace import Workspace


@dataclass
class CurateSummary:
    """The tables `fl stats summary` prints (pyarrow tables)."""

    run_id: str | None
    steps: object
    sources: object
    domains: object
    tokens: object


def step_table(catalog: Catalog, run_id: str | None):
    """kept / removed / flagged and own seconds (summed over tasks) per step of one run, with
    removals by reason; steps that count nothing (dedup signatures, buckets) show their time."""
    where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
    columns = {row["column_name"] for row in catalog.query("DESCRIBE curate_steps").to_pylist()}
    seconds = "seconds" if "seconds" in columns else "NULL AS seconds"  # runs before timing
    return catalog.query(
        f"""
        SELECT step, stage, kept, removed, flagged, {seconds},
               coalesce(
                   (SELECT string_agg(r.reason || '=' || r.count, ', ' ORDER BY r.count DESC)
                    FROM (SELECT unnest(reasons, recursive := true)) AS r),
                   '') AS reasons
        FROM curate_steps {where}
        ORDER BY finished, position
        """,
        params,
    )


def summarize(workspace: Workspace) -> CurateSummary:
    """Every table of the curation summary; raises StageNotReady before `fl curate run`."""
    with Catalog(workspace, read_only=False) as catalog:
        views = catalog.refresh()
        if "pool" not in views or "curate_steps" not in views:
            raise StageNotReady(
                f"no curated pool in {workspace.root}", "run `fl curate run RECIPE.yaml` first"
            )
        run_id = published_run(workspace)
        steps = step_table(catalog, run_id)
        sources = catalog.query(
            """
            SELECT source, domain, count(*) AS records,
                   sum(total_tokens) AS tokens,
                   count(*) FILTER (WHERE len(contaminated) > 0) AS contaminated,
                   count(dup_cluster) AS in_dup_cluster
            FROM pool GROUP BY ALL ORDER BY records DESC
            """
        )
        domains = catalog.query(
            """
            SELECT domain, count(*) AS records,
                   round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS percent,
                   sum(total_tokens) AS tokens
            FROM pool GROUP BY ALL ORDER BY records DESC
            """
        )
        tokens = catalog.query(
            """
            SELECT domain, 'answer_tokens' AS measure,
                   quantile_disc(answer_tokens, 0.1) AS p10,
                   quantile_disc(answer_tokens, 0.5) AS p50,
                   quantile_disc(answer_tokens, 0.9) AS p90,
                   max(answer_tokens) AS max
            FROM pool GROUP BY ALL
            UNION ALL
            SELECT domain, 'total_tokens',
                   quantile_disc(total_tokens, 0.1), quantile_disc(total_tokens, 0.5),
                   quantile_disc(total_tokens, 0.9), max(total_tokens)
            FROM pool GROUP BY ALL
            ORDER BY measure, domain
            """
        )
    return CurateSummary(run_id, steps, sources, domains, tokens)
