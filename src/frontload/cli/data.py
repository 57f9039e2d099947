"""`fl data`: corpora -> packed token shards, inspect them, and export blends for other trainers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, refresh_catalog, workspace_from
from frontload.data.blend import BlendSource
from frontload.data.interop import export_blend, export_megatron, megatron_prefix, plan_sources
from frontload.data.shards import TokenDataset, token_dir
from frontload.data.tokenize import EmptyCorpus, tokenize_corpus, workspace_corpora
from frontload.errors import ConfigError, StageNotReady
from frontload.plan import megatron_data_path, resolve_plan
from frontload.workspace import Workspace

app = typer.Typer(help="Token shards and blends.", no_args_is_help=True)


@app.command("tokenize")
def tokenize(
    corpus: Annotated[
        list[str] | None,
        typer.Option("--corpus", "-c", help="Corpus name (repeat; default: every corpus)."),
    ] = None,
    tokenizer: Annotated[
        Path | None,
        typer.Option(
            "--tokenizer",
            help="Tokenizer folder or tokenizer.json (default: workspace tokenizer/).",
            show_default=False,
        ),
    ] = None,
    field: Annotated[
        str, typer.Option("--field", help="text (pretraining) or messages (chat, with loss mask).")
    ] = "text",
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Output tokens/<name> (default: the corpus name).", show_default=False
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Tokenizer processes.")] = 1,
    rows_per_shard: Annotated[
        int, typer.Option("--rows-per-shard", help="Records per shard (whole row groups).")
    ] = 100_000,
    workspace: WorkspaceOption = None,
) -> None:
    """Write tokens/<corpus>/ shards + manifest.json; a rerun resumes and skips finished shards."""

    if field not in ("text", "messages"):
        raise ConfigError(f"--field must be text or messages, got {field!r}")
    if workers < 1 or rows_per_shard < 1:
        raise ConfigError("--workers and --rows-per-shard must be >= 1")
    ws = workspace_from(workspace)
    names = corpus or workspace_corpora(ws)
    if not names:
        raise StageNotReady(f"no corpora in {ws.corpora_dir}", hint="run `fl curate corpora` first")
    if name and len(names) > 1:
        raise ConfigError("--name needs exactly one --corpus")
    for corpus_name in names:
        try:
            manifest = tokenize_corpus(
                ws,
                corpus_name,
                tokenizer or ws.tokenizer_dir,
                field,
                workers,
                rows_per_shard,
                name=name,
            )
        except EmptyCorpus as error:
            if corpus:  # asked for by name: an error
                raise
            typer.echo(f"{corpus_name}: skipped ({error.message})")
            continue
        typer.echo(
            f"{manifest['name']}: {manifest['tokens']:,} tokens, {manifest['documents']:,} "
            f"documents in {len(manifest['shards'])} shards ({manifest['dtype']}, tokenizer "
            f"{manifest['tokenizer_hash']}) -> {ws.tokens_dir / manifest['name']}"
        )
    refresh_catalog(ws)


@app.command("info")
def info(
    corpus: Annotated[str, typer.Argument(help="Token dataset name (tokens/<name>).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Check a token dataset (sizes, offsets) and print its counts."""

    dataset = TokenDataset.open(token_dir(workspace_from(workspace), corpus))
    m = dataset.manifest
    lengths = dataset.doc_len
    typer.echo(
        f"{dataset.name}: {m['tokens']:,} tokens, {m['documents']:,} documents, "
        f"{len(m['shards'])} shards, {m['dtype']}, field {m['field']}, tokenizer "
        f"{m['tokenizer_hash']}, loss mask {'yes' if dataset.has_mask else 'no'}; document "
        f"tokens mean {lengths.mean():.1f}, max {lengths.max():,}; all shards valid"
    )


def _sources_from_options(
    ws: Workspace, weights: list[str], must_exist: bool = True
) -> list[BlendSource]:
    sources = []
    for item in weights:
        name, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = None
        if not sep or weight is None:
            raise ConfigError(f"--source {item!r} must look like NAME=WEIGHT, e.g. dldq=0.3")
        BlendSource(Path(name), weight=weight)  # a bad weight is named before a missing folder
        sources.append(BlendSource(token_dir(ws, name, must_exist), weight=weight))
    return sources


