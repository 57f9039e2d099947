"""CLI for corpora (placeholder until issue 3 lands)."""

from __future__ import annotations

import typer

from frontload.cli.common import not_built

quality_app = typer.Typer(help="Not built yet (issue 3).")


@quality_app.callback(invoke_without_command=True)
def _quality_app_placeholder() -> None:
    not_built("corpora", "issue 3")


def corpora() -> None:
    """Not built yet (issue 3)."""
    not_built("corpora", "issue 3")


def stats_compare() -> None:
    """Not built yet (issue 3)."""
    not_built("stats_compare", "issue 3")


def report_corpora() -> None:
    """Not built yet (issue 3)."""
    not_built("report_corpora", "issue 3")
