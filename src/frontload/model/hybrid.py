"""The hybrid model: embeddings -> pre-norm residual blocks (Mamba-2 / attention / FFN) -> norm -> LM head.

`HybridForCausalLM.backbone.layers` is the block list (one `HybridBlock` per pattern symbol): the unit
for FSDP2 `fully_shard` and activation checkpointing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from frontload.errors import ConfigError, InputError
from frontload.model.attention import Attention, varlen_bounds
from frontload.model.cache import HybridCache, StepContext
from frontload.model.checkpoint import check_checkpoint
from frontload.model.config import HybridConfig
from frontload.model.kernels import kernels
from frontload.model.mamba2 import Mamba2Mixer
from frontload.model.mlp import MLP, GatedRMSNorm, RMSNorm
from frontload.model.nemotron import loading_kwargs, save_nemotron_h

MIXERS = {"mamba": Mamba2Mixer, "attention": Attention, "mlp": MLP}

# transformers renamed the outputs' `past_key_values` field to `cache` (5.2x); accept either version.
CACHE_FIELD = (
    "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"
)


class HybridBlock(GradientCheckpointingLayer):
    """h + mixer(RMSNorm(h)); the mixer kind comes from the layer pattern."""

    def __init__(self, config: HybridConfig, layer_idx: int) -> None:
        super().__init__()
        self.kind = config.layer_kinds[layer_idx]
        self.norm = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        mixer = MIXERS[self.kind]
        self.mixer = mixer(config) if mixer is MLP else mixer(config, layer_idx)

    def forward(self, hidden: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return hidden + self.mixer(self.norm(hidden), ctx)


class HybridPreTrainedModel(PreTrainedModel):
    """Shared init and transformers plumbing for the backbone and the LM."""

    config_class = HybridConfig
    config: HybridConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _no_split_modules = ["HybridBlock"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _is_stateful = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Init for training from scratch.

        Linear and embedding weights ~ N(0, initializer_range); the projections that write into the
        residual stream (Mamba out_proj, attention o_proj, FFN down_proj) are scaled by 1/sqrt(2 x layers)
        (GPT-2 / Megatron). Mamba-2 as the reference: A = -uniform(1, 16) (stored as A_log), D = 1,
        dt_bias = softplus^-1(dt) with dt log-uniform in [time_step_min, time_step_max] (floored).
        """
        config = self.config
        std = config.initializer_range
        if isinstance(module, nn.Linear):
            scale = math.sqrt(2 * config.num_hidden_layers) if getattr(module, "residual", 0) else 1
            init.normal_(module.weight, mean=0.0, std=std / scale)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, (RMSNorm, GatedRMSNorm)):
            init.ones_(module.weight)
        elif isinstance(module, nn.Conv1d):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                bound = 1 / math.sqrt(module.weight.shape[1] * module.weight.shape[2])
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, Mamba2Mixer):
            heads = module.num_heads
            init.copy_(module.A_log, torch.log(torch.empty(heads).uniform_(1, 16)))
            init.ones_(module.D)
            low, high = math.log(config.time_step_min), math.log(config.time_step_max)
            dt = torch.exp(torch.rand(heads) * (high - low) + low).clamp(min=config.time_step_floor)
            init.copy_(module.dt_bias, dt + torch.log(-torch.expm1(-dt)))


class HybridModel(HybridPreTrainedModel):
    """The backbone: token embeddings, the blocks, the final norm."""

    def __init__(self, config: HybridConfig) -> None:
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(HybridBlock(config, i) for i in range(config.num_hidden_layers))
        for block in self.layers:
            for name in ("out_proj", "o_proj", "down_proj"):
                if hasattr(block.mixer, name):
                    getattr(block.mixer, name).residual = True
        self.norm_f = RMSNorm(config.hidden_size, config.layer_norm_epsilon)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        seq_idx: torch.Tensor | None = None,
        cache: HybridCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPast:
        hidden = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        b, T = hidden.shape[:2]
        past = cache.get_seq_length() if cache is not None else 0
        if past + T > self.config.max_position_embeddings:
            raise ConfigError(
                f"sequence of {past + T} tokens is longer than model config field "
                f"`max_position_embeddings` ({self.config.max_position_embeddings})",
                "use shorter sequences or a preset override with a larger max_position_embeddings",
            )
        ctx = StepContext(cache=cache)
        ctx.seq_idx = resolve_seq_idx(seq_idx, position_ids, b, T, past)
        if ctx.seq_idx is not None:
            ctx.cu_seqlens, ctx.max_seqlen = _document_bounds(ctx.seq_idx, kwargs)
        if attention_mask is not None:
            if attention_mask.dim() != 2:
                raise InputError(
                    f"attention_mask must be 2D (batch, tokens), got shape {tuple(attention_mask.shape)}",
                    "pass the tokenizer's 0/1 mask; packed documents go through seq_idx or position_ids",
                )
            if not bool(attention_mask.all()):
                ctx.key_mask = attention_mask.bool()
                ctx.pad_mask = ctx.key_mask[:, -T:]
        for block in self.layers:
            hidden = block(hidden, ctx)
        if cache is not None:
            cache.seen_tokens += T
        return BaseModelOutputWithPast(
            last_hidden_state=self.norm_f(hidden), **{CACHE_FIELD: cache}
        )


