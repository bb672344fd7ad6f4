"""Prompt-based adapters for llm-adapters: prefix tuning (``prefix``), prompt tuning (``prompt``) and
P-tuning (``ptuning``).

All three are *model-level* adapters: instead of wrapping modules they change each forward call of the
model. Prefix tuning hands per-layer keys and values to the attention layers through transformers' key/value
cache; prompt tuning and P-tuning prepend virtual-token embeddings to the input. See ``docs/prompt-methods.md``.
"""

from __future__ import annotations

from .config import PrefixConfig, PromptConfig, PTuningConfig
from .export import prompt_table, save_prompt_table
from .prefix import PrefixTuning
from .prompt import PromptTuning
from .ptuning import PTuning

__version__ = "0.1.0"

__all__ = [
    "PTuning",
    "PTuningConfig",
    "PrefixConfig",
    "PrefixTuning",
    "PromptConfig",
    "PromptTuning",
    "__version__",
    "prompt_table",
    "save_prompt_table",
]
