"""Evaluation tests run with exactly the task plugin, the templates, the evaluation plugin (its commands) and the
core's probe adapter/family registered inline."""

from __future__ import annotations

import pytest

import llm_adapters_eval
import llm_adapters_gguf
import llm_adapters_templates
from llm_adapters.testing import use_plugins
from llm_adapters_tasks import commonsense_tasks, math_tasks
from tests.core import probe_plugin
from tests.shared_data import REPO, SHARED_DATA, shared_or_skip  # noqa: F401  (re-exported for the tests)

ASSETS = REPO / "tests" / "assets" / "tasks"


@pytest.fixture(autouse=True)
def plugins():
    with use_plugins(
        math_tasks, commonsense_tasks, probe_plugin, llm_adapters_templates, llm_adapters_eval, llm_adapters_gguf
    ) as pm:
        yield pm