def _document_bounds(seq_idx: torch.Tensor, given: dict[str, Any]) -> tuple[Any, Any]:
    """cu_seqlens / max_seqlen for varlen attention: the loader's (`cu_seqlens`, `max_seqlen`) or
    TRL's (`cu_seq_lens_q`, `max_length_q`) when passed; otherwise computed here, once per forward
    (not in each layer, nor again in activation-checkpoint recompute), and only where a varlen kernel
    will read them."""
    for cu_key, max_key in (("cu_seqlens", "max_seqlen"), ("cu_seq_lens_q", "max_length_q")):
        if given.get(cu_key) is not None and given.get(max_key) is not None:
            cu = given[cu_key].to(device=seq_idx.device, dtype=torch.int32, non_blocking=True)
            return cu, int(given[max_key])
    found = kernels()
    if found.usable(seq_idx) and (found.flash_attn_varlen or found.torch_varlen):
        return varlen_bounds(seq_idx)
    return None, None


def resolve_seq_idx(
    seq_idx: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    batch: int,
    tokens: int,
    past: int,
) -> torch.Tensor | None:
    """Document index per token: given, or derived from position_ids restarting at 0 (TRL packing).

    None when every row is a single document, so the dense kernels (no masks) are used.
    """
    if seq_idx is not None:
        return seq_idx.to(torch.int32).contiguous()  # the Triton and conv kernels need this
    if position_ids is None or tokens < 2 or past > 0:
        return None
    positions = position_ids.reshape(-1, tokens).expand(batch, tokens)  # (T,) or (1|B, T)
    restarts = positions[:, 1:] == 0
    if not bool(restarts.any()):
        return None
    zero = torch.zeros(batch, 1, dtype=torch.int32, device=positions.device)
    return torch.cat([zero, restarts.cumsum(1, dtype=torch.int32)], dim=1)


class HybridForCausalLM(HybridPreTrainedModel, GenerationMixin):
    """Causal LM: transformers-compatible forward (labels shift inside, loss in fp32) and generate()."""

    _tied_weights_keys: dict[str, str] = {}

    def __init__(self, config: HybridConfig) -> None:
        super().__init__(config)
        self.backbone = HybridModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        """Reads NemotronH folders (what `save_pretrained` writes) and older frontload_hybrid ones.
        Local folders get a shape check first: a mismatch is one ConfigError naming the field,
        not transformers' report and RuntimeError (also reached through AutoModelForCausalLM)."""
        folder = Path(str(pretrained_model_name_or_path))
        if (folder / "config.json").is_file():
            kwargs = loading_kwargs(folder, kwargs)
            if not kwargs.get("ignore_mismatched_sizes"):
                check_checkpoint(cls, folder, kwargs["config"])
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def save_pretrained(self, save_directory: Any, *args: Any, **kwargs: Any) -> None:
        """Save as a transformers NemotronH folder: stock transformers loads it without frontload
        (see `frontload.model.convert`); our `from_pretrained` reads it back."""
        save_nemotron_h(self, save_directory, *args, **kwargs)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # Our HybridCache is created in forward; transformers' DynamicCache does not know Mamba state.
        return False

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.backbone.embeddings = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        seq_idx: torch.Tensor | None = None,
        past_key_values: HybridCache | None = None,
        use_cache: bool | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        cache: HybridCache | None = None,
        cu_seqlens: torch.Tensor | None = None,
        max_seqlen: int | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """seq_idx (B, T) int32 separates packed documents; without it, position_ids restarts do.
        cu_seqlens / max_seqlen (from the data loader) spare the varlen attention a host sync."""
        cache = cache if cache is not None else past_key_values
        if cache is not None and not isinstance(cache, HybridCache):
            # A generic transformers cache (from a generate() that does not ask us first) is replaced
            # while still empty: it cannot hold Mamba state.
            if cache.get_seq_length() > 0:
                raise InputError(
                    f"a {type(cache).__name__} with content was passed; this model needs HybridCache",
                    "let generate() create the cache, or pass frontload.model.HybridCache()",
                )
            cache = HybridCache()
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training and labels is None
        if use_cache and cache is None:
            cache = HybridCache()
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            seq_idx=seq_idx,
            cache=cache if use_cache else None,
            inputs_embeds=inputs_embeds,
            cu_seqlens=cu_seqlens,
            max_seqlen=max_seqlen,
            **{key: kwargs[key] for key in ("cu_seq_lens_q", "max_length_q") if key in kwargs},
        )
        hidden = out.last_hidden_state
        if isinstance(logits_to_keep, int):
            hidden = hidden[:, -logits_to_keep:] if logits_to_keep > 0 else hidden
        else:
            hidden = hidden[:, logits_to_keep]
        logits = self.lm_head(hidden).float()
        loss = None
        if labels is not None:
            loss = self.loss_function(logits, labels, self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=cache if use_cache else None)


def parameter_counts(config: HybridConfig) -> dict[str, int]:
    """Parameters per layer kind plus embeddings, head and total (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = HybridForCausalLM(config)
    counts = {"embeddings": model.backbone.embeddings.weight.numel()}
    for kind in ("mamba", "attention", "mlp"):
        counts[kind] = sum(
            p.numel()
            for block in model.backbone.layers
            if block.kind == kind
            for p in block.parameters()
        )
    counts["final_norm"] = model.backbone.norm_f.weight.numel()
    counts["lm_head"] = model.lm_head.weight.numel()
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
