"""The (IA)^3 tests run with an inline plugin set: the example's own plugin module, the first-party model
families (one module each) and, as a second adapter type for the conformance suite, LoRA. Nothing depends on
what else happens to be installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_adapters.plugins import PluginManager
from llm_adapters.testing import use_plugins
from llm_adapters_families import bloom, falcon, gpt2, gpt_neo, gpt_neox, gptj, llama, opt, phi
from llm_adapters_ia3 import plugin
from llm_adapters_lora import plugin as lora_plugin

FAMILY_PLUGINS = (llama, bloom, opt, gptj, gpt2, gpt_neo, gpt_neox, falcon, phi)


@pytest.fixture(autouse=True)
def ia3_plugins() -> Iterator[PluginManager]:
    with use_plugins(plugin, lora_plugin, *FAMILY_PLUGINS) as pm:
        yield pm
