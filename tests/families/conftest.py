"""The family tests run with the installed families plugin (its entry points, nothing else installed) plus
the inline probe adapter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_adapters.plugins import PluginManager
from llm_adapters.testing import use_plugins

from . import probe


@pytest.fixture(autouse=True)
def families_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginManager]:
    monkeypatch.setenv("LLM_ADAPTERS_PLUGINS", "llm-adapters-families")
    monkeypatch.delenv("LLM_ADAPTERS_DISABLE_PLUGINS", raising=False)
    with use_plugins(probe, entry_points=True) as pm:
        yield pm
