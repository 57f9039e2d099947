"""Shape check of a saved checkpoint against the config it is loaded with, before transformers loads it.

transformers answers a mismatch with a long report and a RuntimeError; this names the parameter, the
two shapes and the config fields that differ, as one `ConfigError` (the CLI prints it on one line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from frontload.errors import ConfigError
from frontload.model.config import SHAPE_FIELDS
from frontload.model.nemotron import read_config


def checkpoint_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from safetensors headers (no tensor data is read)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                shapes[name] = tuple(handle.get_slice(name).get_shape())
    return shapes


def check_checkpoint(model_cls: Any, folder: Path, config: Any) -> None:
    """Raise ConfigError when the safetensors in `folder` do not fit `model_cls(config)`."""
    # NemotronH folders name the backbone `model.`; ours `backbone.`.
    found = {
        "backbone." + name[len("model.") :] if name.startswith("model.") else name: shape
        for name, shape in checkpoint_shapes(folder).items()
    }
    if not found:
        return  # nothing to compare (e.g. .bin weights): transformers reports what it finds
    saved = read_config(folder)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in model_cls(config).state_dict().items()}
    differing = [f for f in SHAPE_FIELDS if getattr(saved, f, None) != getattr(config, f, None)]
    hint = (
        f"the checkpoint's config.json differs in {', '.join(differing)}; load it with that config"
        if differing
        else f"the weights do not match {folder / 'config.json'}: the checkpoint is corrupt or its "
        "config.json was edited; restore the config.json saved with these weights"
    )
    missing = sorted(set(expected) - set(found))
    if missing:
        raise ConfigError(f"checkpoint {folder} lacks parameter `{missing[0]}`", hint)
    for name, shape in expected.items():
        if found[name] != shape:
            raise ConfigError(
                f"checkpoint {folder}: parameter `{name}` has shape {found[name]}, "
                f"the model config expects {shape}",
                hint,
            )
