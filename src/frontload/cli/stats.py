"""`fl stats`: SQL over the workspace catalog (DuckDB views over every stage's files), what curation
kept and removed (`summary`), and corpora side by side (`compare`)."""

from __future__ import annotations

from typing import Annotated

import duckdb
import typer

from frontload.catalog import VIEWS, Catalog
from frontload.cli.common import WorkspaceOption, print_table, warn_skipped, workspace_from
from frontload.curate.report import compare_table, load_manifests
from frontload.curate.stats import summarize
from frontload.errors import InputError

app = typer.Typer(help="Query the workspace catalog with SQL.", no_args_is_help=True)

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
    ws = workspace_from(workspace)
    ws.catalog_path.unlink(missing_ok=True)
    with Catalog(ws, strict=False) as catalog:
        names = catalog.refresh()
        warn_skipped(catalog)
        typer.echo(f"catalog rebuilt with views: {', '.join(names) or '(none yet)'}")


@app.command("summary")
def summary(workspace: WorkspaceOption = None) -> None:
    """Per-step kept/removed counts and seconds, per-source and per-domain counts, token-length quantiles."""
    found = summarize(workspace_from(workspace))
    print_table(found.steps, title=f"curation steps (run {found.run_id or '?'})")
    print_table(found.sources, title="pool by source")
    print_table(found.domains, title="pool by domain")
    print_table(found.tokens, title="token lengths")


@app.command("compare")
def compare(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Corpora to compare (default: every built corpus).", show_default=False
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Side-by-side table of corpus manifests, e.g. `fl stats compare dldq dshq`."""
    manifests = load_manifests(workspace_from(workspace), names)
    print_table(compare_table(manifests), title="corpora")
