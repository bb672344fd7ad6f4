"""Entry point of the ``llm-adapters-ia3`` distribution (group ``llm_adapters``, name ``ia3``)."""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import hookimpl


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    # imported here, not at module level: loading the entry point (say, for `llm-adapters --help`) stays cheap
    from .adapter import IA3

    register(IA3)
