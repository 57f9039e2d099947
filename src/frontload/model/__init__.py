"""The hybrid Mamba-2 / attention / FFN model. Importing this registers `frontload_hybrid` with the
Auto classes and routes dense `nemotron_h` folders (what `save_pretrained` writes) to our model."""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from frontload.model.cache import HybridCache
from frontload.model.config import PRESETS, HybridConfig, preset
from frontload.model.convert import load_pretrained, register_nemotron_h_auto
from frontload.model.hybrid import HybridForCausalLM, HybridModel

AutoConfig.register(HybridConfig.model_type, HybridConfig, exist_ok=True)
AutoModel.register(HybridConfig, HybridModel, exist_ok=True)
AutoModelForCausalLM.register(HybridConfig, HybridForCausalLM, exist_ok=True)
register_nemotron_h_auto()  # saved folders are nemotron_h: build ours for them (dense patterns)

__all__ = [
    "PRESETS",
    "HybridCache",
    "HybridConfig",
    "HybridForCausalLM",
    "HybridModel",
    "load_pretrained",
    "preset",
]
