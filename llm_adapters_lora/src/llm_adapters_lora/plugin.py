"""Entry point of the ``llm-adapters-lora`` distribution (group ``llm_adapters``, name ``lora``)."""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import hookimpl

from .adapter import LoRA


@hookimpl
def register_adapters(register: Callable[[type[LoRA]], None]) -> None:
    register(LoRA)
