"""Publishing a curation run: the previous pool stays until the new one is complete and sane.

A run writes into its own folder (`curate/runs/<run_id>/out/`), never into `pool/`. Only when
every stage has finished, and no source lost (nearly) all its records to read or clean errors --
the sign of a wrong `format:` or `fields:` rather than of dirty data -- are the staged folders
swapped in by renames, so the workspace always holds one whole pool: the old or the new.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from frontload.errors import DataError
from frontload.filecheck import unreadable
from frontload.workspace import Workspace

# Steps whose removals say "this input is not what the recipe claims"; duplicates and
# contamination are real properties of the data and may legitimately empty a source.
REJECTING_STEPS = ("malformed", "clean")
REJECT_SHARE = 0.99  # refuse a source at this share of rejected records ...
REJECT_MIN_RECORDS = 100  # ... when it has this many; any source losing every record is refused
CURRENT_RUN = "current_run"


def published_run(workspace: Workspace) -> str | None:
    """The run whose outputs are in `pool/` now (None before the first publish)."""
    marker = workspace.curate_state_dir / CURRENT_RUN
    return marker.read_text().strip() or None if marker.exists() else None


def damaged_outputs(workspace: Workspace) -> list[Path]:
    """Published files that are no longer readable (truncated, replaced): the run must be redone."""

    paths = sorted(workspace.pool_dir.glob("*.parquet"))
    paths += sorted(workspace.removed_dir.glob("*/*.parquet"))
    return [path for path in paths if unreadable(path)]


def start_or_resume(workspace: Workspace, run_root: Path) -> bool:
    """Create the run's folder, or resume it; True when resuming. Touches no published output.

    Folders of earlier runs that never published (failed, refused, superseded) are removed.
    """
    runs = run_root.parent
    keep = {run_root.name, published_run(workspace)}
    if runs.is_dir():
        for folder in runs.iterdir():
            if folder.is_dir() and folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
    resumed = run_root.is_dir()
    run_root.mkdir(parents=True, exist_ok=True)
    return resumed


def _source_counts(folder: Path, column_reason: bool) -> Counter:
    """(source) or (source, reason) counts of the parquet files under `folder`."""
    import pyarrow.parquet as pq

    counts: Counter = Counter()
    columns = ["source", "reason"] if column_reason else ["source"]
    for path in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(path, columns=columns).to_pydict()
        if column_reason:
            counts.update(zip(table["source"], table["reason"], strict=True))
        else:
            counts.update(table["source"])
    return counts


def check_rejections(out_pool: Path, out_removed: Path, sources: list[str]) -> None:
    """Raise DataError naming each source whose records were (almost) all rejected."""
    kept = _source_counts(out_pool, column_reason=False)
    rejected: Counter = Counter()
    for step in REJECTING_STEPS:
        rejected.update(_source_counts(out_removed / step, column_reason=True))
    lost: Counter = Counter()
    for (source, _), count in rejected.items():
        lost[source] += count
    problems = []
    for source in sources:
        total = kept[source] + lost[source]
        if not total or not lost[source]:
            continue
        share = lost[source] / total
        if kept[source] == 0 or (share >= REJECT_SHARE and total >= REJECT_MIN_RECORDS):
            reasons = Counter(
                {reason: n for (name, reason), n in rejected.items() if name == source}
            )
            top = ", ".join(f"{reason} ({n})" for reason, n in reasons.most_common(3))
            problems.append(f"source {source!r}: {lost[source]} of {total} rejected: {top}")
    if problems:
        raise DataError(
            "; ".join(problems) + " -- the previous pool is kept",
            "check `format:` and `fields:` of the source(s) named above (e.g. `format: jsonl` on "
            f"a parquet file); the rejected records are in {out_removed}",
        )


def publish(out_pool: Path, out_removed: Path, workspace: Workspace, run_id: str) -> None:
    """Swap the staged pool/ and removed/ in by renames, then drop the previous run's files."""
    out_pool.mkdir(parents=True, exist_ok=True)
    out_removed.mkdir(parents=True, exist_ok=True)
    previous_run = published_run(workspace)
    trash = workspace.curate_state_dir / ".previous"
    shutil.rmtree(trash, ignore_errors=True)
    trash.mkdir(parents=True)
    for staged, target in ((out_pool, workspace.pool_dir), (out_removed, workspace.removed_dir)):
        if target.exists():
            target.rename(trash / target.name)
        staged.rename(target)
    marker = workspace.curate_state_dir / CURRENT_RUN
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(run_id)
    tmp.replace(marker)
    shutil.rmtree(trash, ignore_errors=True)
    if previous_run and previous_run != run_id:
        shutil.rmtree(workspace.curate_state_dir / "runs" / previous_run, ignore_errors=True)
