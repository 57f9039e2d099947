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


def refresh_catalog(ws: Workspace) -> None:
    """Refresh the catalog after a command wrote its files, warning about unreadable ones.

    The command's own work is done by then, so a damaged file elsewhere in the workspace is a
    warning (as in `fl stats rebuild`), not an error that would make a finished job look failed.
    """
    from frontload.workspace import Catalog, unreadable_advice

    with Catalog(ws, strict=False) as catalog:
        catalog.refresh()
        for path, why in catalog.skipped:
            typer.secho(f"warning: skipped {path}: {why}", fg="yellow", err=True)
            typer.echo(f"  hint: {unreadable_advice(path)}", err=True)
