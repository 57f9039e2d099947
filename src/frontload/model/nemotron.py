"""The NemotronH checkpoint format: every folder frontload saves is a NemotronH folder.

Parameter names already match inside each block; only the backbone prefix differs (`backbone.` here,
`model.` there). Configs map field by field; Nemotron-H features we do not build (MoE, MTP) are refused.

So `save_pretrained` writes config.json as `nemotron_h` and weights under `model.`: stock transformers
(no `import frontload`, no trust_remote_code) loads runs/*/hf as its own NemotronHForCausalLM, as do
serving engines that support NemotronH. Every layer pattern frontload builds (M, *, -) is a dense
NemotronH pattern, so no pattern needs `auto_map`. This module knows configs, folders and state
dicts, not the model class: `hybrid.py` saves and loads through it; `convert.py` converts models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from frontload.errors import ConfigError
from frontload.model.config import INTEGER_FIELDS, HybridConfig

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


def rename_prefix(key: str, old: str, new: str) -> str:
    return new + key[len(old) :] if key.startswith(old) else key


NEMOTRON_H = "nemotron_h"
# Checkpoint keys of a NemotronH folder -> ours (transformers' `key_mapping`, regex to replacement).
FROM_NEMOTRON_KEYS = {r"^model\.": "backbone."}


def saved_model_type(folder: Path) -> str | None:
    """model_type of a save_pretrained folder's config.json (None without one)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("model_type")


def read_config(folder: Path) -> HybridConfig:
    """Our config from a folder in either format (nemotron_h, or the older frontload_hybrid)."""
    if saved_model_type(folder) == NEMOTRON_H:
        from transformers import NemotronHConfig

        return from_nemotron_h_config(NemotronHConfig.from_pretrained(folder))
    return HybridConfig.from_pretrained(folder)


def loading_kwargs(folder: Path, kwargs: dict[str, Any]) -> dict[str, Any]:
    """from_pretrained arguments for our model from `folder`: our config (converted from NemotronH's
    when needed) and the key mapping of NemotronH folders."""
    config = kwargs.get("config")
    if config is not None and not isinstance(config, HybridConfig):
        config = from_nemotron_h_config(config)  # the Auto classes pass NemotronHConfig
    kwargs = {**kwargs, "config": config if config is not None else read_config(folder)}
    if saved_model_type(folder) == NEMOTRON_H:
        kwargs.setdefault("key_mapping", FROM_NEMOTRON_KEYS)
    return kwargs


def save_nemotron_h(
    model: PreTrainedModel,
    folder: str | Path,
    *args: Any,
    state_dict: dict[str, torch.Tensor] | None = None,
    **kwargs: Any,
) -> None:
    """`model.save_pretrained` in the NemotronH layout: a meta-device NemotronHForCausalLM takes
    over our tensors (no copy, no init) and saves them with its config."""
    from transformers import NemotronHForCausalLM

    with torch.device("meta"):
        target = NemotronHForCausalLM(to_nemotron_h_config(model.config))
    state = model.state_dict() if state_dict is None else state_dict
    renamed = {rename_prefix(k, "backbone.", "model."): v for k, v in state.items()}
    check_shapes(target, renamed, "(frontload model)")
    target.load_state_dict(renamed, strict=True, assign=True)
    target.generation_config = model.generation_config
    target.save_pretrained(folder, *args, **kwargs)
