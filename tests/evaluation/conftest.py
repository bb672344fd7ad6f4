"""Evaluation tests run with exactly the task plugin and the core's probe adapter/family registered inline."""

from __future__ import annotations

import pytest

from llm_adapters.testing import use_plugins
from llm_adapters_tasks import commonsense_tasks, math_tasks
from tests.core import probe_plugin
from tests.shared_data import REPO, SHARED_DATA, shared_or_skip  # noqa: F401  (re-exported for the tests)

ASSETS = REPO / "tests" / "assets" / "tasks"


@pytest.fixture(autouse=True)
def plugins():
    with use_plugins(math_tasks, commonsense_tasks, probe_plugin) as pm:
        yield pm
