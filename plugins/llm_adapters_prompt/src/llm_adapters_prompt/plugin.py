"""Entry point of ``llm-adapters-prompt``: registers the adapter types ``prefix``, ``prompt`` and ``ptuning``."""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import hookimpl


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    # imported here, not at module level: loading the entry point (say, for `llm-adapters --help`) stays cheap;
    # .adapter_types imports neither torch nor transformers (the modules it builds are imported on creation)
    from .adapter_types import PrefixTuning, PromptTuning, PTuning

    register(PrefixTuning)
    register(PromptTuning)
    register(PTuning)
