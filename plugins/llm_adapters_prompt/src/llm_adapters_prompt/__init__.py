"""Prompt-based adapters for llm-adapters: prefix tuning (``prefix``), prompt tuning (``prompt``) and
P-tuning (``ptuning``).

All three are *model-level* adapters: instead of wrapping modules they change each forward call of the
model. Prefix tuning hands per-layer keys and values to the attention layers through transformers' key/value
cache; prompt tuning and P-tuning prepend virtual-token embeddings to the input. See ``docs/prompt-methods.md``.
"""

from __future__ import annotations

from llm_adapters.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "PrefixConfig": ".config",
    "PromptConfig": ".config",
    "PTuningConfig": ".config",
    "prompt_table": ".export",
    "save_prompt_table": ".export",
    "PrefixTuning": ".adapter_types",
    "PromptTuning": ".adapter_types",
    "PTuning": ".adapter_types",
}
__all__ = [*sorted(_EXPORTS), "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
