"""The prompt-method tests run with exactly this plugin and the model families of ``llm-adapters-families``
(registered inline, so other installed adapter plugins do not take part)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_adapters.plugins import PluginManager
from llm_adapters.testing import use_plugins
from llm_adapters_prompt import plugin

from .helpers import FAMILY_MODULES


@pytest.fixture(autouse=True)
def prompt_plugins() -> Iterator[PluginManager]:
    with use_plugins(plugin, *FAMILY_MODULES) as pm:
        yield pm
