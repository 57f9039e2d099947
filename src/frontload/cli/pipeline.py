"""CLI for pipeline (placeholder until issue 9 lands)."""

from __future__ import annotations

from frontload.cli.common import not_built


def run() -> None:
    """Not built yet (issue 9)."""
    not_built("run", "issue 9")


def report_study() -> None:
    """Not built yet (issue 9)."""
    not_built("report_study", "issue 9")
