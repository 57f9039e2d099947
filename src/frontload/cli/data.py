"""`fl data`: corpora -> packed token shards, inspect them, and export blends for other trainers."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from

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
    from frontload.data.tokenize import EmptyCorpus, tokenize_corpus, workspace_corpora
    from frontload.errors import ConfigError, StageNotReady
    from frontload.workspace import Catalog

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
    with Catalog(ws) as catalog:
        catalog.refresh()


@app.command("info")
def info(
    corpus: Annotated[str, typer.Argument(help="Token dataset name (tokens/<name>).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Check a token dataset (sizes, offsets) and print its counts."""
    from frontload.data.shards import TokenDataset

    dataset = TokenDataset.open(workspace_from(workspace).tokens_dir / corpus.lower())
    m = dataset.manifest
    lengths = dataset.doc_len
    typer.echo(
        f"{dataset.name}: {m['tokens']:,} tokens, {m['documents']:,} documents, "
        f"{len(m['shards'])} shards, {m['dtype']}, field {m['field']}, tokenizer "
        f"{m['tokenizer_hash']}, loss mask {'yes' if dataset.has_mask else 'no'}; document "
        f"tokens mean {lengths.mean():.1f}, max {lengths.max():,}; all shards valid"
    )


def _sources_from_options(ws, weights: list[str]):
    from frontload.data.blend import BlendSource
    from frontload.errors import ConfigError

    sources = []
    for item in weights:
        name, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = None
        if not sep or weight is None:
            raise ConfigError(f"--source {item!r} must look like NAME=WEIGHT, e.g. dldq=0.3")
        sources.append(BlendSource(ws.tokens_dir / name.lower(), weight=weight))
    return sources


@app.command("blend-export")
def blend_export(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="NAME=WEIGHT (repeat), a blend given by hand."),
    ] = None,
    plan: Annotated[
        Path | None, typer.Option("--plan", help="Plan JSON (plans/<name>.json) to export.")
    ] = None,
    phase: Annotated[str, typer.Option("--phase", help="Plan phase.")] = "pretrain",
    seed: Annotated[int, typer.Option("--seed", help="Seed for the HF snippet.")] = 0,
    workspace: WorkspaceOption = None,
) -> None:
    """Print a blend as a Megatron --data-path weight string and HF interleave probabilities."""
    from frontload.data.interop import export_blend
    from frontload.errors import ConfigError

    ws = workspace_from(workspace)
    if bool(source) == bool(plan):
        raise ConfigError("give either --source NAME=WEIGHT (repeatable) or --plan FILE")
    total = None
    if plan:
        sources, total = _sources_from_plan(ws, plan, phase)
    else:
        sources = _sources_from_options(ws, source)
    typer.echo(json.dumps(export_blend(sources, total, seed), indent=2))


def _sources_from_plan(ws, plan: Path, phase_name: str):
    """A plan's phase read from its JSON twin, duck-typed like `allocate.plan.PhasePlan`."""
    from frontload.data.blend import BlendSource
    from frontload.errors import ConfigError, InputError

    if not plan.is_file() and (ws.plans_dir / f"{plan}.json").is_file():
        plan = ws.plans_dir / f"{plan}.json"
    try:
        data = json.loads(plan.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read plan {plan}: {exc}") from exc
    phases = {p.get("name"): p for p in data.get("phases", [])}
    if phase_name not in phases:
        raise ConfigError(f"plan {plan} has no phase {phase_name!r} (has {sorted(phases)})")
    phase = SimpleNamespace(**phases[phase_name])
    sources = [
        BlendSource(ws.tokens_dir / e["corpus"].lower(), tokens=int(e["tokens"]))
        for e in phase.entries
        if e.get("tokens")
    ]
    if getattr(phase, "general_tokens", 0) and getattr(phase, "general_corpus", None):
        path = ws.tokens_dir / phase.general_corpus.lower()
        sources.append(BlendSource(path, tokens=int(phase.general_tokens)))
    return sources, int(phase.budget_tokens)