EXPORT_FORMATS = ("json", "megatron", "hf", "fl")


def megatron_path(
    ws: Workspace, plan: str | None, phase: str, source: list[str] | None, prefix: str | None
) -> str:
    """The Megatron `--data-path` of a plan's phase or a hand blend (token weights)."""
    if plan:
        weights = resolve_plan(plan, ws.plans_dir).require_phase(phase).blend_weights()
    else:
        sources = _sources_from_options(ws, source or [], must_exist=False)
        total = sum(s.weight or 0.0 for s in sources)
        if total <= 0:
            raise ConfigError("blend weights sum to zero", "give a source a positive weight")
        weights = {s.path.name: (s.weight or 0.0) / total for s in sources}

    def files(corpus: str) -> str:
        if prefix:
            return prefix.format(corpus=corpus)
        return str(megatron_prefix(token_dir(ws, corpus, must_exist=False)))

    return megatron_data_path(weights, files)


@app.command("blend-export")
def blend_export(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="NAME=WEIGHT (repeat), a blend given by hand."),
    ] = None,
    plan: Annotated[
        str | None,
        typer.Option("--plan", help="Plan to export: a YAML/JSON file or a plan name."),
    ] = None,
    phase: Annotated[str, typer.Option("--phase", help="Plan phase.")] = "pretrain",
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="json: everything below; megatron: the --data-path string (token weights); "
            "hf: interleave_datasets probabilities (per example); fl: the blend fl's loader "
            "serves (token folders and tokens or weights).",
        ),
    ] = "json",
    prefix: Annotated[
        str | None,
        typer.Option(
            help="Megatron path per corpus; {corpus} is replaced (default: the workspace's "
            "`fl data export megatron` files).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the HF snippet.")] = 0,
    workspace: WorkspaceOption = None,
) -> None:
    """Export a blend (a plan's phase, or one given by hand) for fl, Megatron-LM or HF datasets."""
    ws = workspace_from(workspace)
    if bool(source) == bool(plan):
        raise ConfigError("give either --source NAME=WEIGHT (repeatable) or --plan PLAN")
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format {fmt}: unknown format", f"use {', '.join(EXPORT_FORMATS)}")
    if fmt == "megatron":  # names the Megatron files: the token datasets need not be here
        typer.echo(megatron_path(ws, plan, phase, source, prefix))
        return
    if plan:
        sources = plan_sources(resolve_plan(plan, ws.plans_dir).require_phase(phase), ws)
    else:
        sources = _sources_from_options(ws, source)
    exported = export_blend(sources, seed=seed, prefix=prefix)
    if fmt == "hf":
        rows = exported["sources"]
        payload = {
            "datasets": [r["name"] for r in rows],
            "probabilities": exported["hf_probabilities"],
            "probabilities_are": exported["hf_probabilities_are"],
            "token_weights": [r["token_weight"] for r in rows],
        }
        typer.echo(json.dumps(payload))
    else:
        typer.echo(json.dumps(exported["fl"] if fmt == "fl" else exported, indent=2))


export_app = typer.Typer(
    help="Write token datasets in other trainers' formats.", no_args_is_help=True
)
app.add_typer(export_app, name="export")


@export_app.command("megatron")
def export_megatron_cmd(
    corpus: Annotated[str, typer.Argument(help="Token dataset name (tokens/<name>).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Prefix to write (<out>.bin/.idx; default tokens/<name>/megatron_text_document).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Write Megatron-LM's indexed dataset (.bin + .idx, one sequence per document) from the
    token shards; `fl data blend-export` (any --format) points at it."""

    info = export_megatron(token_dir(workspace_from(workspace), corpus), out)
    typer.echo(
        f"{corpus}: {info['tokens']:,} tokens, {info['documents']:,} documents ({info['dtype']}) "
        f"-> {info['prefix']}.bin/.idx (--data-path prefix {info['prefix']})"
    )
    if info["loss_mask_dropped"]:
        typer.echo(
            f"note: {corpus}'s loss mask is not exported (Megatron's indexed dataset has none): "
            "a Megatron run trains on every token, prompts included"
        )
