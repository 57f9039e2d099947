"""Conversion both ways with transformers' NemotronHForCausalLM (same weights, same logits), the
Auto-class routing of `nemotron_h` folders to our model, and `fl model export/import`.

After `import frontload.model` the Auto classes build our model for dense `nemotron_h` folders (our
kernels, packed rows), transformers' for the rest (MoE). The format itself is in `nemotron.py`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from frontload.errors import ConfigError, InputError
from frontload.model.config import HybridConfig
from frontload.model.hybrid import HybridForCausalLM
from frontload.model.nemotron import (
    NEMOTRON_H,
    check_shapes,
    from_nemotron_h_config,
    rename_prefix,
    saved_model_type,
    to_nemotron_h_config,
)


def to_nemotron_h(model: HybridForCausalLM) -> Any:
    """A transformers NemotronHForCausalLM holding the same weights."""
    from transformers import NemotronHForCausalLM

    target = NemotronHForCausalLM(to_nemotron_h_config(model.config)).to(model.dtype)
    state = {rename_prefix(k, "backbone.", "model."): v for k, v in model.state_dict().items()}
    check_shapes(target, state, "(frontload model)")
    target.load_state_dict(state, strict=True)
    return target.eval()


def from_nemotron_h(model: Any) -> HybridForCausalLM:
    """Our model holding the weights of a transformers NemotronHForCausalLM."""
    target = HybridForCausalLM(from_nemotron_h_config(model.config)).to(model.dtype)
    state = {rename_prefix(k, "model.", "backbone."): v for k, v in model.state_dict().items()}
    check_shapes(target, state, "(NemotronH model)")
    target.load_state_dict(state, strict=True)
    return target.eval()


# Files that travel with the weights: tokenizer, chat template, generation defaults.
TOKENIZER_FILES = (
    "tokenizer",
    "special_tokens",
    "added_tokens",
    "vocab",
    "merges",
    "chat_template",
    "generation_config",
)


class NemotronHAutoModel(HybridForCausalLM):
    """What AutoModelForCausalLM builds for a `nemotron_h` config once frontload.model is imported:
    our model for the dense patterns we build, transformers' NemotronHForCausalLM for the rest."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        if _ours(kwargs.get("config")):
            return HybridForCausalLM.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        from transformers import NemotronHForCausalLM

        return NemotronHForCausalLM.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def _from_config(cls, config: Any, **kwargs: Any) -> Any:
        if _ours(config):
            return HybridForCausalLM._from_config(from_nemotron_h_config(config), **kwargs)
        from transformers import NemotronHForCausalLM

        return NemotronHForCausalLM._from_config(config, **kwargs)


def register_nemotron_h_auto() -> None:
    """Route AutoModelForCausalLM's `nemotron_h` to NemotronHAutoModel (called on import)."""
    from transformers import AutoModelForCausalLM, NemotronHConfig

    NemotronHAutoModel.config_class = NemotronHConfig  # the Auto registry matches on this
    AutoModelForCausalLM.register(NemotronHConfig, NemotronHAutoModel, exist_ok=True)


def _ours(config: Any) -> bool:
    """Whether a NemotronH config (or None: read from the folder later) is one frontload builds."""
    if config is None or isinstance(config, HybridConfig):
        return True
    try:
        from_nemotron_h_config(config)
    except ConfigError:
        return False
    return True


def _load_folder(src: Path, model_types: tuple[str, ...]) -> HybridForCausalLM:
    if not (src / "config.json").is_file():
        raise InputError(f"{src} has no config.json", "point at a save_pretrained folder")
    found = saved_model_type(src)
    if found not in model_types:
        raise InputError(
            f"{src} holds a {found!r} model, expected {' or '.join(map(repr, model_types))}",
            "export takes a frontload model folder; import takes a NemotronH folder",
        )
    try:
        return HybridForCausalLM.from_pretrained(src, dtype=torch.float32)
    except (RuntimeError, ValueError, OSError) as error:  # transformers' mismatch report
        first = (str(error).strip().splitlines() or [repr(error)])[0][:200]
        raise InputError(
            f"{src}: cannot load the {found} model ({type(error).__name__}: {first})",
            "the weights must match config.json; restore the config.json saved with them",
        ) from None


def export_nemotron_h(src: Path, out: Path) -> Path:
    """Write a NemotronH folder from a frontload model folder (either format), with its tokenizer
    files and chat template."""
    model = _load_folder(src, (HybridConfig.model_type, NEMOTRON_H))
    model.save_pretrained(out)
    _copy_tokenizer(src, out)
    return out


def import_nemotron_h(src: Path, out: Path) -> Path:
    """Check that a NemotronH folder is one frontload trains (dense: M, *, -) and write it to `out`
    with its tokenizer files and chat template."""
    model = _load_folder(src, (NEMOTRON_H,))
    model.save_pretrained(out)
    _copy_tokenizer(src, out)
    return out


def _copy_tokenizer(src: Path, out: Path) -> None:
    for path in src.iterdir():
        if path.is_file() and path.name.startswith(TOKENIZER_FILES):
            shutil.copy2(path, out / path.name)


def load_pretrained(
    folder: str | Path, config: HybridConfig | None = None, **kwargs: Any
) -> HybridForCausalLM:
    """from_pretrained with a clear ConfigError when the checkpoint has another shape than `config`."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} has no config.json", "point at a save_pretrained folder")
    return HybridForCausalLM.from_pretrained(folder, config=config, **kwargs)
