"""Task tests run with exactly the task plugin's two modules registered inline (no entry points)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_adapters.testing import use_plugins
from llm_adapters_tasks import commonsense_tasks, math_tasks

REPO = Path(__file__).resolve().parents[2]
#: the published LLM-Adapters data sets, read in place (never copied into the project)
SHARED_DATA = REPO / ".." / "shared" / "data" / "llm-adapters"
#: hand-written files in the same format for the sets that are not in SHARED_DATA
ASSETS = REPO / "tests" / "assets" / "tasks"


@pytest.fixture(autouse=True)
def task_plugins():
    with use_plugins(math_tasks, commonsense_tasks) as pm:
        yield pm


def shared_or_skip() -> Path:
    if not (SHARED_DATA / "dataset").is_dir():
        pytest.skip(f"the shared data sets are not at {SHARED_DATA}")
    return SHARED_DATA
