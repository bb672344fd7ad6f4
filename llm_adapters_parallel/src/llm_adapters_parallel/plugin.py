"""Entry point of the ``llm-adapters-parallel`` plugin (group ``llm_adapters``, name ``parallel``)."""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import AdapterType, hookimpl

from .adapter import ParallelAdapter


@hookimpl
def register_adapters(register: Callable[[type[AdapterType]], None]) -> None:
    register(ParallelAdapter)
