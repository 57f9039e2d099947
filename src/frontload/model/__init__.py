"""The hybrid Mamba-2 / attention / FFN model; importing this registers `frontload_hybrid` with the Auto classes."""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from frontload.model.cache import HybridCache
from frontload.model.config import PRESETS, HybridConfig, preset
from frontload.model.convert import load_pretrained
from frontload.model.hybrid import HybridForCausalLM, HybridModel

AutoConfig.register(HybridConfig.model_type, HybridConfig, exist_ok=True)
AutoModel.register(HybridConfig, HybridModel, exist_ok=True)
AutoModelForCausalLM.register(HybridConfig, HybridForCausalLM, exist_ok=True)

__all__ = [
    "PRESETS",
    "HybridCache",
    "HybridConfig",
    "HybridForCausalLM",
    "HybridModel",
    "load_pretrained",
    "preset",
]
