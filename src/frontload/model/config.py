"""HybridConfig: a Nemotron-H style layer pattern plus sizes, validated at construction, and presets."""

from __future__ import annotations

import numbers
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from frontload.errors import ConfigError

LAYER_KINDS = {"M": "mamba", "*": "attention", "-": "mlp"}

NEMOTRON_H_8B_PATTERN = "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-"


@strict
class HybridConfig(PreTrainedConfig):
    r"""
    layer_pattern (`str`): one symbol per layer: `M` Mamba-2, `*` attention, `-` squared-ReLU FFN.
    hidden_size (`int`): model width (d_model).
    intermediate_size (`int`): FFN width.
    num_attention_heads / num_key_value_heads / head_dim: GQA attention shape (no position embedding).
    mamba_num_heads / mamba_head_dim: Mamba-2 heads; the inner width is their product.
    ssm_state_size, n_groups, conv_kernel, chunk_size: Mamba-2 state, B/C groups, conv width, scan chunk.
    max_position_embeddings: longest sequence the model accepts.
    time_step_min / time_step_max / time_step_floor: dt init range (reference Mamba-2); dt is clamped
        below at time_step_min at run time, as transformers' NemotronH does.
    """

    model_type = "frontload_hybrid"

    vocab_size: int = 512
    hidden_size: int = 64
    layer_pattern: str = "M*M-"
    intermediate_size: int = 128
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 16
    mamba_num_heads: int = 4
    mamba_head_dim: int = 32
    ssm_state_size: int = 16
    n_groups: int = 2
    conv_kernel: int = 4
    chunk_size: int = 64
    max_position_embeddings: int = 2048
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    time_step_min: float = 0.001
    time_step_max: float = 0.1
    time_step_floor: float = 1e-4
    use_conv_bias: bool = True
    use_bias: bool = False
    mlp_bias: bool = False
    tie_word_embeddings: bool = False
    use_cache: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        validate_config(self)
        super().__post_init__(**kwargs)

    @property
    def num_hidden_layers(self) -> int:
        """Depth, derived from the pattern (transformers utilities read this name)."""
        return len(self.layer_pattern)

    @num_hidden_layers.setter
    def num_hidden_layers(self, value: int) -> None:
        pass

    @property
    def layer_kinds(self) -> list[str]:
        """One of `mamba`, `attention`, `mlp` per layer."""
        return [LAYER_KINDS[symbol] for symbol in self.layer_pattern]

    @property
    def mamba_inner_size(self) -> int:
        """Width of the Mamba-2 value stream (heads x head dim)."""
        return self.mamba_num_heads * self.mamba_head_dim

    @property
    def mamba_conv_dim(self) -> int:
        """Channels through the depthwise conv: x, B and C."""
        return self.mamba_inner_size + 2 * self.n_groups * self.ssm_state_size


def _fail(field: str, problem: str, hint: str) -> None:
    raise ConfigError(f"model config field `{field}`: {problem}", hint)


# Sizes that must be positive whole numbers (checked by `validate`, shared with the converter).
INTEGER_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "mamba_num_heads",
    "mamba_head_dim",
    "ssm_state_size",
    "n_groups",
    "conv_kernel",
    "chunk_size",
    "max_position_embeddings",
)
# Fields that decide parameter shapes (a checkpoint's hint names those that differ): the pattern,
# the sizes except the scan chunk and the length guard, and the bias/tying switches.
SHAPE_FIELDS = (
    "layer_pattern",
    *(f for f in INTEGER_FIELDS if f not in ("chunk_size", "max_position_embeddings")),
    "use_conv_bias",
    "use_bias",
    "mlp_bias",
    "tie_word_embeddings",
)


