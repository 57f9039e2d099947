"""Conversion both ways with transformers' NemotronHForCausalLM (same weights, same logits).

Parameter names already match inside each block; only the backbone prefix differs (`backbone.` here,
`model.` there). Configs map field by field; Nemotron-H features we do not build (MoE, MTP) are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from frontload.errors import ConfigError, InputError
from frontload.model.config import INTEGER_FIELDS, HybridConfig
from frontload.model.hybrid import HybridForCausalLM

SHARED_FIELDS = (
    *INTEGER_FIELDS,
    "layer_norm_epsilon",
    "initializer_range",
    "time_step_min",
    "time_step_max",
    "time_step_floor",
    "use_conv_bias",
    "use_bias",
    "mlp_bias",
    "tie_word_embeddings",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
)


def to_nemotron_h_config(config: HybridConfig) -> Any:
    """The transformers NemotronHConfig of the same shape."""
    from transformers import NemotronHConfig

    fields = {name: getattr(config, name) for name in SHARED_FIELDS}
    return NemotronHConfig(
        hybrid_override_pattern=config.layer_pattern,
        mlp_hidden_act="relu2",
        mamba_hidden_act="silu",
        attention_bias=False,
        residual_in_fp32=False,
        expand=max(1, config.mamba_inner_size // config.hidden_size),
        **fields,
    )


def from_nemotron_h_config(config: Any) -> HybridConfig:
    """Our config from a NemotronHConfig; MoE / MTP / non-default activations are refused by name."""
    pattern = config.hybrid_override_pattern
    if "E" in pattern:
        raise ConfigError(
            f"NemotronH layer pattern {pattern!r} has MoE layers (E), which frontload does not build",
            "import a dense Nemotron-H checkpoint (patterns of M, * and -)",
        )
    if getattr(config, "num_nextn_predict_layers", 0):
        raise ConfigError(
            "NemotronH field `num_nextn_predict_layers` > 0 (multi-token prediction) is not supported",
            "import a checkpoint without MTP layers",
        )
    for field, expected in (("mlp_hidden_act", "relu2"), ("mamba_hidden_act", "silu")):
        if getattr(config, field) != expected:
            raise ConfigError(
                f"NemotronH field `{field}` is {getattr(config, field)!r}; frontload builds {expected!r}",
                "import a checkpoint with the standard Nemotron-H activations",
            )
    return HybridConfig(
        layer_pattern=pattern, **{name: getattr(config, name) for name in SHARED_FIELDS}
    )


def check_shapes(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse a state dict of another shape, naming the first mismatching or missing parameter."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ConfigError(
            f"checkpoint {source} does not fit the model: missing {missing[:3]}, unexpected {extra[:3]}",
            "the checkpoint was saved from a different layer pattern or model type",
        )
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ConfigError(
                f"checkpoint {source}: parameter `{name}` has shape {tuple(state[name].shape)}, "
                f"the model config expects {tuple(tensor.shape)}",
                "load it with the config it was saved with (its config.json), not another preset",
            )


def to_nemotron_h(model: HybridForCausalLM) -> Any:
    """A transformers NemotronHForCausalLM holding the same weights."""
    from transformers import NemotronHForCausalLM

    target = NemotronHForCausalLM(to_nemotron_h_config(model.config)).to(model.dtype)
    state = {_rename(k, "backbone.", "model."): v for k, v in model.state_dict().items()}
    check_shapes(target, state, "(frontload model)")
    target.load_state_dict(state, strict=True)
    return target.eval()


def from_nemotron_h(model: Any) -> HybridForCausalLM:
    """Our model holding the weights of a transformers NemotronHForCausalLM."""
    target = HybridForCausalLM(from_nemotron_h_config(model.config)).to(model.dtype)
    state = {_rename(k, "model.", "backbone."): v for k, v in model.state_dict().items()}
    check_shapes(target, state, "(NemotronH model)")
    target.load_state_dict(state, strict=True)
    return target.eval()


def _rename(key: str, old: str, new: str) -> str:
    return new + key[len(old) :] if key.startswith(old) else key


def _load_folder(src: Path, model_type: str) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM

    import frontload.model  # noqa: F401  (registers frontload_hybrid)

    if not (src / "config.json").is_file():
        raise InputError(f"{src} has no config.json", "point at a save_pretrained folder")
    found = AutoConfig.from_pretrained(src).model_type
    if found != model_type:
        raise InputError(
            f"{src} holds a {found!r} model, expected {model_type!r}",
            "export takes a frontload model folder; import takes a NemotronH folder",
        )
    try:
        return AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    except (RuntimeError, ValueError, OSError) as error:  # transformers' mismatch report
        first = (str(error).strip().splitlines() or [repr(error)])[0][:200]
        raise InputError(
            f"{src}: cannot load the {model_type} model ({type(error).__name__}: {first})",
            "the weights must match config.json; restore the config.json saved with them",
        ) from None


def export_nemotron_h(src: Path, out: Path) -> Path:
    """Write a NemotronH copy of the frontload model folder `src` to `out` (tokenizer files copied)."""
    converted = to_nemotron_h(_load_folder(src, HybridConfig.model_type))
    converted.save_pretrained(out)
    _copy_tokenizer(src, out)
    return out


def import_nemotron_h(src: Path, out: Path) -> Path:
    """Write a frontload copy of the NemotronH model folder `src` to `out` (tokenizer files copied)."""
    converted = from_nemotron_h(_load_folder(src, "nemotron_h"))
    converted.save_pretrained(out)
    _copy_tokenizer(src, out)
    return out


def _copy_tokenizer(src: Path, out: Path) -> None:
    import shutil

    for path in src.iterdir():
        if path.name.startswith(("tokenizer", "special_tokens", "generation_config", "vocab")):
            shutil.copy2(path, out / path.name)


def load_pretrained(
    folder: str | Path, config: HybridConfig | None = None, **kwargs: Any
) -> HybridForCausalLM:
    """from_pretrained with a clear ConfigError when the checkpoint has another shape than `config`."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} has no config.json", "point at a save_pretrained folder")
    return HybridForCausalLM.from_pretrained(folder, config=config, **kwargs)
