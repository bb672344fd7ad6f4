"""Entry point of ``llm-adapters-prompt``: registers the adapter types ``prefix``, ``prompt`` and ``ptuning``."""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import hookimpl

from .prefix import PrefixTuning
from .prompt import PromptTuning
from .ptuning import PTuning


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    register(PrefixTuning)
    register(PromptTuning)
    register(PTuning)
