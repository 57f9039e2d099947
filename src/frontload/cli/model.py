"""`fl model export/import`: NemotronH folders both ways (same logits)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption
from frontload.errors import ConfigError

app = typer.Typer(help="Hybrid model: export/import (NemotronH).", no_args_is_help=True)


@app.command("export")
def export(
    src: Annotated[
        Path, typer.Argument(help="frontload model folder (runs/<run>/hf, any version).")
    ],
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    fmt: Annotated[
        str, typer.Option("--format", help="Target format; only nemotron_h for now.")
    ] = "nemotron_h",
    workspace: WorkspaceOption = None,  # accepted by every command (see cli/common.py)
) -> None:
    """Write a transformers NemotronHForCausalLM folder (same logits), with the tokenizer files and
    chat template. runs/<run>/hf folders are already in this format; older ones are converted."""
    if fmt != "nemotron_h":
        raise ConfigError(f"unknown export --format {fmt!r}", "use --format nemotron_h")
    from frontload.model.convert import export_nemotron_h  # torch: loaded by this command only

    typer.echo(f"exported {src} -> {export_nemotron_h(src, out)} (nemotron_h)")


@app.command("import")
def import_(
    src: Annotated[Path, typer.Argument(help="transformers NemotronH model folder.")],
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    workspace: WorkspaceOption = None,  # accepted by every command (see cli/common.py)
) -> None:
    """Check a transformers NemotronH folder is one frontload trains (dense: M, *, -) and copy it,
    with its tokenizer files and chat template."""
    from frontload.model.convert import import_nemotron_h  # torch: loaded by this command only

    typer.echo(f"imported {src} -> {import_nemotron_h(src, out)} (nemotron_h, frontload-ready)")