def validate_config(config: HybridConfig) -> None:
    """Reject shapes the model cannot build, naming the field (run before any tensor is allocated)."""
    pattern = config.layer_pattern
    if not isinstance(pattern, str):
        _fail("layer_pattern", f"must be a string, got {pattern!r}", 'e.g. "M*M-"')
    if not pattern:
        _fail("layer_pattern", "is empty; the model needs at least one layer", 'e.g. "M*M-"')
    for position, symbol in enumerate(pattern):
        if symbol not in LAYER_KINDS:
            _fail(
                "layer_pattern",
                f"unknown layer symbol {symbol!r} at position {position} in {pattern!r}",
                "use M (Mamba-2), * (attention) or - (FFN)",
            )
    for field in INTEGER_FIELDS:
        value = getattr(config, field)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            _fail(field, f"must be a whole number, got {value!r}", "fix the preset override")
        if value <= 0:
            _fail(field, f"must be positive, got {value}", "fix the preset override")
    if config.num_attention_heads % config.num_key_value_heads:
        _fail(
            "num_key_value_heads",
            f"{config.num_key_value_heads} does not divide num_attention_heads "
            f"{config.num_attention_heads}",
            "grouped-query attention needs query heads = a multiple of key/value heads",
        )
    if config.mamba_num_heads % config.n_groups:
        _fail(
            "n_groups",
            f"{config.n_groups} does not divide mamba_num_heads {config.mamba_num_heads}",
            "each B/C group must serve a whole number of Mamba heads",
        )
    if config.tie_word_embeddings:
        _fail(
            "tie_word_embeddings", "must be false", "the model keeps untied embeddings (Nemotron-H)"
        )
    steps = (config.time_step_min, config.time_step_max)
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in steps):
        _fail("time_step_min", f"time steps must be numbers, got {steps}", "e.g. 0.001 and 0.1")
    if not 0 < config.time_step_min <= config.time_step_max:
        _fail(
            "time_step_min", "must satisfy 0 < time_step_min <= time_step_max", "e.g. 0.001 and 0.1"
        )


def _nemotron_like(**sizes: Any) -> dict[str, Any]:
    return {"conv_kernel": 4, "chunk_size": 128, "max_position_embeddings": 8192, **sizes}


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {},
    "125m": _nemotron_like(
        vocab_size=32768,
        hidden_size=768,
        layer_pattern="M-M-M*-M-M-M*-M-M-",
        intermediate_size=3072,
        num_attention_heads=12,
        num_key_value_heads=4,
        head_dim=64,
        mamba_num_heads=24,
        mamba_head_dim=64,
        ssm_state_size=128,
        n_groups=1,
    ),
    "350m": _nemotron_like(
        vocab_size=32768,
        hidden_size=1024,
        layer_pattern="M-M-M-M*-M-M-M-M*-M-M-M-M*-M-M-M-M-M-",
        intermediate_size=4096,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=64,
        mamba_num_heads=32,
        mamba_head_dim=64,
        ssm_state_size=128,
        n_groups=4,
    ),
    "1b": _nemotron_like(
        vocab_size=32768,
        hidden_size=2048,
        layer_pattern="M-M-M*-M-M-M*-M-M-M*-M-M-M-",
        intermediate_size=8192,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        mamba_num_heads=64,
        mamba_head_dim=64,
        ssm_state_size=128,
        n_groups=8,
    ),
    "8b": _nemotron_like(
        vocab_size=131072,
        hidden_size=4096,
        layer_pattern=NEMOTRON_H_8B_PATTERN,
        intermediate_size=21504,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        mamba_num_heads=128,
        mamba_head_dim=64,
        ssm_state_size=128,
        n_groups=8,
    ),
}


def preset(name: str, **overrides: Any) -> HybridConfig:
    """A named model shape (tiny, 125m, 350m, 1b, 8b) with optional field overrides."""
    if name not in PRESETS:
        raise ConfigError(
            f"unknown model preset {name!r}", f"choose one of: {', '.join(sorted(PRESETS))}"
        )
    fields = {**PRESETS[name], **overrides}
    unknown = sorted(set(fields) - set(HybridConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(
            f"unknown model config field(s) {unknown} for preset {name!r}",
            "see frontload.model.config.HybridConfig for the fields",
        )
    return HybridConfig(**fields)
