"""CLI for pretrain (placeholder until issue 7 lands)."""

from __future__ import annotations

from frontload.cli.common import not_built


def pretrain() -> None:
    """Not built yet (issue 7)."""
    not_built("pretrain", "issue 7")
