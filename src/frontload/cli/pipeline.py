"""`fl run PIPELINE.yaml`: not built yet (issue 9)."""

from __future__ import annotations

from pathlib import Path

from frontload.cli.common import not_built


def run(pipeline: Path) -> None:
    """Run the whole pipeline (curate -> ... -> report) as one resumable job."""
    not_built("run", "issue 9")
