from __future__ import annotations

import pytest

from llm_adapters.testing import use_plugins

from . import probe_plugin


@pytest.fixture(autouse=True)
def probe_only():
    """Every core test runs with exactly the inline probe plugin."""
    with use_plugins(probe_plugin) as pm:
        yield pm
