"""LoRA adapters for llm-adapters: LoRA, rsLoRA (a scale option) and DoRA (a decomposition option).

Installing this distribution registers the adapter type ``lora`` through its entry point; use it with
``llm_adapters.attach(model, {"type": "lora", ...})``.
"""

from __future__ import annotations

from llm_adapters.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "LoRA": ".adapter",
    "PRESETS": ".config",
    "LoRAConfig": ".config",
    "DoRALayer": ".layers",
    "LoRALayer": ".layers",
}
__all__ = [*sorted(_EXPORTS), "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
