"""Checkpoints with torch.distributed.checkpoint: atomic saves, a retention rule, exact resume.

Layout of `runs/<run>/checkpoints/`:
  step_00001000/           a complete checkpoint (only complete ones have this name)
    .metadata, __*.distcp   model + optimizer, sharded by DCP (each rank writes its shards)
    rank_00000.pt           per-rank trainer state: data position and RNG
    meta.json               step, tokens, parameter shapes, model config (written last)
  .step_00002000.tmp/      a save in progress; renamed when complete, ignored and cleaned otherwise
"""

from __future__ import annotations

import contextlib
import json
import pickle
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from frontload.errors import TrainingError
from frontload.model import HybridForCausalLM
from frontload.progress import no_library_bars

STEP_DIR = re.compile(r"^step_(\d{8})$")
META_FILE = "meta.json"
WRAPPERS = re.compile(r"(_checkpoint_wrapped_module|_orig_mod)\.")
MODEL_KEY = "model"
OPTIMIZER_KEY = "optimizer"


def rng_state() -> dict[str, Any]:
    """Every RNG a step may draw from, so a resumed step draws the same numbers.

    Only tensors and plain types, so `torch.load(weights_only=True)` reads it back: a run folder
    from someone else must never be able to run code when resumed.
    """
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def load_rank_state(rank_file: Path) -> dict[str, Any]:
    """This rank's trainer state, read as data only (`weights_only=True`): tensors and plain types.

    A file that needs arbitrary unpickling -- code smuggled into a shared run folder, or a
    checkpoint written before trainer state was kept plain -- is refused, never executed.
    """

    try:
        return torch.load(rank_file, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrainingError(
            f"{rank_file}: not plain trainer state, refused to load it ({first[:160]})",
            "resume only run folders written by fl (this version); otherwise train without "
            "--resume under another run name",
        ) from None


def param_shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    """Global (unsharded) parameter shapes by plain name: a DTensor's `.shape` is already global,
    and wrapper prefixes (activation checkpointing, compile) are dropped so toggling them is fine."""
    return {WRAPPERS.sub("", name): list(param.shape) for name, param in model.named_parameters()}


@contextlib.contextmanager
def _single_process_ok():
    """DCP warns that it assumes one process when none is initialised: that is intended here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class CheckpointManager:
    """Owns one run's checkpoint folder; every rank calls `save`/`load` together."""

    def __init__(
        self,
        folder: Path,
        rank: int = 0,
        keep_last: int = 2,
        keep_every: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.rank = rank
        self.keep_last = keep_last
        self.keep_every = keep_every

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [
            path
            for path in self.folder.iterdir()
            if STEP_DIR.match(path.name) and (path / META_FILE).is_file()
        ]
        return sorted(found, key=lambda path: path.name)

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def save(
        self,
        step: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        rank_state: dict[str, Any],
        meta: dict[str, Any],
    ) -> Path:
        """Write to a temporary folder, then rename: a kill mid-save leaves the last one intact."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        final = self.folder / f"step_{step:08d}"
        tmp = self.folder / f".{final.name}.tmp"
        if self.rank == 0:
            self._remove_stale()
            tmp.mkdir(parents=True)
        _barrier()
        model_state, optimizer_state = get_state_dict(model, optimizer)
        with _single_process_ok():
            dcp.save({MODEL_KEY: model_state, OPTIMIZER_KEY: optimizer_state}, checkpoint_id=tmp)
        torch.save(rank_state, tmp / f"rank_{self.rank:05d}.pt")
        _barrier()
        if self.rank == 0:
            full_meta = {**meta, "step": step, "param_shapes": param_shapes(model)}
            (tmp / META_FILE).write_text(json.dumps(full_meta, indent=1), encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            self._apply_retention()
        _barrier()
        return final

    def load(
        self,
        path: Path,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Restore model and optimizer in place; returns (meta, this rank's trainer state)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        check_same_model(meta, model, path)
        rank_file = path / f"rank_{self.rank:05d}.pt"
        if not rank_file.is_file():
            # Resuming on more processes: the data position is global (the blend counts global
            # sequences) and DCP reshards the weights, so rank 0's trainer state serves every rank.
            rank_file = path / "rank_00000.pt"
        model_state, optimizer_state = get_state_dict(model, optimizer)
        state = {MODEL_KEY: model_state, OPTIMIZER_KEY: optimizer_state}
        with _single_process_ok():
            dcp.load(state, checkpoint_id=path)
        set_state_dict(
            model,
            optimizer,
            model_state_dict=state[MODEL_KEY],
            optim_state_dict=state[OPTIMIZER_KEY],
        )
        rank_state = load_rank_state(rank_file)
        return meta, rank_state

    def _remove_stale(self) -> None:
        """Leftovers of saves that were killed: never complete, safe to delete."""
        if self.folder.is_dir():
            for path in self.folder.glob(".step_*.tmp"):
                shutil.rmtree(path, ignore_errors=True)

    def _apply_retention(self) -> None:
        """Keep the newest `keep_last`, plus every multiple of `keep_every`."""
        done = self.complete()
        for path in done[: -self.keep_last]:
            step = int(STEP_DIR.match(path.name).group(1))
            if self.keep_every and step % self.keep_every == 0:
                continue
            shutil.rmtree(path, ignore_errors=True)


def check_same_model(meta: dict[str, Any], model: torch.nn.Module, path: Path) -> None:
    """Resuming into a different model is a user mistake; name what changed."""
    saved = meta.get("param_shapes", {})
    current = param_shapes(model)
    if saved == current:
        return
    missing = sorted(set(saved) - set(current))
    extra = sorted(set(current) - set(saved))
    resized = sorted(name for name in set(saved) & set(current) if saved[name] != current[name])
    details = []
    if missing:
        details.append(f"{len(missing)} parameters gone (e.g. {missing[0]})")
    if extra:
        details.append(f"{len(extra)} new parameters (e.g. {extra[0]})")
    if resized:
        name = resized[0]
        details.append(f"{len(resized)} resized (e.g. {name}: {saved[name]} -> {current[name]})")
    raise TrainingError(
        f"the model differs from the one saved in {path}: {'; '.join(details)}",
        "resume with the recipe's original model section, or start a new run (another name)",
    )


def export_hf(
    model: torch.nn.Module, config: Any, out_dir: Path, tokenizer: Any, rank: int
) -> Path:
    """Gather the full weights (a collective: every rank calls) and write an HF folder on rank 0,
    with the tokenizer, under a temporary name swapped in at the end."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(model, options=options)
    if rank == 0:
        no_library_bars()
        export = HybridForCausalLM(config)
        export.load_state_dict(state, strict=True)
        tmp = out_dir.with_name(f".{out_dir.name}.tmp")
        old = out_dir.with_name(f".{out_dir.name}.old")
        for path in (tmp, old):
            shutil.rmtree(path, ignore_errors=True)
        export.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return out_dir
