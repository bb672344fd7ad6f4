"""Prompt templates for llm-adapters (entry point ``templates`` in the group ``llm_adapters``)."""

from __future__ import annotations

from llm_adapters import hookimpl

__version__ = "0.1.0"

DEFAULT_TEMPLATE = "alpaca"


@hookimpl
def register_templates(register):  # type: ignore[no-untyped-def]
    from .templates import TEMPLATES

    for template in TEMPLATES:
        register(template)
