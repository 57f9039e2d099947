"""`fl quickstart sample`: a realistic raw dump to try the pipeline on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from
from frontload.quickstart.sample import generate_sample

app = typer.Typer(help="Sample data and the end-to-end demo.", no_args_is_help=True)


@app.command("sample")
def sample(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="output folder (default: <workspace>/sample)"),
    ] = None,
    records: Annotated[int, typer.Option("--records", min=50, help="about this many")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 0,
    bench: Annotated[
        Path | None,
        typer.Option("--bench", help="benchmark folder to copy a few real test questions from"),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Write math, long-CoT, code, chat and web records with injected duplicates and leaks."""

    folder = out or workspace_from(workspace).root / "sample"
    manifest = generate_sample(folder, records=records, seed=seed, bench_dir=bench)
    injected = manifest["injected"]
    typer.echo(
        f"wrote {manifest['records']} records (+{manifest['malformed_lines']} malformed lines) "
        f"to {folder}: {len(injected['exact'])} exact and {len(injected['near'])} near "
        f"duplicates, {len(injected['numbers'])} number-only variant pairs, "
        f"{len(injected['bench'])} benchmark leaks, {injected['junk']} junk records"
    )
