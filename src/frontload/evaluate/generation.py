"""Model side of evaluation: load a local checkpoint, batched sampling with the KV cache, and
log-likelihood scoring of choices. torch/transformers are imported here only (the CLI stays light)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from pathlib import Path

from frontload.errors import InputError
from frontload.progress import no_library_bars


def load_model(path: str | Path, device: str | None = None):
    """(model, tokenizer) from a local Hugging Face folder; our hybrid is registered first."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with contextlib.suppress(ImportError):
        import frontload.model  # noqa: F401  (registers frontload_hybrid with the Auto classes)
    folder = Path(path)
    if not (folder / "config.json").exists():
        raise InputError(
            f"{folder} is not a model folder (no config.json)",
            hint="pass --model pointing at an exported checkpoint (runs/<run>/hf/)",
        )
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not any((folder / name).exists() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise InputError(
            f"{folder} has no tokenizer (tokenizer.json)",
            hint="save the tokenizer next to the weights (copy the workspace's tokenizer/ files)",
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (ValueError, OSError) as error:
        first = (str(error).strip().splitlines() or [repr(error)])[0][:200]
        raise InputError(
            f"{folder}: cannot load the tokenizer ({first})",
            hint="save a fast tokenizer (tokenizer.json) next to the weights",
        ) from None

    no_library_bars()
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto").to(device).eval()
    except (RuntimeError, ValueError, OSError) as error:  # transformers' report of a bad folder
        first = (str(error).strip().splitlines() or [repr(error)])[0][:200]
        raise InputError(
            f"{folder}: cannot load the model ({type(error).__name__}: {first})",
            hint="the weights must match config.json; re-export the checkpoint (runs/<run>/hf/)",
        ) from None
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:  # ids past the embedding table would crash mid-run
        raise InputError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens, the model's embeddings {rows}",
            hint="the tokenizer belongs to another model; save the one it was trained with",
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return model, tokenizer


def render_prompt(tokenizer, prompt: str, chat: bool) -> str:
    """Chat prompts go through the tokenizer's chat template when it has one."""
    if chat and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return prompt


def truncate_at(text: str, stops: Sequence[str]) -> str:
    """Cut at the first stop string (generation may run a few tokens past it)."""
    cut = len(text)
    for stop in stops:
        index = text.find(stop)
        if index >= 0:
            cut = min(cut, index)
    return text[:cut]


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    stop: Sequence[str] = (),
    max_prompt_tokens: int | None = None,
) -> list[str]:
    """One batch of completions (left padding, sampling when temperature > 0, greedy otherwise)."""
    import torch

    torch.manual_seed(seed)
    tokenizer.padding_side = "left"
    limit = max_prompt_tokens or getattr(model.config, "max_position_embeddings", None)
    limit = limit - max_new_tokens if limit and limit > max_new_tokens else None
    if limit:
        tokenizer.truncation_side = "left"  # keep the question, drop the oldest few-shot text
    batch = tokenizer(
        list(prompts),
        return_tensors="pt",
        padding=True,
        truncation=bool(limit),
        max_length=limit,
        add_special_tokens=False,
    ).to(model.device)
    options = {
        "do_sample": temperature > 0,
        "max_new_tokens": max_new_tokens,
        "use_cache": True,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if temperature > 0:
        options.update(temperature=temperature, top_p=top_p)
    if stop:
        options.update(stop_strings=list(stop), tokenizer=tokenizer)
    with torch.no_grad():
        output = model.generate(**batch, **options)
    new_tokens = output[:, batch["input_ids"].shape[1] :]
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [truncate_at(text, stop) for text in texts]


def loglik(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 8) -> list[float]:
    """Sum of log-probabilities of each continuation given its context."""
    scored = score_segments(
        model, tokenizer, [[c, x] for c, x in pairs], batch_size, eos_if_empty=True
    )
    return [row[0][0] for row in scored]


def accepts_logits_to_keep(model) -> bool:
    """Whether the model's forward can return logits for the last positions only."""

    try:
        return "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def score_segments(
    model,
    tokenizer,
    rows: Sequence[Sequence[str]],
    batch_size: int = 8,
    eos_if_empty: bool = False,
) -> list[list[tuple[float, int]]]:
    """Teacher-forced log-probabilities of text segments: each row is [context, seg1, seg2, ...];
    returns per row one (sum of natural-log probabilities, token count) per segment after the context.

    Segments are tokenized separately (as lm-eval does for context and continuation), so a segment's
    score is exactly the model's probability of its own tokens given everything before it. Rows are
    right-padded: with a causal model, padding after a row never changes that row's logits. A row
    longer than the model's context keeps its end (the segments) and drops the oldest context.
    """
    import torch

    limit = getattr(model.config, "max_position_embeddings", None) or 2048
    results: list[list[tuple[float, int]]] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        encoded, bounds = [], []
        for row in chunk:
            pieces = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in row]
            if eos_if_empty and not pieces[-1] and tokenizer.eos_token_id is not None:
                pieces[-1] = [tokenizer.eos_token_id]
            ids = [token for piece in pieces for token in piece]
            cut = max(0, len(ids) - limit)
            ids = ids[cut:]
            spans, offset = [], len(pieces[0]) - cut
            for piece in pieces[1:]:
                # the first token has no prediction: it is never scored
                spans.append((max(offset, 1), max(offset + len(piece), 1)))
                offset += len(piece)
            encoded.append(ids)
            bounds.append(spans)
        width = max(1, max(len(ids) for ids in encoded))
        pad = tokenizer.pad_token_id or 0
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, ids in enumerate(encoded):
            input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[i, : len(ids)] = 1
        # logits only from the first scored position on: a few-shot prompt is thousands of
        # tokens and its full-vocabulary logits would dominate time and memory
        first = min((a for spans in bounds for a, b in spans if b > a), default=width)
        options = {}
        if accepts_logits_to_keep(model):
            options["logits_to_keep"] = max(1, width - (first - 1))
        with torch.no_grad():
            logits = model(
                input_ids=input_ids.to(model.device),
                attention_mask=mask.to(model.device),
                **options,
            ).logits
        offset = width - logits.shape[1]  # position of logits[:, 0]
        for i, ids in enumerate(encoded):
            row = []
            for a, b in bounds[i]:
                if b <= a:
                    row.append((0.0, 0))
                    continue
                # position t predicts token t+1: tokens a..b-1 come from positions a-1..b-2
                window = torch.log_softmax(logits[i, a - 1 - offset : b - 1 - offset].float(), -1)
                targets = torch.tensor(ids[a:b], dtype=torch.long, device=window.device)
                row.append((float(window.gather(-1, targets[:, None]).sum()), b - a))
            results.append(row)
    return results
