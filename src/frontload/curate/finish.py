"""A curation run that has finished its stages: rejections checked, per-step stats summed, the pool
swapped in (`publish.py`), the catalog refreshed and the corpora built when the recipe asks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from frontload.catalog import Catalog
from frontload.curate.corpus_build import build_corpora
from frontload.curate.publish import check_rejections, publish
from frontload.curate.recipe import CurateRecipe
from frontload.curate.stages import RunFolders, StageLayout
from frontload.curate.step_stats import collect_stats
from frontload.workspace import Workspace


@dataclass
class CurateResult:
    """What a run produced."""

    run_id: str
    pool_records: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False
    submitted: bool = False  # Slurm: jobs submitted, not waited for (`fl curate status`)
    jobs: dict[str, str] = field(default_factory=dict)  # Slurm: stage -> job id
    corpora: dict | None = None


def publish_run(
    recipe: CurateRecipe,
    workspace: Workspace,
    folders: RunFolders,
    layouts: list[StageLayout],
    resumed: bool,
) -> CurateResult:
    """Every stage has finished: check the rejections, sum the stats, swap the pool in."""
    run_id = folders.root.name
    check_rejections(folders.out_pool, folders.out_removed, [s.name for s in recipe.sources])
    collect_stats(layouts, folders, run_id, workspace)
    publish(folders.out_pool, folders.out_removed, workspace, run_id)
    folders.done.touch()
    return finish(recipe, workspace, run_id, folders, resumed=resumed)


def finish(
    recipe: CurateRecipe, workspace: Workspace, run_id: str, folders: RunFolders, resumed: bool
) -> CurateResult:
    """Refresh the catalog, build the corpora when the recipe asks, and summarise."""
    with Catalog(workspace) as catalog:
        catalog.refresh()
        count = 0
        if any(workspace.pool_dir.glob("*.parquet")):
            count = catalog.query("SELECT count(*) AS n FROM pool").to_pylist()[0]["n"]
    stats_path = workspace.curate_state_dir / "stats" / f"{run_id}.jsonl"
    steps = [json.loads(line) for line in stats_path.read_text().splitlines() if line]
    result = CurateResult(run_id, count, steps, resumed=resumed)
    if recipe.corpora is not None:
        result.corpora = build_corpora(recipe.corpora, workspace)
    return result
