"""`fl model export/import` (NemotronH interop) and `fl train info` (parameter counts of a preset)."""

from __future__ import annotations

import json
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
    from frontload.model.convert import export_nemotron_h

    typer.echo(f"exported {src} -> {export_nemotron_h(src, out)} (nemotron_h)")


@app.command("import")
def import_(
    src: Annotated[Path, typer.Argument(help="transformers NemotronH model folder.")],
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    workspace: WorkspaceOption = None,  # accepted by every command (see cli/common.py)
) -> None:
    """Check a transformers NemotronH folder is one frontload trains (dense: M, *, -) and copy it,
    with its tokenizer files and chat template."""
    from frontload.model.convert import import_nemotron_h

    typer.echo(f"imported {src} -> {import_nemotron_h(src, out)} (nemotron_h, frontload-ready)")


def train_info(
    preset: Annotated[str, typer.Argument(help="Model preset: tiny, 125m, 350m, 1b, 8b.")],
    override: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a config field, FIELD=VALUE (JSON value); repeatable."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOption = None,  # accepted by every command (see cli/common.py)
) -> None:
    """Parameter counts per layer type and in total for a model preset."""
    from rich.console import Console
    from rich.table import Table

    from frontload.model.config import parameter_counts
    from frontload.model.config import preset as make_preset

    config = make_preset(preset, **_parse_overrides(override or []))
    counts = parameter_counts(config)
    if as_json:
        typer.echo(json.dumps({"preset": preset, "pattern": config.layer_pattern, **counts}))
        return
    layers = {kind: config.layer_kinds.count(kind) for kind in ("mamba", "attention", "mlp")}
    table = Table(title=f"{preset}: {config.layer_pattern} (d_model {config.hidden_size})")
    for column in ("part", "layers", "parameters", "share"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for part, count in counts.items():
        share = "" if part == "total" else f"{count / counts['total']:.1%}"
        table.add_row(part, str(layers.get(part, "")), f"{count:,}", share)
    Console().print(table)
    total = counts["total"]
    typer.echo(
        f"total: {total / 1e9:.3f}B parameters"
        if total >= 1e8
        else f"total: {total / 1e6:.3f}M parameters"
    )


def _parse_overrides(items: list[str]) -> dict[str, object]:
    parsed: dict[str, object] = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r} is not FIELD=VALUE", "e.g. --set vocab_size=50000")
        try:
            parsed[field] = json.loads(value)
        except json.JSONDecodeError:
            parsed[field] = value
    return parsed
