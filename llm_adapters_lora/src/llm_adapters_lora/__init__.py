"""LoRA adapters for llm-adapters: LoRA, rsLoRA (a scale option) and DoRA (a decomposition option).

Installing this distribution registers the adapter type ``lora`` through its entry point; use it with
``llm_adapters.attach(model, {"type": "lora", ...})``.
"""

from __future__ import annotations

from .adapter import LoRA
from .config import PRESETS, LoRAConfig
from .layers import DoRALayer, LoRALayer

__version__ = "0.1.0"

__all__ = ["PRESETS", "DoRALayer", "LoRA", "LoRAConfig", "LoRALayer", "__version__"]
