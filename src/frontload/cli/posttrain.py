"""CLI for posttrain (placeholder until issue 9 lands)."""

from __future__ import annotations

from frontload.cli.common import not_built


def sft() -> None:
    """Not built yet (issue 9)."""
    not_built("sft", "issue 9")


def rl() -> None:
    """Not built yet (issue 9)."""
    not_built("rl", "issue 9")
