"""`fl tokenizer`: train the workspace tokenizer on corpora, and inspect one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from frontload.cli.common import WorkspaceOption, workspace_from
from frontload.data.corpus import bytes_per_token, corpus_texts
from frontload.data.tokenizer import load_tokenizer, tokenizer_hash, train_tokenizer
from frontload.progress import console

app = typer.Typer(help="Train and inspect tokenizers.", no_args_is_help=True)


@app.command("train")
def train(
    corpus: Annotated[
        list[str], typer.Option("--corpus", "-c", help="Corpus to sample (repeat for several).")
    ],
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="Vocabulary size.")] = 32000,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Output folder (default: workspace tokenizer/).", show_default=False
        ),
    ] = None,
    max_mb: Annotated[
        int, typer.Option("--max-mb", help="Sample at most this many MB of text (bounds memory).")
    ] = 256,
    workspace: WorkspaceOption = None,
) -> None:
    """Byte-level BPE with bos/eos/pad, chat markers and a TRL-ready chat template."""

    ws = workspace_from(workspace)
    out_dir = out or ws.tokenizer_dir

    # tokenizers' own bars leave blank lines behind; a rich status line says the same.
    with console.status(f"training a {vocab_size:,}-token BPE tokenizer on {', '.join(corpus)}"):
        path = train_tokenizer(
            corpus_texts(ws, corpus), vocab_size, out_dir, max_bytes=max_mb * 2**20
        )
    tokenizer = load_tokenizer(path)
    typer.echo(
        f"tokenizer: {path} ({len(tokenizer):,} tokens, hash {tokenizer_hash(tokenizer)}) "
        f"trained on {', '.join(corpus)}"
    )


@app.command("info")
def info(
    path: Annotated[Path, typer.Argument(help="Tokenizer folder or tokenizer.json.")],
    corpus: Annotated[
        str | None, typer.Option("--corpus", "-c", help="Measure bytes per token on this corpus.")
    ] = None,
    sample: Annotated[int, typer.Option("--sample", help="Records to measure on.")] = 2000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Vocab size, special tokens, hash, chat template, and compression on a corpus."""

    tokenizer = load_tokenizer(path)
    summary = {
        "path": str(path),
        "vocab_size": len(tokenizer),
        "hash": tokenizer_hash(tokenizer),
        "special_tokens": {
            "bos": tokenizer.bos_token,
            "eos": tokenizer.eos_token,
            "pad": tokenizer.pad_token,
            "other": [
                t
                for t in tokenizer.all_special_tokens
                if t not in {tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token}
            ],
        },
        "chat_template": bool(tokenizer.chat_template),
        "generation_markers": "{% generation %}" in (tokenizer.chat_template or ""),
    }
    if corpus:
        ws = workspace_from(workspace)
        summary["compression"] = {
            "corpus": corpus,
            **bytes_per_token(tokenizer, corpus_texts(ws, [corpus]), max_texts=sample),
        }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    specials = summary["special_tokens"]
    typer.echo(f"tokenizer      {summary['path']}")
    typer.echo(f"vocab size     {summary['vocab_size']:,}")
    typer.echo(f"hash           {summary['hash']}")
    typer.echo(f"bos/eos/pad    {specials['bos']} {specials['eos']} {specials['pad']}")
    typer.echo(f"other special  {' '.join(specials['other']) or '-'}")
    typer.echo(
        f"chat template  {'yes' if summary['chat_template'] else 'no'}"
        f"{' (with generation markers)' if summary['generation_markers'] else ''}"
    )
    if corpus:
        c = summary["compression"]
        bpt = f"{c['bytes_per_token']:.3f}" if c["bytes_per_token"] else "-"
        typer.echo(
            f"compression    {bpt} bytes/token on {c['texts']:,} records of {corpus} "
            f"({c['tokens']:,} tokens)"
        )
