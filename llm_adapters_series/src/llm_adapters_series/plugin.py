"""Entry point of the ``llm-adapters-series`` plugin (group ``llm_adapters``, name ``series``)."""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import AdapterType, hookimpl

from .adapter import SeriesAdapter


@hookimpl
def register_adapters(register: Callable[[type[AdapterType]], None]) -> None:
    register(SeriesAdapter)
