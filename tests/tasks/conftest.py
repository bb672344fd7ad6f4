"""Task tests run with exactly the task plugin's two modules registered inline (no entry points)."""

from __future__ import annotations

import pytest

from llm_adapters.testing import use_plugins
from llm_adapters_tasks import commonsense_tasks, math_tasks
from tests.shared_data import REPO, SHARED_DATA, shared_or_skip  # noqa: F401  (re-exported for the tests)

#: hand-written files in the same format for the sets that are not in SHARED_DATA
ASSETS = REPO / "tests" / "assets" / "tasks"


@pytest.fixture(autouse=True)
def task_plugins():
    with use_plugins(math_tasks, commonsense_tasks) as pm:
        yield pm
