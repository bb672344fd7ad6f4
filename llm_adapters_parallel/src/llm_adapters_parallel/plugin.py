"""Entry point of the ``llm-adapters-parallel`` plugin (group ``llm_adapters``, name ``parallel``)."""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import hookimpl


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    # imported here, not at module level: loading the entry point (say, for `llm-adapters --help`) stays cheap
    from .adapter import ParallelAdapter

    register(ParallelAdapter)
