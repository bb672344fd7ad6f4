"""The LoRA tests run with exactly the LoRA plugin and the inline test families, except tests marked
``installed_plugins``, which use whatever is installed (the real families plugin, other adapter types)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_adapters.plugins import PluginManager
from llm_adapters.testing import use_plugins
from llm_adapters_lora import plugin

from . import families


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "installed_plugins: run with the installed plugins, not the inline ones")


@pytest.fixture(autouse=True)
def lora_plugins(request: pytest.FixtureRequest) -> Iterator[PluginManager | None]:
    if request.node.get_closest_marker("installed_plugins"):
        yield None
        return
    with use_plugins(plugin, families) as pm:
        yield pm
