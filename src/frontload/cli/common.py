"""What every command group shares, defined once: the workspace option, catalog refresh, tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

from frontload.catalog import Catalog
from frontload.filecheck import unreadable_advice
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


def refresh_catalog(ws: Workspace) -> None:
    """Refresh the catalog after a command wrote its files, warning about unreadable ones.

    The command's own work is done by then, so a damaged file elsewhere in the workspace is a
    warning (as in `fl stats rebuild`), not an error that would make a finished job look failed.
    """
    with Catalog(ws, strict=False) as catalog:
        catalog.refresh()
        warn_skipped(catalog)


def warn_skipped(catalog: Catalog) -> None:
    """One warning and one hint per file the catalog could not read."""
    for path, why in catalog.skipped:
        typer.secho(f"warning: skipped {path}: {why}", fg="yellow", err=True)
        typer.echo(f"  hint: {unreadable_advice(path)}", err=True)


def print_table(table: pa.Table, title: str | None = None, max_rows: int = 200) -> None:
    """Render a pyarrow table with rich."""
    view = Table(title=title, show_lines=False)
    for index, name in enumerate(table.column_names):
        view.add_column(name, overflow="fold", no_wrap=index == 0)  # keep the row names whole
    for row in table.slice(0, max_rows).to_pylist():
        view.add_row(*("" if value is None else str(value) for value in row.values()))
    Console().print(view)
    if table.num_rows > max_rows:
        typer.echo(f"... {table.num_rows - max_rows} more rows")
