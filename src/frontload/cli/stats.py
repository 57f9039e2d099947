"""`fl stats`: SQL over the workspace catalog (DuckDB views over every stage's files)."""

from __future__ import annotations

from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from
from frontload.workspace import VIEWS

app = typer.Typer(help="Query the workspace catalog with SQL.", no_args_is_help=True)


def print_table(table, title: str | None = None, max_rows: int = 200) -> None:
    """Render a pyarrow table with rich."""
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title, show_lines=False)
    for index, name in enumerate(table.column_names):
        view.add_column(name, overflow="fold", no_wrap=index == 0)  # keep the row names whole
    for row in table.slice(0, max_rows).to_pylist():
        view.add_row(*("" if value is None else str(value) for value in row.values()))
    Console().print(view)
    if table.num_rows > max_rows:
        typer.echo(f"... {table.num_rows - max_rows} more rows")


QUERY_HELP = (
    "Run SQL over the catalog views: "
    + ", ".join(spec.name for spec in VIEWS)
    + ", and corpus_<name> per corpus (`fl stats views` lists the ones with data)."
)


@app.command("query", help=QUERY_HELP)
def query(
    sql: Annotated[
        str, typer.Argument(help='SQL, e.g. "SELECT domain, count(*) FROM pool GROUP BY 1"')
    ],
    workspace: WorkspaceOption = None,
) -> None:
    import duckdb

    from frontload.errors import InputError
    from frontload.workspace import Catalog

    with Catalog(workspace_from(workspace)) as catalog:
        names = catalog.refresh()
        try:
            table = catalog.query(sql)
        except duckdb.Error as error:
            message = " ".join(str(error).split())  # DuckDB's own text spans several lines
            views = ", ".join(names) or "none yet (run `fl curate run RECIPE.yaml` first)"
            raise InputError(
                f"SQL failed: {message}", f"views in this workspace: {views}"
            ) from None
    print_table(table)


@app.command("views")
def views(workspace: WorkspaceOption = None) -> None:
    """List the catalog's views and what each holds."""
    from frontload.workspace import VIEWS, Catalog

    descriptions = {spec.name: spec.description for spec in VIEWS}
    with Catalog(workspace_from(workspace)) as catalog:
        names = catalog.refresh()
        for name in names:
            typer.echo(f"{name:20s} {descriptions.get(name, 'corpus records')}")
    if not names:
        typer.echo("no views yet: the workspace holds no data (run `fl curate run RECIPE.yaml`)")


@app.command("rebuild")
def rebuild(workspace: WorkspaceOption = None) -> None:
    """Recreate the catalog from the files in the workspace, skipping unreadable files."""
    from frontload.workspace import Catalog, unreadable_advice

    ws = workspace_from(workspace)
    ws.catalog_path.unlink(missing_ok=True)
    with Catalog(ws, strict=False) as catalog:
        names = catalog.refresh()
        for path, why in catalog.skipped:
            typer.secho(f"warning: skipped {path}: {why}", fg="yellow", err=True)
            typer.echo(f"  hint: {unreadable_advice(path)}", err=True)
        typer.echo(f"catalog rebuilt with views: {', '.join(names) or '(none yet)'}")
