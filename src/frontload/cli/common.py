"""Options shared by every sub-app, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.workspace import Workspace

WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: $FL_WORKSPACE or ./fl-workspace).",
        show_default=False,
    ),
]


def workspace_from(path: Path | None) -> Workspace:
    """Resolve the workspace option the same way in every command."""
    return Workspace.resolve(path)


def not_built(stage: str, issue: str) -> None:
    """Say plainly that a stage is not available yet, and exit 2."""
    typer.echo(f"fl {stage}: not built yet ({issue}).", err=True)
    raise typer.Exit(2)
